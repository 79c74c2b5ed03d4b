//! The one error type of the identity service, and its one mapping to gRPC status codes.

use tonic::{Code, Status};

use xueji_validation::{FieldViolation, describe};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
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
    #[error("{0}")]
    FailedPrecondition(String),
    /// A transfer may not take the student's enrollment.
    #[error("{}", .0.message())]
    TransferRefused(crate::domain::TransferRefusal),
    #[error("{0}")]
    Exhausted(String),
    /// A service this one depends on (the school list) did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A bug: something this service wrote does not read back.
    #[error("{0}")]
    Internal(String),
    #[error("database: {0}")]
    Database(xueji_db::DbFailure),
}

impl IdentityError {
    pub fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<xueji_rpc::UnreachablePeer> for IdentityError {
    fn from(error: xueji_rpc::UnreachablePeer) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<sqlx::Error> for IdentityError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error.into())
    }
}

impl From<IdentityError> for Status {
    fn from(error: IdentityError) -> Status {
        match error {
            IdentityError::InvalidArgument(violations) => xueji_rpc::invalid_argument(&violations),
            IdentityError::NotFound(what) => Status::not_found(format!("{what} not found")),
            IdentityError::PermissionDenied(why) => Status::permission_denied(why),
            IdentityError::AlreadyExists { field, message } => {
                xueji_rpc::field_status(Code::AlreadyExists, field, message)
            }
            IdentityError::FailedPrecondition(why) => Status::failed_precondition(why),
            IdentityError::TransferRefused(refusal) => xueji_rpc::refusal(
                refusal.reason(),
                refusal.national_code(),
                refusal.message().to_owned(),
            ),
            IdentityError::Exhausted(why) => Status::resource_exhausted(why),
            IdentityError::Unavailable(why) => Status::unavailable(why),
            IdentityError::Internal(why) => xueji_rpc::internal_status(&why),
            IdentityError::Database(failure) => match failure.answer() {
                xueji_db::DbAnswer::RetryLater => {
                    Status::unavailable("the registry database is unavailable; retry later")
                }
                xueji_db::DbAnswer::RetryWhole => {
                    Status::aborted("a concurrent change of the same records won; retry")
                }
                xueji_db::DbAnswer::Bug => xueji_rpc::internal_status(&failure.to_string()),
            },
        }
    }
}
