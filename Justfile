# Developer shortcuts. The README's two commands need only cargo; these mirror them and add
# the chores around them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The main job: the demo on an embedded PostgreSQL.
demo:
    cargo run --release -p xueji-demo

# Every test (what .ci/run runs).
test:
    XUEJI_SLOW_TESTS=1 cargo test --workspace

# Format and lint as CI expects.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The registration benchmark (bare INSERT vs RegisterStudent over mTLS gRPC).
bench:
    cargo run --release -p xueji-demo -- bench register

# Verify the audit chain of a node's database.
audit-verify url:
    cargo run --release -p xueji-node --bin xueji -- audit verify --database-url '{{url}}'

# Refresh the committed sqlx offline data (.sqlx/) after changing a query or a migration.
sqlx-prepare:
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p .sqlx
    cargo build -q -p xueji-db --bin xueji-dev-db
    coproc DB { exec target/debug/xueji-dev-db; }
    read -r url <&"${DB[0]}"
    rm -f .sqlx/query-*.json
    # Recompile every crate that holds a query macro so each macro writes its data again.
    git ls-files '*.rs' | xargs grep -l 'query[a-z_]*!(' | xargs touch
    SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" DATABASE_URL="$url" \
        cargo check --workspace --all-targets
    exec {DB[1]}>&-
    wait
    echo "wrote $(ls .sqlx | wc -l) query files to .sqlx/"
