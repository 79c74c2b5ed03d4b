//! Connecting to PostgreSQL: a private cluster started from the system's server binaries (the
//! embedded default and the test harness), connection pools, per-service schema migrations and
//! classification of database errors.

mod cluster;
mod errors;
mod migrate;

pub use cluster::{ClusterError, ClusterOptions, Durability, EmbeddedPostgres};
pub use errors::{ConstraintKind, DbAnswer, DbFailure, classify, unique_violation};
pub use migrate::{create_database, migrate_schema};

use std::{str::FromStr, time::Duration};

pub use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The longest a service's statement may run, and a transaction of its may sit idle.
pub const STATEMENT_TIMEOUT: &str = "60s";

/// A pool with the settings every service uses.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    // Services run short statements that touch a few rows by key. JIT compilation pays off for
    // long analytical scans only, and a misestimated plan would otherwise spend hundreds of
    // milliseconds compiling code for a one-row lookup.
    //
    // No statement runs longer than a minute, and no transaction sits idle for more than one:
    // a request that would has a bug or an attacker behind it, and would otherwise hold locks
    // and a connection, and hold back outbox delivery and audit sealing for every later change
    // (both wait for every older transaction to end). A migration that needs longer says so
    // with `SET LOCAL statement_timeout = 0`.
    let options = PgConnectOptions::from_str(url)?.options([
        ("jit", "off"),
        ("statement_timeout", STATEMENT_TIMEOUT),
        ("idle_in_transaction_session_timeout", STATEMENT_TIMEOUT),
    ]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}
