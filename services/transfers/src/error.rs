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

impl From<xueji_rpc::UnreachablePeer> for TransferError {
    fn from(error: xueji_rpc::UnreachablePeer) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<sqlx::Error> for TransferError {
    /// Through the workspace's one classification of database errors: a passing fault is
    /// UNAVAILABLE (the saga and its callers retry), a bug or corrupt data INTERNAL.
    fn from(error: sqlx::Error) -> Self {
        let failure = xueji_db::DbFailure::from(error);
        match failure.answer() {
            xueji_db::DbAnswer::RetryLater | xueji_db::DbAnswer::RetryWhole => {
                Self::Unavailable("the transfer database is unavailable; retry later".to_owned())
            }
            xueji_db::DbAnswer::Bug => Self::Internal(failure.to_string()),
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
            } => {
                // A province rule's refusal names its rule, as the proto promises: the stored
                // message ends with it, in parentheses.
                let rule = (reason == "PROVINCE_RULE")
                    .then(|| message.rsplit_once('(')?.1.strip_suffix(')'))
                    .flatten()
                    .map(str::to_owned);
                let extra: Vec<(&str, &str)> = rule
                    .as_deref()
                    .map(|rule| ("rule", rule))
                    .into_iter()
                    .collect();
                xueji_rpc::refusal_with(&reason, national_code.as_deref(), &extra, message)
            }
            TransferError::FailedPrecondition(why) => Status::failed_precondition(why),
            TransferError::AlreadyExists { field, message } => {
                xueji_rpc::field_status(Code::AlreadyExists, field, message)
            }
            TransferError::Unavailable(why) => Status::unavailable(why),
            TransferError::Internal(why) => xueji_rpc::internal_status(&why),
        }
    }
}
