use tonic::Code;
use tonic_types::StatusExt;

/// A refusal in an operator's terms: what kind of refusal, then each named field (or the
/// message when no field is named).
pub fn describe_status(status: &tonic::Status) -> String {
    let fields: Vec<String> = status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect()
        })
        .unwrap_or_default();
    let kind = match status.code() {
        Code::InvalidArgument => "invalid input",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "not allowed",
        Code::Unauthenticated => "not authenticated",
        Code::FailedPrecondition => "refused",
        Code::ResourceExhausted => "the node is busy; retry",
        Code::Unavailable => "the node is unavailable",
        Code::DeadlineExceeded | Code::Cancelled => "timed out",
        _ => "error",
    };
    let code = crate::national_code(status)
        .map(|code| format!(" [{code}]"))
        .unwrap_or_default();
    if fields.is_empty() {
        format!("{kind}{code}: {}", status.message())
    } else {
        format!("{kind}: {}", fields.join("; "))
    }
}
