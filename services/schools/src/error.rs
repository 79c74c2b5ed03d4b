//! The one error type of the schools service, and its one mapping to gRPC status codes.

use tonic::{Code, Status};
use xueji_validation::{FieldViolation, describe};

#[derive(Debug, thiserror::Error)]
pub enum SchoolsError {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// Missing, or outside the caller's jurisdiction: the two must look the same.
    #[error("{0} not found")]
    NotFound(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{message}")]
    AlreadyExists {
        field: &'static str,
        message: String,
    },
    /// The object is in a state that does not allow the step (a closed school merging, a school
    /// with students closing).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Another node (the national authority, a province's identity service) did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or corrupt data: something this service wrote does not read back.
    #[error("{0}")]
    Internal(String),
    #[error("database: {0}")]
    Database(xueji_db::DbFailure),
}

impl SchoolsError {
    pub fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<Vec<FieldViolation>> for SchoolsError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        Self::InvalidArgument(violations)
    }
}

impl From<xueji_rpc::UnreachablePeer> for SchoolsError {
    fn from(error: xueji_rpc::UnreachablePeer) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<sqlx::Error> for SchoolsError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error.into())
    }
}

impl From<SchoolsError> for Status {
    fn from(error: SchoolsError) -> Status {
        match error {
            SchoolsError::InvalidArgument(violations) => xueji_rpc::invalid_argument(&violations),
            SchoolsError::NotFound(what) => Status::not_found(format!("{what} not found")),
            SchoolsError::PermissionDenied(why) => Status::permission_denied(why),
            SchoolsError::AlreadyExists { field, message } => {
                xueji_rpc::field_status(Code::AlreadyExists, field, message)
            }
            SchoolsError::FailedPrecondition(why) => Status::failed_precondition(why),
            SchoolsError::Unavailable(why) => Status::unavailable(why),
            SchoolsError::Internal(why) => xueji_rpc::internal_status(&why),
            SchoolsError::Database(failure) => match failure.answer() {
                xueji_db::DbAnswer::RetryLater => {
                    Status::unavailable("the school registry database is unavailable; retry later")
                }
                xueji_db::DbAnswer::RetryWhole => {
                    Status::aborted("a concurrent change of the same records won; retry")
                }
                xueji_db::DbAnswer::Bug => xueji_rpc::internal_status(&failure.to_string()),
            },
        }
    }
}
