//! What every request kind shares before it opens: the caller, key, reason and evidence
//! checks, the request's digest, and the checked request handed to the desk's `open`.

use chrono::NaiveDate;
use uuid::Uuid;
use xueji_auth::{Caller, Level};

use crate::{
    IdentityError,
    domain::{correction::FieldChange, resolution::Resolution, status_change::RequestKind},
    store::CorrectionCheck,
};

/// A checked request, ready to open.
pub(super) struct Opening<'a> {
    pub(super) kind: RequestKind,
    pub(super) key: &'a str,
    pub(super) hash: &'a [u8],
    pub(super) reason: &'a str,
    pub(super) grounds: &'a str,
    pub(super) effective_date: NaiveDate,
    pub(super) evidence: &'a [Uuid],
    pub(super) corrections: Option<(&'a [FieldChange], CorrectionCheck<'a>)>,
    pub(super) resolution: Option<Resolution>,
}

/// Checks what every request carries: a caller who may ask (`what` names the request), the
/// idempotency key, the reason and the evidence ids (at least one when `evidence_required`).
/// Answers the violations found so far with the values trimmed and parsed (the key and reason
/// empty when refused).
pub(super) fn check_common(
    caller: &Caller,
    what: &str,
    (key, reason, evidence_ids): (&str, &str, &[String]),
    evidence_required: bool,
) -> Result<(xueji_validation::Violations, String, String, Vec<Uuid>), IdentityError> {
    if !matches!(caller.level, Level::School | Level::County | Level::City) {
        return Err(IdentityError::PermissionDenied(format!(
            "{what} are asked for by the school and its authorities"
        )));
    }
    let mut violations = xueji_validation::Violations::default();
    if evidence_required && evidence_ids.is_empty() {
        violations.add(
            "evidence_ids",
            "at least one evidence file is needed (UploadEvidence)",
        );
    }
    let key = key.trim();
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        violations.add(
            "idempotency_key",
            "must be 1–128 printable ASCII characters",
        );
    }
    let reason = violations
        .check(xueji_validation::required_text("reason", reason, 500))
        .unwrap_or_default();
    let mut evidence = Vec::new();
    let mut bad_evidence = Vec::new();
    for (index, text) in evidence_ids.iter().enumerate() {
        match Uuid::parse_str(text.trim()) {
            Ok(id) if !evidence.contains(&id) => evidence.push(id),
            Ok(_) => bad_evidence.push(format!("entry {index} names the same file twice")),
            Err(_) => bad_evidence.push(format!(
                "entry {index} is not an evidence id (UploadEvidence answers one)"
            )),
        }
    }
    if !bad_evidence.is_empty() {
        violations.add("evidence_ids", bad_evidence.join("; "));
    }
    Ok((violations, key.to_owned(), reason, evidence))
}

/// Tells an honest retry from another request reusing its idempotency key.
pub(super) fn request_hash(kind: &str, parts: &[&str], evidence: &[Uuid], number: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in std::iter::once(kind)
        .chain(parts.iter().copied())
        .chain(std::iter::once(number))
    {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    for id in evidence {
        hasher.update(id.as_bytes());
    }
    hasher.finalize().to_vec()
}
