//! The gRPC handlers: decode, authorize against the object, call the saga, encode. Errors map
//! to status codes in one place (`From<TransferError> for Status`).

mod convert;
pub mod peer;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};
use uuid::Uuid;
use xueji_auth::{Caller, Jurisdiction, Level};
use xueji_proto::transfers::v1::{
    self as pb,
    transfer_service_server::{TransferService, TransferServiceServer},
};
use xueji_workflow::Verdict;

use crate::{
    TransferError,
    domain::{self, StartInput},
    saga::{Saga, may_see},
    store::ListScope,
};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

#[derive(Debug, Clone)]
pub struct TransferApi {
    saga: Arc<Saga>,
    /// The node's province (two digits): whose days off the calendar shows.
    province: String,
}

fn transfer_id(text: &str) -> Result<Uuid, TransferError> {
    text.trim()
        .parse()
        .map_err(|_| TransferError::invalid("transfer_id", "must be a transfer id (a UUID)"))
}

fn page_size(requested: u32) -> Result<i64, TransferError> {
    match requested {
        0 => Ok(DEFAULT_PAGE.into()),
        n if n <= MAX_PAGE => Ok(n.into()),
        _ => Err(TransferError::invalid(
            "page_size",
            format!("must be at most {MAX_PAGE}"),
        )),
    }
}

fn page_token(token: &str) -> Result<Option<(DateTime<Utc>, Uuid)>, TransferError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || TransferError::invalid("page_token", "is not a token this service issued");
    let (micros, id) = token.split_once('/').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok(Some((at, id.parse().map_err(|_| bad())?)))
}

/// The transfers a caller's jurisdiction covers.
fn scope_of(caller: &Caller) -> ListScope {
    match &caller.jurisdiction {
        Jurisdiction::School(code) => ListScope::School(code.to_string()),
        Jurisdiction::Nation => ListScope::DivisionPrefix(String::new()),
        Jurisdiction::Division(division) => {
            let code = division.as_str();
            let digits = match caller.level {
                Level::Province => 2,
                Level::City => 4,
                _ => 6,
            };
            ListScope::DivisionPrefix(code[..digits].to_owned())
        }
    }
}

impl TransferApi {
    pub fn new(saga: Arc<Saga>, province: &str) -> Self {
        Self {
            saga,
            province: province.to_owned(),
        }
    }

    pub fn into_service(self) -> TransferServiceServer<Self> {
        TransferServiceServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    fn view(&self, caller: &Caller, record: &crate::store::TransferRecord) -> pb::Transfer {
        convert::transfer(caller, record, self.saga.now())
    }

    async fn decide(
        &self,
        caller: &Caller,
        request_id: &str,
        id: &str,
        step: u32,
        verdict: Verdict,
        reason: &str,
    ) -> Result<pb::Transfer, TransferError> {
        let id = transfer_id(id)?;
        let record = self
            .saga
            .decide(caller, request_id, id, step as usize, verdict, reason)
            .await?;
        Ok(self.view(caller, &record))
    }

    async fn list(
        &self,
        caller: &Caller,
        request: pb::ListTransfersRequest,
    ) -> Result<pb::ListTransfersResponse, TransferError> {
        let limit = page_size(request.page_size)?;
        let after = page_token(&request.page_token)?;
        let store = self.saga.store();
        let page = match request.view() {
            pb::TransferView::Unspecified | pb::TransferView::Inbox => {
                let jurisdiction = match &caller.jurisdiction {
                    Jurisdiction::School(code) => code.to_string(),
                    Jurisdiction::Division(division) => division.to_string(),
                    Jurisdiction::Nation => String::new(),
                };
                store.inbox(&jurisdiction, after, limit).await?
            }
            pb::TransferView::Jurisdiction => {
                let (incoming, outgoing) = match request.direction() {
                    pb::TransferDirection::Unspecified => (true, true),
                    pb::TransferDirection::Incoming => (true, false),
                    pb::TransferDirection::Outgoing => (false, true),
                };
                let (states, overdue): (&[&str], _) = match request.filter() {
                    pb::TransferFilter::Unspecified => (&[], None),
                    pb::TransferFilter::Pending => (&["starting", "in_progress", "approved"], None),
                    pb::TransferFilter::Overdue => (&["in_progress"], Some(self.saga.now())),
                    pb::TransferFilter::Ended => {
                        (&["completed", "rejected", "cancelled", "refused"], None)
                    }
                };
                store
                    .in_scope(
                        &scope_of(caller),
                        incoming,
                        outgoing,
                        states,
                        overdue,
                        after,
                        limit,
                    )
                    .await?
            }
        };
        Ok(pb::ListTransfersResponse {
            transfers: page
                .transfers
                .iter()
                .filter(|r| may_see(caller, r))
                .map(|r| self.view(caller, r))
                .collect(),
            next_page_token: page.next.unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl TransferService for TransferApi {
    async fn start_transfer(
        &self,
        request: Request<pb::StartTransferRequest>,
    ) -> Result<Response<pb::StartTransferResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let r = request.get_ref();
        let start = domain::validate_start(&StartInput {
            idempotency_key: &r.idempotency_key,
            receiving_school_code: &r.receiving_school_code,
            registry_number: &r.registry_number,
            id_number: &r.id_number,
            name: &r.name,
            birth_date: &r.birth_date,
            target_grade: r.target_grade,
            reason: &r.reason,
            evidence: &r.evidence,
        })
        .map_err(TransferError::InvalidArgument)?;
        let record = self.saga.start(caller, request_id, start).await?;
        Ok(Response::new(pb::StartTransferResponse {
            transfer: Some(self.view(caller, &record)),
        }))
    }

    async fn approve_transfer(
        &self,
        request: Request<pb::ApproveTransferRequest>,
    ) -> Result<Response<pb::ApproveTransferResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let r = request.get_ref();
        let transfer = self
            .decide(
                caller,
                request_id,
                &r.transfer_id,
                r.step,
                Verdict::Approve,
                &r.remark,
            )
            .await?;
        Ok(Response::new(pb::ApproveTransferResponse {
            transfer: Some(transfer),
        }))
    }

    async fn reject_transfer(
        &self,
        request: Request<pb::RejectTransferRequest>,
    ) -> Result<Response<pb::RejectTransferResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let r = request.get_ref();
        let transfer = self
            .decide(
                caller,
                request_id,
                &r.transfer_id,
                r.step,
                Verdict::Reject,
                &r.reason,
            )
            .await?;
        Ok(Response::new(pb::RejectTransferResponse {
            transfer: Some(transfer),
        }))
    }

    async fn cancel_transfer(
        &self,
        request: Request<pb::CancelTransferRequest>,
    ) -> Result<Response<pb::CancelTransferResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let r = request.get_ref();
        let id = transfer_id(&r.transfer_id)?;
        let record = self.saga.cancel(caller, request_id, id, &r.reason).await?;
        Ok(Response::new(pb::CancelTransferResponse {
            transfer: Some(self.view(caller, &record)),
        }))
    }

    async fn get_transfer(
        &self,
        request: Request<pb::GetTransferRequest>,
    ) -> Result<Response<pb::GetTransferResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let id = transfer_id(&request.get_ref().transfer_id)?;
        let record = self
            .saga
            .store()
            .get(id)
            .await?
            .filter(|r| may_see(caller, r))
            .ok_or_else(|| TransferError::NotFound(format!("transfer {id}")))?;
        let mut transfer = self.view(caller, &record);
        // The evidence of each decision, where the caller sees who decided (it names them).
        for kept in self.saga.store().evidence_of(id).await? {
            if let Some(step) = transfer.steps.get_mut(kept.step)
                && !step.jurisdiction.is_empty()
            {
                step.evidence = Some(crate::saga::evidence_to_wire(&kept));
            }
        }
        Ok(Response::new(pb::GetTransferResponse {
            transfer: Some(transfer),
        }))
    }

    async fn list_transfers(
        &self,
        request: Request<pb::ListTransfersRequest>,
    ) -> Result<Response<pb::ListTransfersResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        Ok(Response::new(
            self.list(caller, request.get_ref().clone()).await?,
        ))
    }

    async fn count_overdue_transfers(
        &self,
        request: Request<pb::CountOverdueTransfersRequest>,
    ) -> Result<Response<pb::CountOverdueTransfersResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        if caller.level == Level::School {
            return Err(TransferError::PermissionDenied(
                "overdue counts are kept per authority; a school sees its inbox".into(),
            )
            .into());
        }
        let counts = self
            .saga
            .store()
            .overdue_counts(&scope_of(caller), self.saga.now())
            .await?;
        Ok(Response::new(pb::CountOverdueTransfersResponse {
            counts: counts
                .into_iter()
                .map(|(jurisdiction, overdue)| pb::OverdueCount {
                    jurisdiction,
                    overdue: overdue as u32,
                })
                .collect(),
        }))
    }

    async fn list_set_aside_messages(
        &self,
        request: Request<pb::ListSetAsideMessagesRequest>,
    ) -> Result<Response<pb::ListSetAsideMessagesResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        if !matches!(caller.level, Level::Ministry | Level::Province) {
            return Err(TransferError::PermissionDenied(
                "the messages between provinces are the province's operators' to read".into(),
            )
            .into());
        }
        let request = request.into_inner();
        let direction = match request.direction.as_str() {
            "" | "inbox" => "inbox",
            "outbox" => "outbox",
            _ => {
                return Err(TransferError::invalid("direction", "must be inbox or outbox").into());
            }
        };
        let size = match request.page_size {
            0 => 100,
            n => n.min(500),
        } as i64;
        let before = match request.page_token.as_str() {
            "" => None,
            token => Some(token.parse::<i64>().map_err(|_| {
                TransferError::invalid("page_token", "is not a token this service gave")
            })?),
        };
        let rows = self
            .saga
            .store()
            .set_aside_messages(direction, before, size + 1)
            .await?;
        let more = rows.len() as i64 > size;
        let rows: Vec<_> = rows.into_iter().take(size as usize).collect();
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => last.sequence.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListSetAsideMessagesResponse {
            messages: rows
                .into_iter()
                .map(|m| pb::SetAsideMessage {
                    sequence: m.sequence as u64,
                    direction: m.direction.to_owned(),
                    message_id: m.message_id.to_string(),
                    transfer_id: m.transfer_id.to_string(),
                    province: m.province,
                    reason: m.reason,
                    at: m.at.to_rfc3339(),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn describe_calendar(
        &self,
        request: Request<pb::DescribeCalendarRequest>,
    ) -> Result<Response<pb::DescribeCalendarResponse>, Status> {
        let _ = xueji_rpc::caller(&request)?;
        let policy = self.saga.policy();
        let backlog = self.saga.store().backlog(self.saga.now()).await?;
        let province_days_off = policy
            .approvals
            .province
            .get(&self.province)
            .map(|p| p.days_off.iter().map(|d| d.to_string()).collect())
            .unwrap_or_default();
        Ok(Response::new(pb::DescribeCalendarResponse {
            loaded_years: self.saga.calendar().loaded_years().collect(),
            national_version: self.saga.calendar_version().await?,
            province_days_off,
            estimated_deadlines: backlog.estimated_deadlines as u32,
        }))
    }
}
