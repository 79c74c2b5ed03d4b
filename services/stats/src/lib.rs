//! The statistics service: figures built from the enrollment events identity and transfers
//! produce, never by asking schools to re-type numbers (DESIGN §6).
//!
//! - [`domain`]: the rules, pure: what an event does to each level's count, the monthly change
//!   report and its identity (opening + additions − removals = closing), the ledger that keeps
//!   figures incrementally, and the brute-force recount the ledger is checked against.

pub mod domain;
pub mod store;

/// Why a statistics call failed. Mapped to a gRPC status in one place (with the API).
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The database could not be reached or answered in time: worth retrying.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data.
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for StatsError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // The server refused a statement: a bug (a constraint, a type), not a passing fault.
            sqlx::Error::Database(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_) => Self::Internal(error.to_string()),
            // No connection, a timeout, a broken link: retrying may work.
            other => Self::Unavailable(other.to_string()),
        }
    }
}
