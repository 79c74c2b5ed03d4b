//! Starting a transfer: the receiving school asks, the saga checks the start, holds the
//! student, opens the approvals (or hands the start to the other province).

use sha2::{Digest, Sha256};
use uuid::Uuid;
use xueji_auth::{Caller, Level};
use xueji_calendar::china_today;
use xueji_workflow::Task;

use crate::{
    TransferError,
    domain::{self, SchoolFacts, StartRequest},
    links::Held,
    store::{self, Actor, Inserted, NewTransfer, Role, SendingSide, TransferRecord, TransferState},
};

use super::*;

impl Saga {
    /// The receiving school, if `caller` may act for it; otherwise NOT_FOUND, as if missing.
    pub async fn receiving_school(
        &self,
        caller: &Caller,
        code: &xueji_codes::SchoolCode,
    ) -> Result<SchoolFacts, TransferError> {
        self.schools
            .school(code)
            .await?
            .filter(|school| caller.may_access(&school.scope()))
            .ok_or_else(|| TransferError::NotFound(format!("school {code}")))
    }

    /// Starts a transfer: writes it `starting`, holds the student, checks the province rules,
    /// opens the first step. A retry with the same key answers the same transfer.
    pub async fn start(
        &self,
        caller: &Caller,
        request_id: &str,
        request: StartRequest,
    ) -> Result<TransferRecord, TransferError> {
        if matches!(caller.level, Level::Ministry | Level::Province) {
            return Err(TransferError::PermissionDenied(
                "transfers are started by the receiving school or its authorities".into(),
            ));
        }
        let receiving = self
            .receiving_school(caller, &request.receiving_school)
            .await?;
        if receiving.stages.is_empty() {
            return Err(TransferError::invalid(
                "receiving_school_code",
                format!(
                    "school {} teaches no primary or secondary stage",
                    receiving.code
                ),
            ));
        }
        if xueji_codes::grade_place(&receiving.stages, request.target_grade).is_none() {
            return Err(TransferError::invalid(
                "target_grade",
                format!(
                    "school {} teaches grades {} (by its length of schooling)",
                    receiving.code,
                    xueji_codes::describe_grades(&receiving.stages)
                ),
            ));
        }
        let id = Uuid::new_v4();
        let hash = request_hash(&request);
        let key = caller.scoped_key(&request.idempotency_key);
        let who = caller.describe();
        let birth = request.birth_date;
        let inserted = self
            .store
            .insert_starting(&NewTransfer {
                id,
                idempotency_key: &key,
                request_hash: &hash,
                receiving_school: receiving.code.as_str(),
                receiving_division: receiving.division.as_str(),
                receiving_authority: receiving.registry_authority.as_str(),
                typed_number: request.student.as_str(),
                typed_name: &request.name,
                typed_birth_date: birth,
                target_grade: request.target_grade,
                reason: &request.reason,
                evidence: &request.evidence,
                started_by: &who,
                traceparent: &xueji_telemetry::current_traceparent(),
            })
            .await?;
        let id = match inserted {
            Inserted::New => id,
            Inserted::Replayed(earlier) => earlier,
            Inserted::KeyReused => {
                return Err(TransferError::invalid(
                    "idempotency_key",
                    "was used before for a different transfer",
                ));
            }
        };
        let actor = Actor {
            who: &who,
            jurisdiction: &caller.jurisdiction.as_string(),
            request_id,
        };
        self.drive_start(id, actor, Some(receiving)).await
    }

    /// Carries a `starting` transfer on: hold, rules, first step. Safe to run again (the hold is
    /// idempotent on the transfer id; a transfer past `starting` is answered as it is).
    /// `receiving` is the receiving school when the caller already read it (a fresh start);
    /// a resumed start reads it again.
    pub async fn drive_start(
        &self,
        id: Uuid,
        actor: Actor<'_>,
        receiving: Option<SchoolFacts>,
    ) -> Result<TransferRecord, TransferError> {
        let record = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| TransferError::Internal(format!("transfer {id} vanished")))?;
        if record.state != TransferState::Starting {
            return self.refusal_or(record);
        }
        if record.awaiting_hold {
            // Another province was asked; its answer arrives as a message.
            return self.wait_for_start(id).await;
        }
        let student = stored_student(&record)?;
        let held = match self
            .ledger
            .hold(id, &student, &record.typed_name, record.typed_birth_date)
            .await
        {
            Ok(held) => held,
            // Not a student of this province: the national node asks the province that
            // holds the number, if another does.
            Err(TransferError::Refused { national_code, .. })
                if national_code.as_deref() == Some("2001") && self.relay.is_some() =>
            {
                self.ask_owner_to_hold(&record, &student, actor).await?;
                return self.wait_for_start(id).await;
            }
            Err(TransferError::Refused {
                reason,
                national_code,
                message,
            }) => {
                let mut tx = self.store.begin().await?;
                let refusal = store::Refusal {
                    reason: &reason,
                    national_code: national_code.as_deref(),
                    message: &message,
                    other_province: None,
                };
                store::refuse(&mut tx, actor, id, refusal, false).await?;
                tx.commit().await?;
                return Err(TransferError::Refused {
                    reason,
                    national_code,
                    message,
                });
            }
            Err(other) => return Err(other),
        };
        self.open_approvals(id, actor, held, receiving, None).await
    }

    /// After the hold: the two schools, the province rules, the parties; the transfer is
    /// `in_progress` (or refused, and the student released). `across` is the sending province
    /// of a transfer between provinces (which is then told) and its school as it describes it.
    pub(super) async fn open_approvals(
        &self,
        id: Uuid,
        actor: Actor<'_>,
        held: Held,
        receiving: Option<SchoolFacts>,
        across: Option<(&str, SchoolFacts)>,
    ) -> Result<TransferRecord, TransferError> {
        let record = self.get(id).await?;
        let (other_province, sending) = match across {
            Some((province, sending)) => (Some(province), sending),
            None => {
                let code: xueji_codes::SchoolCode = held.school_code.parse().map_err(|_| {
                    TransferError::Internal(format!(
                        "identity answered school {:?}",
                        held.school_code
                    ))
                })?;
                let sending = self.schools.school(&code).await?.ok_or_else(|| {
                    TransferError::Unavailable(format!(
                        "the school list does not hold the sending school {code} yet"
                    ))
                })?;
                (None, sending)
            }
        };
        let receiving = match receiving {
            Some(receiving) => receiving,
            None => {
                let code: xueji_codes::SchoolCode =
                    record.receiving_school.parse().map_err(|_| {
                        TransferError::Internal(format!(
                            "transfer {id}: stored school does not parse"
                        ))
                    })?;
                self.schools.school(&code).await?.ok_or_else(|| {
                    TransferError::Unavailable(format!("school {code} left the school list"))
                })?
            }
        };
        let now = self.clock.now();
        let refusal = if sending.code == receiving.code {
            Some((
                "SAME_SCHOOL",
                "the student is already enrolled at this school".to_owned(),
            ))
        } else {
            self.policy
                .current()
                .rules
                .check(
                    china_today(now),
                    &crate::domain::Move {
                        sending: &sending,
                        receiving: &receiving,
                        grade: held.grade,
                        target_grade: record.target_grade,
                    },
                )
                .err()
                .map(|r| ("PROVINCE_RULE", format!("{} ({})", r.message, r.rule)))
        };
        let role = if other_province.is_some() {
            Role::Receiving
        } else {
            Role::Both
        };
        let sending_side = SendingSide {
            school: sending.code.as_str(),
            division: sending.division.as_str(),
            authority: sending.registry_authority.as_str(),
            registry_number: &held.registry_number,
        };
        let mut tx = self.store.begin().await?;
        let Some(locked) = store::load(&mut tx, id, true).await? else {
            return Err(TransferError::Internal(format!("transfer {id} vanished")));
        };
        if locked.state != TransferState::Starting {
            drop(tx);
            return self.refusal_or(locked);
        }
        if let Some((reason, message)) = refusal {
            // Inside the province the student is released here; across provinces the sending
            // side releases it when told.
            let refusal = store::Refusal {
                reason,
                national_code: None,
                message: &message,
                other_province,
            };
            store::refuse(&mut tx, actor, id, refusal, other_province.is_none()).await?;
            if let Some(to) = other_province {
                self.send_refusal(&mut tx, &record, to, sending_side, reason, &message)
                    .await?;
            }
            tx.commit().await?;
            self.effects_due.notify_one();
            self.relay_due.notify_one();
            return Err(TransferError::Refused {
                reason: reason.to_owned(),
                national_code: None,
                message,
            });
        }
        let parties = domain::parties(&receiving, &sending, |p| {
            self.policy.current().approvals.provincial_step(p)
        });
        let task = self.with_rules(sending.registry_authority.as_str(), |rules| {
            Task::start(parties, now, rules)
        });
        store::begin_approvals(&mut tx, id, role, sending_side, &task).await?;
        if other_province.is_some() {
            let record = store::load(&mut tx, id, false)
                .await?
                .ok_or_else(|| TransferError::Internal(format!("transfer {id} vanished")))?;
            self.replicate(&mut tx, &record).await?;
        }
        store::audit(&mut tx, actor, "transfers.start", id, None,
            Some(serde_json::json!({
                "receiving_school": receiving.code.as_str(),
                "sending_school": sending.code.as_str(),
                "registry_number": held.registry_number,
                "target_grade": record.target_grade,
                "parties": task.steps.iter().map(|s| format!("{}@{}", s.party.kind, s.party.jurisdiction)).collect::<Vec<_>>(),
            })))
            .await?;
        tx.commit().await?;
        self.relay_due.notify_one();
        self.get(id).await
    }

    /// A refused transfer answers its refusal again (a retry of a refused start); any other is
    /// answered as it stands.
    pub(super) fn refusal_or(
        &self,
        record: TransferRecord,
    ) -> Result<TransferRecord, TransferError> {
        match (record.state, &record.refusal) {
            (TransferState::Refused, Some(reason)) => Err(TransferError::Refused {
                reason: reason.clone(),
                national_code: record.national_code.clone(),
                message: record.end_reason.clone().unwrap_or_default(),
            }),
            _ => Ok(record),
        }
    }
}

fn request_hash(request: &StartRequest) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in [
        request.receiving_school.as_str(),
        request.student.as_str(),
        &request.name,
        &request.birth_date.to_string(),
        &request.target_grade.to_string(),
        &request.reason,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for evidence in &request.evidence {
        hash.update(evidence.as_bytes());
        hash.update([0]);
    }
    hash.finalize().to_vec()
}
