//! The statistics service: figures built from the enrollment events identity produces, never
//! by asking schools to re-type numbers (DESIGN §6).
//!
//! - [`domain`]: the rules, pure: what an event does to each level's count, the monthly change
//!   report and its identity (opening + additions − removals = closing), the ledger that keeps
//!   figures incrementally, the brute-force recount the ledger is checked against, the
//!   breakdown cells, the dropout rule on the working-day calendar.
//! - [`store`]: all SQL (schema `stats`).
//! - [`figures`]: the use cases: reports with their parts, reconciliation, the school summary,
//!   dropouts.
//! - [`feed`]: the consumer of identity's change feed and the reporter of aggregates to the
//!   national node, behind the links the node wires.
//! - [`api`]: StatsService and NationalStats, thin.
//! - [`adapters`]: the feed and the aggregate sink wired to gRPC.
//! - [`wiring`]: the one function the node calls to mount the service and its loops.

pub mod adapters;
pub mod api;
pub mod domain;
pub mod feed;
pub mod figures;
pub mod store;
pub mod wiring;

use xueji_validation::FieldViolation;

/// Why a statistics call failed. Mapped to a gRPC status in one place (`api`).
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("invalid argument: {}", xueji_validation::describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// Unknown, or outside the caller's jurisdiction: the two look the same.
    #[error("{0} not found")]
    NotFound(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Asked of the wrong tier (counts of a national node, say).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The database or the feed could not be reached or answered in time: worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data.
    #[error("{0}")]
    Internal(String),
}

impl StatsError {
    pub fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<xueji_rpc::UnreachablePeer> for StatsError {
    fn from(error: xueji_rpc::UnreachablePeer) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<sqlx::Error> for StatsError {
    /// Through the workspace's one classification of database errors: a passing fault is worth
    /// retrying, a bug or corrupt data is not.
    fn from(error: sqlx::Error) -> Self {
        let failure = xueji_db::DbFailure::from(error);
        match failure.answer() {
            xueji_db::DbAnswer::RetryLater | xueji_db::DbAnswer::RetryWhole => {
                Self::Unavailable("the statistics database is unavailable; retry later".into())
            }
            xueji_db::DbAnswer::Bug => Self::Internal(failure.to_string()),
        }
    }
}
