//! Transfers on the wire, as each caller may see them.

use xueji_auth::Caller;
use xueji_proto::transfers::v1 as pb;
use xueji_workflow::StepState;

use crate::{
    domain::party,
    saga::sees_sending_side,
    store::{Role, TransferRecord, TransferState},
};

fn state(state: TransferState) -> pb::TransferState {
    match state {
        TransferState::Starting => pb::TransferState::Starting,
        TransferState::InProgress => pb::TransferState::InProgress,
        TransferState::Approved => pb::TransferState::Approved,
        TransferState::Completed => pb::TransferState::Completed,
        TransferState::Rejected => pb::TransferState::Rejected,
        TransferState::Cancelled => pb::TransferState::Cancelled,
        TransferState::Refused => pb::TransferState::Refused,
    }
}

fn step_state(state: StepState) -> pb::StepState {
    match state {
        StepState::Waiting => pb::StepState::Waiting,
        StepState::Open => pb::StepState::Open,
        StepState::Approved => pb::StepState::Approved,
        StepState::Rejected => pb::StepState::Rejected,
        StepState::Skipped => pb::StepState::Skipped,
    }
}

/// `record` as `caller` may see it at `now`: until the transfer completes, the receiving side
/// sees what it typed and the progress, not where the student studies.
pub(super) fn transfer(
    caller: &Caller,
    record: &TransferRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> pb::Transfer {
    let sending_visible =
        sees_sending_side(caller, record) || record.state == TransferState::Completed;
    let steps = record
        .task
        .steps
        .iter()
        .enumerate()
        .map(|(position, step)| {
            let decision = step.decision.as_ref();
            let hidden = party::is_sending(&step.party.kind) && !sending_visible;
            pb::Step {
                position: position as u32,
                party: step.party.kind.clone(),
                jurisdiction: if hidden {
                    String::new()
                } else {
                    step.party.jurisdiction.clone()
                },
                state: step_state(step.state) as i32,
                deadline: step
                    .deadline
                    .map(|d| d.date.to_string())
                    .unwrap_or_default(),
                deadline_estimated: step.deadline.is_some_and(|d| d.estimated),
                timeout_action: step.timeout.as_str().to_owned(),
                decided_by: if hidden {
                    decision
                        .map(|d| {
                            if d.on_timeout {
                                "system"
                            } else {
                                "sending side"
                            }
                            .to_owned()
                        })
                        .unwrap_or_default()
                } else {
                    decision.map(|d| d.by.clone()).unwrap_or_default()
                },
                decided_at: decision.map(|d| d.at.to_rfc3339()).unwrap_or_default(),
                reason: decision.map(|d| d.reason.clone()).unwrap_or_default(),
                on_timeout: decision.is_some_and(|d| d.on_timeout),
                escalations: step.escalations,
                overdue: step.state == StepState::Open && step.due_at.is_some_and(|due| due <= now),
                // Filled by GetTransfer from the evidence kept.
                evidence: None,
            }
        })
        .collect();
    pb::Transfer {
        id: record.id.to_string(),
        state: state(record.state) as i32,
        receiving_school_code: record.receiving_school.clone(),
        typed_number: record.typed_number.clone(),
        typed_name: record.typed_name.clone(),
        typed_birth_date: record.typed_birth_date.to_string(),
        target_grade: record.target_grade,
        reason: record.reason.clone(),
        evidence: record.evidence.clone(),
        sending_school_code: if sending_visible {
            record.sending_school.clone().unwrap_or_default()
        } else {
            String::new()
        },
        registry_number: if sending_visible {
            record.registry_number.clone().unwrap_or_default()
        } else {
            String::new()
        },
        steps,
        started_by: record.started_by.clone(),
        started_at: record.started_at.to_rfc3339(),
        ended_at: record.ended_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ended_by: record.ended_by.clone().unwrap_or_default(),
        end_reason: record.end_reason.clone().unwrap_or_default(),
        refusal: record.refusal.clone().unwrap_or_default(),
        national_code: record.national_code.clone().unwrap_or_default(),
        cross_province: record.role != Role::Both,
    }
}
