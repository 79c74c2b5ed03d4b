//! Status changes and evidence over gRPC (thin: decode, find the object in the caller's
//! jurisdiction, call the desk or the store, encode).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;
use xueji_auth::{Caller, Jurisdiction, Level};
use xueji_proto::identity::v1::{
    self as pb,
    status_change_service_server::{StatusChangeService, StatusChangeServiceServer},
};
use xueji_workflow::{StepState, TaskState, Verdict};

use super::IdentityApi;
use crate::{
    IdentityError,
    domain::{
        self, evidence,
        resolution::{Action, Problem},
        status_change::{ChangeKind, RequestKind},
    },
    status_changes::{ChangeDesk, ChangeInput},
    store::{Actor, ChangeRecord, EvidenceFile},
};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// The status-change service: shares the identity service's state.
#[derive(Debug, Clone)]
pub(crate) struct StatusChangeApi {
    pub(super) identity: Arc<IdentityApi>,
    pub(super) desk: Arc<ChangeDesk>,
}

impl StatusChangeApi {
    pub(crate) fn new(identity: Arc<IdentityApi>, desk: Arc<ChangeDesk>) -> Self {
        Self { identity, desk }
    }

    pub(crate) fn into_service(self) -> StatusChangeServiceServer<Self> {
        StatusChangeServiceServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    fn requester(caller: &Caller) -> Result<(), IdentityError> {
        if matches!(caller.level, Level::School | Level::County | Level::City) {
            Ok(())
        } else {
            Err(IdentityError::PermissionDenied(
                "status changes and their evidence come from the school and its authorities".into(),
            ))
        }
    }

    /// The change under `id`, if the caller's jurisdiction holds its student.
    async fn visible_change(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<ChangeRecord, IdentityError> {
        let parsed = Uuid::parse_str(id.trim())
            .map_err(|_| IdentityError::invalid("id", "is not a status change id"))?;
        let missing = || IdentityError::NotFound(format!("status change {}", id.trim()));
        let record = self
            .desk
            .store()
            .status_change(parsed)
            .await?
            .ok_or_else(missing)?;
        if caller.may_access_record(&record.school_code, &record.school_division) {
            Ok(record)
        } else {
            Err(missing())
        }
    }

    async fn upload(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::UploadEvidenceRequest,
    ) -> Result<pb::UploadEvidenceResponse, IdentityError> {
        let (record, _) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        Self::requester(caller)?;
        let checked = evidence::check_evidence(&request.file_name, &request.content)
            .map_err(IdentityError::InvalidArgument)?;
        let file = EvidenceFile {
            id: Uuid::new_v4(),
            student_id: record.id,
            file_name: checked.file_name,
            media_type: checked.media_type.to_owned(),
            size: request.content.len() as i32,
            sha256: checked.sha256,
            uploaded_by: caller.describe(),
            uploaded_at: chrono::Utc::now(),
        };
        self.desk
            .store()
            .add_evidence(
                &file,
                &request.content,
                &record.registry_number,
                Actor { caller, request_id },
            )
            .await?;
        Ok(pb::UploadEvidenceResponse {
            file: Some(evidence_file(&file, &record.registry_number)),
        })
    }

    async fn evidence(
        &self,
        caller: &Caller,
        request: pb::GetEvidenceRequest,
    ) -> Result<pb::GetEvidenceResponse, IdentityError> {
        let id = Uuid::parse_str(request.id.trim())
            .map_err(|_| IdentityError::invalid("id", "is not an evidence id"))?;
        let missing = || IdentityError::NotFound(format!("evidence {}", request.id.trim()));
        let (file, content) = self.desk.store().evidence(id).await?.ok_or_else(missing)?;
        let record = self.desk.store().student(file.student_id).await?;
        if !caller.may_access_record(&record.school_code, &record.school_division) {
            return Err(missing());
        }
        Ok(pb::GetEvidenceResponse {
            file: Some(evidence_file(&file, &record.registry_number)),
            content,
        })
    }

    async fn request_change(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RequestStatusChangeRequest,
    ) -> Result<pb::RequestStatusChangeResponse, IdentityError> {
        let (record, school) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        let kind = kind_from_wire(request.kind());
        let change = self
            .desk
            .request(
                caller,
                request_id,
                &record,
                &school,
                ChangeInput {
                    idempotency_key: request.idempotency_key,
                    kind,
                    reason: request.reason,
                    grounds: request.grounds,
                    effective_date: request.effective_date,
                    evidence: request.evidence_ids,
                },
            )
            .await?;
        Ok(pb::RequestStatusChangeResponse {
            change: Some(change_to_wire(&change)),
        })
    }

    async fn decide(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::DecideStatusChangeRequest,
    ) -> Result<pb::DecideStatusChangeResponse, IdentityError> {
        let change = self.visible_change(caller, &request.id).await?;
        let verdict = if request.approve {
            Verdict::Approve
        } else {
            Verdict::Reject
        };
        let decided = self
            .desk
            .decide(
                caller,
                request_id,
                change.id,
                request.step as usize,
                verdict,
                &request.remark,
            )
            .await?;
        Ok(pb::DecideStatusChangeResponse {
            change: Some(change_to_wire(&decided)),
        })
    }

    async fn cancel(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::CancelStatusChangeRequest,
    ) -> Result<pb::CancelStatusChangeResponse, IdentityError> {
        let change = self.visible_change(caller, &request.id).await?;
        let cancelled = self
            .desk
            .cancel(caller, request_id, change.id, &request.reason)
            .await?;
        Ok(pb::CancelStatusChangeResponse {
            change: Some(change_to_wire(&cancelled)),
        })
    }

    async fn one(
        &self,
        caller: &Caller,
        request: pb::GetStatusChangeRequest,
    ) -> Result<pb::GetStatusChangeResponse, IdentityError> {
        let change = self.visible_change(caller, &request.id).await?;
        Ok(pb::GetStatusChangeResponse {
            change: Some(change_to_wire(&change)),
        })
    }

    async fn inbox(
        &self,
        caller: &Caller,
        request: pb::ListStatusChangeInboxRequest,
    ) -> Result<pb::ListStatusChangeInboxResponse, IdentityError> {
        let limit = match request.page_size {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            _ => {
                return Err(IdentityError::invalid(
                    "page_size",
                    format!("must be at most {MAX_PAGE}"),
                ));
            }
        };
        let (schools, counties) = match &caller.jurisdiction {
            Jurisdiction::School(code) => (vec![code.to_string()], Vec::new()),
            Jurisdiction::Division(division) => (Vec::new(), domain::counties_within(*division)),
            Jurisdiction::Nation => (Vec::new(), Vec::new()),
        };
        let open = self
            .desk
            .store()
            .open_status_changes(&schools, &counties, i64::from(MAX_PAGE))
            .await?;
        let changes = open
            .iter()
            .filter(|change| {
                change.task.open_step().is_some_and(|position| {
                    crate::status_changes::may_decide(caller, &change.task.steps[position].party)
                })
            })
            .take(limit as usize)
            .map(change_to_wire)
            .collect();
        Ok(pb::ListStatusChangeInboxResponse { changes })
    }
}

fn kind_from_wire(kind: pb::StatusChangeKind) -> Option<ChangeKind> {
    use pb::StatusChangeKind as W;
    Some(match kind {
        W::Unspecified => return None,
        W::Suspension => ChangeKind::Suspension,
        W::Resumption => ChangeKind::Resumption,
        W::Dropout => ChangeKind::Dropout,
        W::Return => ChangeKind::Return,
        W::Withdrawal => ChangeKind::Withdrawal,
        W::Expulsion => ChangeKind::Expulsion,
        W::Reinstatement => ChangeKind::Reinstatement,
        W::StudyAbroad => ChangeKind::StudyAbroad,
        W::ReturnFromAbroad => ChangeKind::ReturnFromAbroad,
        W::Missing => ChangeKind::Missing,
        W::Found => ChangeKind::Found,
        W::Death => ChangeKind::Death,
        W::OtherDeparture => ChangeKind::OtherDeparture,
        W::RepeatYear => ChangeKind::RepeatYear,
        W::SkipYear => ChangeKind::SkipYear,
        W::SuspensionExtension => ChangeKind::SuspensionExtension,
        W::Correction | W::ProblemResolution => return None,
    })
}

fn kind_to_wire(kind: ChangeKind) -> pb::StatusChangeKind {
    use pb::StatusChangeKind as W;
    match kind {
        ChangeKind::Suspension => W::Suspension,
        ChangeKind::Resumption => W::Resumption,
        ChangeKind::Dropout => W::Dropout,
        ChangeKind::Return => W::Return,
        ChangeKind::Withdrawal => W::Withdrawal,
        ChangeKind::Expulsion => W::Expulsion,
        ChangeKind::Reinstatement => W::Reinstatement,
        ChangeKind::StudyAbroad => W::StudyAbroad,
        ChangeKind::ReturnFromAbroad => W::ReturnFromAbroad,
        ChangeKind::Missing => W::Missing,
        ChangeKind::Found => W::Found,
        ChangeKind::Death => W::Death,
        ChangeKind::OtherDeparture => W::OtherDeparture,
        ChangeKind::RepeatYear => W::RepeatYear,
        ChangeKind::SkipYear => W::SkipYear,
        ChangeKind::SuspensionExtension => W::SuspensionExtension,
    }
}

pub(super) fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn evidence_file(file: &EvidenceFile, registry_number: &str) -> pb::EvidenceFile {
    pb::EvidenceFile {
        id: file.id.to_string(),
        registry_number: registry_number.to_owned(),
        file_name: file.file_name.clone(),
        media_type: file.media_type.clone(),
        size: file.size.max(0) as u64,
        sha256: crate::store::hex(&file.sha256),
        uploaded_by: file.uploaded_by.clone(),
        uploaded_at: time(file.uploaded_at),
    }
}

pub(super) fn change_to_wire(change: &ChangeRecord) -> pb::StatusChange {
    pb::StatusChange {
        id: change.id.to_string(),
        registry_number: change.registry_number.clone(),
        name: change.name.clone(),
        kind: match change.kind {
            RequestKind::Status(kind) => kind_to_wire(kind),
            RequestKind::Correction => pb::StatusChangeKind::Correction,
            RequestKind::ProblemResolution => pb::StatusChangeKind::ProblemResolution,
        } as i32,
        reason: change.reason.clone(),
        grounds: change.grounds.clone(),
        effective_date: change.effective_date.to_string(),
        evidence_ids: change.evidence.iter().map(Uuid::to_string).collect(),
        school_code: change.school_code.clone(),
        registry_authority: change.registry_authority.clone(),
        state: match change.state {
            TaskState::InProgress => pb::StatusChangeState::InProgress,
            TaskState::Approved => pb::StatusChangeState::Approved,
            TaskState::Rejected => pb::StatusChangeState::Rejected,
            TaskState::Cancelled => pb::StatusChangeState::Cancelled,
        } as i32,
        steps: change
            .task
            .steps
            .iter()
            .enumerate()
            .map(|(position, step)| pb::StatusChangeStep {
                position: position as u32,
                party: step.party.kind.clone(),
                jurisdiction: step.party.jurisdiction.clone(),
                state: match step.state {
                    StepState::Waiting => "waiting",
                    StepState::Open => "open",
                    StepState::Approved => "approved",
                    StepState::Rejected => "rejected",
                    StepState::Skipped => "skipped",
                }
                .to_owned(),
                deadline: step
                    .deadline
                    .map(|d| d.date.to_string())
                    .unwrap_or_default(),
                deadline_estimated: step.deadline.is_some_and(|d| d.estimated),
                decided_by: step
                    .decision
                    .as_ref()
                    .map(|d| d.by.clone())
                    .unwrap_or_default(),
                decided_at: step
                    .decision
                    .as_ref()
                    .map(|d| time(d.at))
                    .unwrap_or_default(),
                remark: step
                    .decision
                    .as_ref()
                    .map(|d| d.reason.clone())
                    .unwrap_or_default(),
                on_timeout: step.decision.as_ref().is_some_and(|d| d.on_timeout),
            })
            .collect(),
        requested_by: change.requested_by.clone(),
        requested_at: time(change.requested_at),
        ended_reason: change
            .task
            .ended
            .as_ref()
            .map(|d| d.reason.clone())
            .unwrap_or_default(),
        corrections: change
            .corrections
            .iter()
            .map(|c| pb::FieldCorrection {
                field: c.field.clone(),
                from: c.from.clone(),
                to: c.to.clone(),
            })
            .collect(),
        problem: match change.resolution.map(|r| r.problem) {
            Some(Problem::InvalidIdNumber) => pb::ProblemKind::InvalidIdNumber,
            Some(Problem::DuplicateIdNumber) => pb::ProblemKind::DuplicateIdNumber,
            Some(Problem::DuplicateName) => pb::ProblemKind::DuplicateName,
            None => pb::ProblemKind::Unspecified,
        } as i32,
        action: match change.resolution.map(|r| r.action) {
            Some(Action::Confirm) => pb::ResolutionAction::Confirm,
            Some(Action::Delete) => pb::ResolutionAction::Delete,
            None => pb::ResolutionAction::Unspecified,
        } as i32,
    }
}

#[tonic::async_trait]
impl StatusChangeService for StatusChangeApi {
    async fn upload_evidence(
        &self,
        request: Request<pb::UploadEvidenceRequest>,
    ) -> Result<Response<pb::UploadEvidenceResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.upload(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn get_evidence(
        &self,
        request: Request<pb::GetEvidenceRequest>,
    ) -> Result<Response<pb::GetEvidenceResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.evidence(&caller, request.into_inner()).await?,
        ))
    }

    async fn request_status_change(
        &self,
        request: Request<pb::RequestStatusChangeRequest>,
    ) -> Result<Response<pb::RequestStatusChangeResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.request_change(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn decide_status_change(
        &self,
        request: Request<pb::DecideStatusChangeRequest>,
    ) -> Result<Response<pb::DecideStatusChangeResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.decide(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn cancel_status_change(
        &self,
        request: Request<pb::CancelStatusChangeRequest>,
    ) -> Result<Response<pb::CancelStatusChangeResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.cancel(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn get_status_change(
        &self,
        request: Request<pb::GetStatusChangeRequest>,
    ) -> Result<Response<pb::GetStatusChangeResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.one(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_status_change_inbox(
        &self,
        request: Request<pb::ListStatusChangeInboxRequest>,
    ) -> Result<Response<pb::ListStatusChangeInboxResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.inbox(&caller, request.into_inner()).await?,
        ))
    }

    async fn request_correction(
        &self,
        request: Request<pb::RequestCorrectionRequest>,
    ) -> Result<Response<pb::RequestCorrectionResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.correct(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn get_student_history(
        &self,
        request: Request<pb::GetStudentHistoryRequest>,
    ) -> Result<Response<pb::GetStudentHistoryResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.history(&caller, request.into_inner()).await?,
        ))
    }

    async fn request_problem_resolution(
        &self,
        request: Request<pb::RequestProblemResolutionRequest>,
    ) -> Result<Response<pb::RequestProblemResolutionResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.resolve(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn update_student_details(
        &self,
        request: Request<pb::UpdateStudentDetailsRequest>,
    ) -> Result<Response<pb::UpdateStudentDetailsResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.update_details(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }
}
