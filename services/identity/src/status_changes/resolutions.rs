//! Problem-record resolutions on the status-change workflow: the school (or an authority over
//! it) asks, with evidence, to confirm a flagged record genuine or to delete it; the school's
//! approver and then the registry authority decide; the last approval applies it.

use xueji_auth::Caller;

use super::{
    ChangeDesk,
    common::{Opening, check_common, request_hash},
};
use crate::{
    IdentityError,
    domain::{
        School,
        resolution::{OpenProblems, Problem, Resolution, check_resolution},
        status_change::RequestKind,
    },
    store::{ChangeRecord, StudentRecord},
};

/// A resolution as decoded from the wire (not yet checked).
#[derive(Debug, Clone)]
pub(crate) struct ResolutionInput {
    pub idempotency_key: String,
    pub problem: Option<Problem>,
    pub action: Option<crate::domain::resolution::Action>,
    pub reason: String,
    pub evidence: Vec<String>,
}

/// The problems `record` has open.
pub(super) fn open_problems(record: &StudentRecord) -> OpenProblems {
    let mut kinds = Vec::new();
    let flagged = |kind: &str| record.national_problems.iter().any(|k| k == kind);
    if flagged("invalid_id_number") {
        kinds.push(Problem::InvalidIdNumber);
    }
    if flagged("duplicate_id_number") {
        kinds.push(Problem::DuplicateIdNumber);
    }
    if record.duplicate_name || flagged("duplicate_name") {
        kinds.push(Problem::DuplicateName);
    }
    OpenProblems {
        kinds,
        holds_id_claim: record
            .document_number
            .as_ref()
            .is_some_and(|id| record.registry_number == format!("G{id}")),
    }
}

impl ChangeDesk {
    /// Asks to resolve one of `record`'s open problems. Refuses at once, writing nothing, a
    /// malformed request or a resolution the rules do not allow.
    pub(crate) async fn request_resolution(
        &self,
        caller: &Caller,
        request_id: &str,
        record: &StudentRecord,
        school: &School,
        input: ResolutionInput,
    ) -> Result<ChangeRecord, IdentityError> {
        let (mut violations, key, reason, evidence) = check_common(
            caller,
            "problem resolutions",
            (&input.idempotency_key, &input.reason, &input.evidence),
            true,
        )?;
        if input.problem.is_none() {
            violations.add(
                "problem",
                "must name the problem: invalid ID number, duplicate ID number or duplicate name",
            );
        }
        if input.action.is_none() {
            violations.add("action", "must be confirm or delete");
        }
        let (Some(problem), Some(action)) = (input.problem, input.action) else {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        };
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let resolution = Resolution { problem, action };
        check_resolution(resolution, &open_problems(record))
            .map_err(IdentityError::FailedPrecondition)?;
        let today = xueji_calendar::china_today(self.now());
        let action_text = match action {
            crate::domain::resolution::Action::Confirm => "confirm",
            crate::domain::resolution::Action::Delete => "delete",
        };
        let hash = request_hash(
            "problem_resolution",
            &[&reason, problem.as_str(), action_text],
            &evidence,
            &record.registry_number,
        );
        self.open(
            caller,
            request_id,
            record,
            school,
            Opening {
                kind: RequestKind::ProblemResolution,
                key: &key,
                hash: &hash,
                reason: &reason,
                grounds: "",
                effective_date: today,
                evidence: &evidence,
                corrections: None,
                resolution: Some(resolution),
            },
        )
        .await
    }
}
