//! The one error type of the transfer service, and its one mapping to gRPC status codes.

use tonic::{Code, Status};
use xueji_validation::{FieldViolation, describe};

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// Missing, or outside the caller's reach: the two must look the same.
    #[error("{0} not found")]
    NotFound(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A rule of the registry refuses it: `reason` names the refusal (DATA_MISMATCH,
    /// PENDING_TASK, PROBLEM_RECORD, NOT_ACTIVE, PROVINCE_RULE), with its national code.
    #[error("{message}")]
    Refused {
        reason: String,
        national_code: Option<String>,
        message: String,
    },
    /// Not now: out of turn, already ended, decided otherwise.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{message}")]
    AlreadyExists {
        field: &'static str,
        message: String,
    },
    /// The database or a service this one depends on did not answer; retrying may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// A bug: something this service wrote does not read back.
    #[error("{0}")]
    Internal(String),
}

impl TransferError {
    pub fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<sqlx::Error> for TransferError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::ColumnNotFound(_) => Self::Internal(format!("database: {error}")),
            sqlx::Error::Database(db) if db.constraint().is_some() => {
                Self::Internal(format!("database: {error}"))
            }
            _ => {
                tracing::warn!(%error, "database error");
                Self::Unavailable("the transfer database is unavailable; retry later".to_owned())
            }
        }
    }
}

impl From<TransferError> for Status {
    fn from(error: TransferError) -> Status {
        match error {
            TransferError::InvalidArgument(violations) => xueji_rpc::invalid_argument(&violations),
            TransferError::NotFound(what) => Status::not_found(format!("{what} not found")),
            TransferError::PermissionDenied(why) => Status::permission_denied(why),
            TransferError::Refused {
                reason,
                national_code,
                message,
            } => xueji_rpc::refusal(&reason, national_code.as_deref(), message),
            TransferError::FailedPrecondition(why) => Status::failed_precondition(why),
            TransferError::AlreadyExists { field, message } => {
                xueji_rpc::field_status(Code::AlreadyExists, field, message)
            }
            TransferError::Unavailable(why) => Status::unavailable(why),
            TransferError::Internal(why) => {
                tracing::error!(%why, "internal error");
                Status::internal(why)
            }
        }
    }
}
