use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use xueji_validation::{FieldViolation, describe};

/// `INVALID_ARGUMENT` naming every offending field, in the message and as a
/// `google.rpc.BadRequest` detail that clients can read field by field.
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(violation.field, &violation.description);
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid argument: {}", describe(violations)),
        details,
    )
}

/// A status of `code` that names the one field it is about, e.g. `ALREADY_EXISTS` on
/// `document_number`.
pub fn field_status(code: Code, field: &str, message: String) -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, &message);
    Status::with_error_details(code, message, details)
}

/// The domain of the `google.rpc.ErrorInfo` details this system attaches.
pub const ERROR_DOMAIN: &str = "xueji";

/// A refusal of the registry's rules: `FAILED_PRECONDITION` with a `google.rpc.ErrorInfo` whose
/// reason names the refusal (e.g. `DATA_MISMATCH`) and whose metadata carries the national
/// code (`national_code`, e.g. `2001`) where the national rules define one.
pub fn refusal(reason: &str, national_code: Option<&str>, message: String) -> Status {
    refusal_with(reason, national_code, &[], message)
}

/// As [`refusal`], with further metadata (e.g. `rule`: which province rule refused).
pub fn refusal_with(
    reason: &str,
    national_code: Option<&str>,
    extra: &[(&str, &str)],
    message: String,
) -> Status {
    let mut details = ErrorDetails::new();
    let metadata = national_code
        .map(|code| ("national_code".to_owned(), code.to_owned()))
        .into_iter()
        .chain(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .collect::<std::collections::HashMap<_, _>>();
    details.set_error_info(reason, ERROR_DOMAIN, metadata);
    Status::with_error_details(Code::FailedPrecondition, message, details)
}

/// The national code of a refusal made by [`refusal`], if it carries one.
pub fn national_code(status: &Status) -> Option<String> {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get("national_code").cloned())
}

/// INTERNAL for a bug or corrupt data: `why` goes to the node's log, never to the client, which
/// learns only that the fault is the node's and that the log has it.
#[allow(clippy::disallowed_methods)] // the one place INTERNAL is built
pub fn internal_status(why: &str) -> tonic::Status {
    tracing::error!(%why, "internal error");
    tonic::Status::internal("internal error: the node's log has the details")
}
