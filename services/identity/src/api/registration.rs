//! Registration (decode, call the registrar, encode) and the registry authority's decisions on
//! it.

use std::collections::BTreeMap;

use xueji_auth::Caller;
use xueji_proto::identity::v1 as pb;

use super::{IdentityApi, NATIONAL_PATIENCE, convert};
use crate::{
    IdentityError,
    domain::{self, Decision},
    national::DeliveryOutcome,
    registrar::{KeyScope, Registered},
    store::{Actor, Approval, StudentRecord, outbox},
};

impl IdentityApi {
    pub(super) async fn register(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RegisterStudentRequest,
    ) -> Result<pb::RegisterStudentResponse, IdentityError> {
        let continues = request.continues_registry_number.trim().to_owned();
        let given: BTreeMap<String, String> = request
            .provincial_fields
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let input = convert::registration_input(request);
        let registered = self
            .registrar
            .register(
                caller,
                request_id,
                input,
                given,
                &continues,
                KeyScope::Caller,
            )
            .await?;
        Ok(match registered {
            Registered::New {
                registration,
                number,
                duplicate_name,
            } => pb::RegisterStudentResponse {
                student: Some(convert::new_student(&registration, &number, duplicate_name)),
                replayed: false,
                continued: false,
            },
            Registered::Stored {
                record,
                replayed,
                continued,
            } => pb::RegisterStudentResponse {
                student: Some(convert::student(record)),
                replayed,
                continued,
            },
        })
    }

    pub(super) async fn approve(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::ApproveRegistrationRequest,
    ) -> Result<pb::ApproveRegistrationResponse, IdentityError> {
        let record = self
            .visible_student(caller, "registry_number", &request.registry_number)
            .await?;
        Self::require_decider(caller, &record)?;
        if let Some(claim) = self.record_approval(caller, request_id, &record).await? {
            self.national
                .try_deliver_within(NATIONAL_PATIENCE, claim.sequence)
                .await;
            self.national_refusal(caller, &record, claim.sequence)
                .await?;
        }
        let record = self.store.student(record.id).await?;
        Ok(pb::ApproveRegistrationResponse {
            student: Some(convert::student(record)),
        })
    }

    /// Records the approval of a record the caller may decide: the new number issued, or the
    /// national duplicate check queued (answered as its outbox message). Approving an approved
    /// record changes nothing.
    pub(super) async fn record_approval(
        &self,
        caller: &Caller,
        request_id: &str,
        record: &StudentRecord,
    ) -> Result<Option<outbox::Queued>, IdentityError> {
        let needed =
            domain::decision_needed(record.status, Decision::Approve, &record.registry_number)
                .map_err(IdentityError::FailedPrecondition)?;
        if !needed {
            return Ok(None);
        }
        let promotion = domain::promotion_for(
            &record.registry_number,
            record.document_type,
            record.document_number.as_deref(),
            record.school_division.parse().map_err(|_| {
                IdentityError::FailedPrecondition("the school's division is invalid".into())
            })?,
            record.birth_date,
        );
        let approval = self
            .store
            .approve(record.id, &promotion, Actor { caller, request_id })
            .await?;
        self.national.wake();
        Ok(match approval {
            Approval::AwaitingNationalCheck { claim } => Some(claim),
            _ => None,
        })
    }

    /// FAILED_PRECONDITION when the national duplicate check of `record` (outbox message
    /// `sequence`) answered that another province holds its ID number.
    pub(super) async fn national_refusal(
        &self,
        caller: &Caller,
        record: &StudentRecord,
        sequence: i64,
    ) -> Result<(), IdentityError> {
        if let Some(DeliveryOutcome::Refused { owner_province, .. }) =
            outbox::outcome_of(self.store.pool(), sequence).await?
        {
            let holder = domain::problems::other_province_named(caller, &owner_province);
            return Err(IdentityError::FailedPrecondition(format!(
                "the national duplicate check refused resident ID number {}: {holder} \
                 holds a live record for it; the registration is pending again and \
                 flagged as a duplicate for the provinces' authorities to settle",
                record.document_number.as_deref().unwrap_or_default()
            )));
        }
        Ok(())
    }

    pub(super) async fn reject(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RejectRegistrationRequest,
    ) -> Result<pb::RejectRegistrationResponse, IdentityError> {
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(IdentityError::invalid(
                "reason",
                "a rejection needs a reason of 1–500 characters",
            ));
        }
        let record = self
            .visible_student(caller, "registry_number", &request.registry_number)
            .await?;
        Self::require_decider(caller, &record)?;
        self.store
            .reject(record.id, reason, Actor { caller, request_id })
            .await?;
        self.national.wake();
        let record = self.store.student(record.id).await?;
        Ok(pb::RejectRegistrationResponse {
            student: Some(convert::student(record)),
        })
    }
}
