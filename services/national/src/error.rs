//! The one error type of the national service, and its one mapping to gRPC status codes.

use tonic::{Code, Status};
use xueji_validation::{FieldViolation, describe};

#[derive(Debug, thiserror::Error)]
pub enum NationalError {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// Missing, or outside the caller's jurisdiction: the two must look the same.
    #[error("{0} not found")]
    NotFound(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A province did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A bug, or data changed behind the service's back.
    #[error("internal: {0}")]
    Internal(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl NationalError {
    pub fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<Vec<FieldViolation>> for NationalError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<NationalError> for Status {
    fn from(error: NationalError) -> Status {
        match error {
            NationalError::InvalidArgument(violations) => xueji_rpc::invalid_argument(&violations),
            NationalError::NotFound(what) => Status::not_found(format!("{what} not found")),
            NationalError::PermissionDenied(why) => Status::permission_denied(why),
            NationalError::FailedPrecondition(why) => Status::failed_precondition(why),
            NationalError::Unavailable(why) => Status::unavailable(why),
            NationalError::Internal(why) => {
                tracing::error!(%why, "internal error");
                Status::internal(why)
            }
            NationalError::Database(error) => {
                // Two deliveries racing on the same rows: the sender retries the batch.
                if let sqlx::Error::Database(db) = &error
                    && matches!(db.code().as_deref(), Some("40P01" | "40001" | "23505"))
                {
                    return Status::new(Code::Aborted, "concurrent delivery; retry");
                }
                tracing::error!(%error, "database error");
                Status::unavailable("the national index database is unavailable; retry later")
            }
        }
    }
}
