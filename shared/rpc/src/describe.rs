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

/// The canonical name of a gRPC code, as the gRPC specification spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
