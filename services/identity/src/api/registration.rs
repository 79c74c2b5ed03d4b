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
    store::{Actor, Approval, Seat, StudentRecord, outbox},
};

impl IdentityApi {
    pub(super) async fn register(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RegisterStudentRequest,
    ) -> Result<pb::RegisterStudentResponse, IdentityError> {
        let continues = request.continues_registry_number.trim().to_owned();
        // The class the school puts the pupil in, found before anything is written.
        let class = match request.class_name.trim() {
            "" => None,
            name => Some(self.class_for_registration(&request, name).await?),
        };
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
        if let Some(class) = class {
            // Seated once: a replay finds the pupil in the class already.
            let number = match &registered {
                Registered::New { number, .. } => number.to_string(),
                Registered::Stored { record, .. } => record.registry_number.clone(),
            };
            let record = self
                .visible_student(caller, "registry_number", &number)
                .await?;
            if record.class.as_ref().is_none_or(|c| c.id != class) {
                self.store
                    .assign_class(
                        record.id,
                        &record.registry_number,
                        Some(Seat {
                            class_id: class,
                            seat: None,
                        }),
                        Actor { caller, request_id },
                    )
                    .await?;
            }
            let (replayed, continued) = match &registered {
                Registered::New { .. } => (false, false),
                Registered::Stored {
                    replayed,
                    continued,
                    ..
                } => (*replayed, *continued),
            };
            return Ok(pb::RegisterStudentResponse {
                student: Some(convert::student(self.store.student(record.id).await?)),
                replayed,
                continued,
            });
        }
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

impl IdentityApi {
    /// The class of the school's current school year named `name`, for a registration: it must
    /// be open and of the registration's grade.
    async fn class_for_registration(
        &self,
        request: &pb::RegisterStudentRequest,
        name: &str,
    ) -> Result<i64, IdentityError> {
        let year = self
            .cycle
            .as_ref()
            .map(|cycle| cycle.school_year_now())
            .ok_or_else(|| IdentityError::invalid("class_name", "this node keeps no classes"))?;
        self.store
            .class_for_pupil(request.school_code.trim(), year, name, request.grade)
            .await?
            .map_err(|reason| IdentityError::invalid("class_name", reason))
    }
}
