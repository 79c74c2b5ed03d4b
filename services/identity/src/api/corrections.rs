//! Key-field corrections and a student's history over gRPC (thin: decode, find the student in
//! the caller's jurisdiction, call the desk or the store, encode).

use xueji_auth::Caller;
use xueji_proto::identity::v1 as pb;

use super::status_changes::{StatusChangeApi, change_to_wire, time};
use crate::{
    IdentityError,
    domain::{
        history,
        resolution::{Action, Problem},
    },
    status_changes::{CorrectionInput, DetailsInput, ResolutionInput},
};

impl StatusChangeApi {
    pub(super) async fn correct(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RequestCorrectionRequest,
    ) -> Result<pb::RequestCorrectionResponse, IdentityError> {
        let (record, school) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        let change = self
            .desk
            .request_correction(
                caller,
                request_id,
                &record,
                &school,
                CorrectionInput {
                    idempotency_key: request.idempotency_key,
                    values: field_values(request.values),
                    reason: request.reason,
                    evidence: request.evidence_ids,
                },
            )
            .await?;
        Ok(pb::RequestCorrectionResponse {
            change: Some(change_to_wire(&change)),
        })
    }

    pub(super) async fn update_details(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::UpdateStudentDetailsRequest,
    ) -> Result<pb::UpdateStudentDetailsResponse, IdentityError> {
        let (record, _) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        let updated = self
            .desk
            .update_details(
                caller,
                request_id,
                &record,
                DetailsInput {
                    idempotency_key: request.idempotency_key,
                    values: field_values(request.values),
                    reason: request.reason,
                },
            )
            .await?;
        let record = self.identity.store.student(record.id).await?;
        Ok(pb::UpdateStudentDetailsResponse {
            student: Some(super::convert::student(record)),
            changes: updated
                .changes
                .into_iter()
                .map(|c| pb::FieldCorrection {
                    field: c.field,
                    from: c.from,
                    to: c.to,
                })
                .collect(),
            replayed: updated.replayed,
        })
    }

    pub(super) async fn history(
        &self,
        caller: &Caller,
        request: pb::GetStudentHistoryRequest,
    ) -> Result<pb::GetStudentHistoryResponse, IdentityError> {
        let (record, _) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        let sources = self.desk.store().history_sources(record.id).await?;
        let entries = history::assemble(
            &sources.registered,
            &sources.numbers,
            &sources.enrollments,
            &sources.approved,
        );
        Ok(pb::GetStudentHistoryResponse {
            registry_number: record.registry_number,
            fields: entries
                .into_iter()
                .map(|entry| pb::FieldHistory {
                    field: entry.field,
                    value: entry.value,
                    since: time(entry.since),
                    changed_by: entry.changed_by,
                    reason: entry.reason,
                    approved_by: entry.approved_by,
                    change_id: entry.change_id.map(|id| id.to_string()).unwrap_or_default(),
                })
                .collect(),
        })
    }

    pub(super) async fn resolve(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RequestProblemResolutionRequest,
    ) -> Result<pb::RequestProblemResolutionResponse, IdentityError> {
        let (record, school) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        let problem = match request.problem() {
            pb::ProblemKind::InvalidIdNumber => Some(Problem::InvalidIdNumber),
            pb::ProblemKind::DuplicateIdNumber => Some(Problem::DuplicateIdNumber),
            pb::ProblemKind::DuplicateName => Some(Problem::DuplicateName),
            pb::ProblemKind::Unspecified => None,
        };
        let action = match request.action() {
            pb::ResolutionAction::Confirm => Some(Action::Confirm),
            pb::ResolutionAction::Delete => Some(Action::Delete),
            pb::ResolutionAction::Unspecified => None,
        };
        let change = self
            .desk
            .request_resolution(
                caller,
                request_id,
                &record,
                &school,
                ResolutionInput {
                    idempotency_key: request.idempotency_key,
                    problem,
                    action,
                    reason: request.reason,
                    evidence: request.evidence_ids,
                },
            )
            .await?;
        Ok(pb::RequestProblemResolutionResponse {
            change: Some(change_to_wire(&change)),
        })
    }
}

/// The (field, value) pairs a correction or an update names.
fn field_values(values: Vec<pb::FieldValue>) -> Vec<(String, String)> {
    values.into_iter().map(|v| (v.field, v.value)).collect()
}
