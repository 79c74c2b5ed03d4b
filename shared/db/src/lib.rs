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

/// The session setting through which SQL reads the node's clock: seconds the node's clock is
/// ahead of the system's (see [`connect_on_clock`]). Each schema's `clock_now()` adds it to
/// `now()`.
pub const CLOCK_OFFSET_SETTING: &str = "xueji.clock_offset_secs";

/// How far (seconds) the node's clock is ahead of the system's, read at every acquire.
pub type ClockOffset = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

/// A pool with the settings every service uses, on the system's clock.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    connect_on_clock(url, max_connections, None).await
}

/// A pool whose statements see the node's clock: where it runs ahead of the system's (a
/// federation living through weeks in a test, a rehearsal of a future date), every connection
/// handed out carries the offset, so that the dates the database stamps (registrations,
/// decisions, the statistics' feed) agree with the deadlines and entry dates the services
/// compute from the same clock. On the system's clock (offset 0, as in production) nothing is
/// sent.
pub async fn connect_on_clock(
    url: &str,
    max_connections: u32,
    clock_offset: Option<ClockOffset>,
) -> Result<PgPool, sqlx::Error> {
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
    let mut pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10));
    if let Some(offset) = clock_offset {
        pool = pool.before_acquire(move |conn, _| {
            let seconds = offset();
            Box::pin(async move {
                // Once ahead, always set: the offset only grows, and a connection may carry an
                // older value.
                if seconds != 0 {
                    sqlx::query!(
                        "SELECT set_config($1, $2, false)",
                        CLOCK_OFFSET_SETTING,
                        seconds.to_string()
                    )
                    .fetch_one(&mut *conn)
                    .await?;
                }
                Ok(true)
            })
        });
    }
    pool.connect_with(options).await
}
