//! The one error type of the identity service, and its one mapping to gRPC status codes.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::FieldViolation;

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
    #[error("{0}")]
    Exhausted(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl IdentityError {
    pub fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<IdentityError> for Status {
    fn from(error: IdentityError) -> Status {
        match error {
            IdentityError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for violation in &violations {
                    details.add_bad_request_violation(violation.field, &violation.description);
                }
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("invalid argument: {}", describe(&violations)),
                    details,
                )
            }
            IdentityError::NotFound(what) => Status::not_found(format!("{what} not found")),
            IdentityError::PermissionDenied(why) => Status::permission_denied(why),
            IdentityError::AlreadyExists { field, message } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field, &message);
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            IdentityError::FailedPrecondition(why) => Status::failed_precondition(why),
            IdentityError::Exhausted(why) => Status::resource_exhausted(why),
            IdentityError::Database(error) => {
                tracing::error!(%error, "database error");
                Status::unavailable("the registry database is unavailable; retry later")
            }
        }
    }
}
