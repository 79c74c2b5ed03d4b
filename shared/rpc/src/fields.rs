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
