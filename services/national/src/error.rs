//! The one error type of the national service, and its one mapping to gRPC status codes.

use tonic::Status;
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
    Database(xueji_db::DbFailure),
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

impl From<sqlx::Error> for NationalError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error.into())
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
            NationalError::Internal(why) => xueji_rpc::internal_status(&why),
            // Two deliveries racing on the same rows (a deadlock, or both inserting the same
            // number): the sender retries the batch.
            NationalError::Database(failure) if failure.unique_constraint().is_some() => {
                Status::aborted("concurrent delivery; retry")
            }
            NationalError::Database(failure) => match failure.answer() {
                xueji_db::DbAnswer::RetryLater => {
                    Status::unavailable("the national index database is unavailable; retry later")
                }
                xueji_db::DbAnswer::RetryWhole => {
                    Status::aborted("a concurrent change of the same records won; retry")
                }
                xueji_db::DbAnswer::Bug => xueji_rpc::internal_status(&failure.to_string()),
            },
        }
    }
}
