//! The use cases of the saga: start, decide, cancel, act on passed deadlines, carry out the
//! effects owed to identity. Each change of a transfer happens in one transaction that locks
//! the transfer's row first, writes the steps, the transfer's state, the audit entry and any
//! effect owed (the outbox) together.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use prometheus_client::metrics::gauge::Gauge;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use uuid::Uuid;
use xueji_auth::{Caller, Clock, Level};
use xueji_calendar::{WorkingCalendar, china_today};
use xueji_workflow::{Decision, Outcome, Party, Rules, Task, Verdict, WorkflowError};

use crate::{
    TransferError,
    domain::{self, SchoolFacts, StartRequest, StudentKey},
    links::{CalendarSource, EnrollmentLedger, Held, RelayLink, SchoolList},
    policy::SagaPolicy,
    store::{
        self, Actor, Inserted, NewTransfer, Role, SendingSide, Store, TransferRecord,
        TransferState,
        sweep::{self, EffectKind},
    },
};

mod across;
mod calendar;
mod evidence;

pub use evidence::evidence_to_wire;
mod inbox;

/// How long a start may stay `starting` before the sweeper takes it over.
const START_TAKEOVER_SECS: f64 = 30.0;

/// The saga's state, shared by handlers and background work.
#[derive(Debug)]
pub struct Saga {
    store: Store,
    ledger: Arc<dyn EnrollmentLedger>,
    schools: Arc<dyn SchoolList>,
    policy: Arc<SagaPolicy>,
    clock: Clock,
    effects_due: Notify,
    gauges: SagaGauges,
    /// The province this service serves (2 digits): its parties' steps are decided here.
    province: String,
    /// The national node's relay, for transfers between provinces (none: inside one province
    /// only).
    relay: Option<Arc<dyn RelayLink>>,
    /// Messages to send or to apply.
    relay_due: Notify,
    /// The national node's calendar registry (none: the bundled years only).
    calendar_source: Option<Arc<dyn CalendarSource>>,
    /// The transfers service's TLS material: it signs this province's decisions that cross
    /// provinces and verifies the other province's (`domain::evidence`).
    notary: xueji_rpc::TlsSource,
    /// The calendar deadlines are counted on: the policy's, with the years pulled from the
    /// national node (see [`calendar`]).
    calendar: std::sync::RwLock<Arc<WorkingCalendar>>,
}

/// The saga's gauges on the node's metrics (each round of the background work sets them).
#[derive(Debug, Clone, Default)]
pub struct SagaGauges {
    pub estimated_deadlines: Gauge,
    pub overdue_steps: Gauge,
    pub effects_pending: Gauge,
    /// Messages from other provinces set aside for good (see `ListSetAsideMessages`).
    pub messages_set_aside: Gauge,
}

fn workflow_error(error: WorkflowError) -> TransferError {
    match error {
        WorkflowError::ReasonRequired => TransferError::invalid("reason", "a reason is required"),
        WorkflowError::NoSuchStep(n) => {
            TransferError::invalid("step", format!("there is no step {n}"))
        }
        other => TransferError::FailedPrecondition(other.to_string()),
    }
}

/// How the receiving school identified the student, as stored.
fn stored_student(record: &TransferRecord) -> Result<StudentKey, TransferError> {
    StudentKey::parse(&record.typed_number).ok_or_else(|| {
        TransferError::Internal(format!(
            "transfer {}: the stored student number does not parse",
            record.id
        ))
    })
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

/// What a saga is made of: its store, its links, its rules.
#[derive(Debug)]
pub struct SagaParts {
    pub store: Store,
    pub ledger: Arc<dyn EnrollmentLedger>,
    pub schools: Arc<dyn SchoolList>,
    pub policy: Arc<SagaPolicy>,
    pub clock: Clock,
    pub gauges: SagaGauges,
    /// The province this service serves (2 digits).
    pub province: String,
    /// The national node's relay; `None` for a saga inside one province only.
    pub relay: Option<Arc<dyn RelayLink>>,
    /// The national node's calendar registry; `None`: the policy's calendar only.
    pub calendar_source: Option<Arc<dyn CalendarSource>>,
    /// The TLS material of the transfers service, whose key signs its decisions.
    pub notary: xueji_rpc::TlsSource,
}

impl Saga {
    pub fn new(parts: SagaParts) -> Arc<Self> {
        Arc::new(Self {
            store: parts.store,
            ledger: parts.ledger,
            schools: parts.schools,
            clock: parts.clock,
            effects_due: Notify::new(),
            gauges: parts.gauges,
            province: parts.province,
            relay: parts.relay,
            relay_due: Notify::new(),
            calendar_source: parts.calendar_source,
            notary: parts.notary,
            calendar: std::sync::RwLock::new(Arc::new(parts.policy.calendar.clone())),
            policy: parts.policy,
        })
    }

    pub fn province(&self) -> &str {
        &self.province
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn policy(&self) -> &SagaPolicy {
        &self.policy
    }

    /// How far the node's clock runs ahead of the system's (zero in service).
    fn skew_seconds(&self) -> f64 {
        (self.clock.now() - Utc::now()).num_milliseconds() as f64 / 1000.0
    }

    /// Runs `f` on the workflow's rules; a school's escalation goes to `school_authority`.
    fn with_rules<T>(&self, school_authority: &str, f: impl FnOnce(&Rules<'_>) -> T) -> T {
        let school_authority = school_authority.to_owned();
        let above = move |party: &Party| domain::level_above(party, &school_authority);
        let calendar = self.calendar();
        f(&Rules {
            policy: &self.policy.approvals,
            calendar: &calendar,
            level_above: &above,
        })
    }

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
    async fn open_approvals(
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
                .rules
                .check(china_today(now), &sending, &receiving)
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
            self.policy.approvals.provincial_step(p)
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
    fn refusal_or(&self, record: TransferRecord) -> Result<TransferRecord, TransferError> {
        match (record.state, &record.refusal) {
            (TransferState::Refused, Some(reason)) => Err(TransferError::Refused {
                reason: reason.clone(),
                national_code: record.national_code.clone(),
                message: record.end_reason.clone().unwrap_or_default(),
            }),
            _ => Ok(record),
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<TransferRecord, TransferError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| TransferError::NotFound(format!("transfer {id}")))
    }

    /// A decision by the party of step `position`.
    pub async fn decide(
        &self,
        caller: &Caller,
        request_id: &str,
        id: Uuid,
        position: usize,
        verdict: Verdict,
        reason: &str,
    ) -> Result<TransferRecord, TransferError> {
        if !domain::may_decide_some_step(caller) {
            return Err(TransferError::PermissionDenied(
                "steps are decided by an authority's approvers and by the sending school".into(),
            ));
        }
        let who = caller.describe();
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .filter(|r| may_see(caller, r))
            .ok_or_else(|| TransferError::NotFound(format!("transfer {id}")))?;
        if record.state == TransferState::Starting {
            return Err(TransferError::FailedPrecondition(
                "the transfer is still starting: its steps are not open yet".into(),
            ));
        }
        let step = record.task.steps.get(position).ok_or_else(|| {
            TransferError::invalid("step", format!("there is no step {position}"))
        })?;
        if !domain::may_decide(caller, &step.party) {
            return Err(TransferError::FailedPrecondition(format!(
                "step {position} is decided by {} {}",
                step.party.kind, step.party.jurisdiction
            )));
        }
        if step.party.province != self.province {
            return Err(TransferError::FailedPrecondition(format!(
                "step {position} is decided at the node of province {}",
                step.party.province
            )));
        }
        let mut task = record.task.clone();
        let now = self.clock.now();
        let sending_authority = record.sending_authority.clone().unwrap_or_default();
        let outcome = self.with_rules(&sending_authority, |rules| {
            task.decide(
                position,
                Decision {
                    verdict,
                    by: who.clone(),
                    at: now,
                    reason: reason.trim().to_owned(),
                    on_timeout: false,
                },
                rules,
            )
        });
        let outcome = outcome.map_err(workflow_error)?;
        if outcome == Outcome::AlreadyApplied {
            return Ok(record);
        }
        let version = store::save_task(&mut tx, id, record.role, &task).await?;
        self.replicate_task(&mut tx, &record, &task, version)
            .await?;
        let actor = Actor {
            who: &who,
            jurisdiction: &caller.jurisdiction.as_string(),
            request_id,
        };
        store::audit(
            &mut tx,
            actor,
            match verdict {
                Verdict::Approve => "transfers.approve",
                Verdict::Reject => "transfers.reject",
            },
            id,
            Some(serde_json::json!({ "step": position, "state": "open" })),
            Some(serde_json::json!({ "step": position, "reason": reason, "transfer": TransferState::after(task.state).as_str() })),
        )
        .await?;
        tx.commit().await?;
        self.relay_due.notify_one();
        if task.state.is_terminal() {
            self.settle(id).await;
        }
        self.get(id).await
    }

    /// The receiving side withdraws the transfer.
    pub async fn cancel(
        &self,
        caller: &Caller,
        request_id: &str,
        id: Uuid,
        reason: &str,
    ) -> Result<TransferRecord, TransferError> {
        let who = caller.describe();
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .filter(|r| may_see(caller, r))
            .ok_or_else(|| TransferError::NotFound(format!("transfer {id}")))?;
        let receiving_side = matches!(caller.level, Level::School | Level::County | Level::City)
            && caller.may_access_record(&record.receiving_school, &record.receiving_division);
        if !receiving_side {
            return Err(TransferError::PermissionDenied(
                "only the receiving school or its authorities may cancel a transfer".into(),
            ));
        }
        if record.state == TransferState::Starting {
            return Err(TransferError::FailedPrecondition(
                "the transfer is still starting; cancel it once it is in progress".into(),
            ));
        }
        let actor = Actor {
            who: &who,
            jurisdiction: &caller.jurisdiction.as_string(),
            request_id,
        };
        let mut task = record.task.clone();
        let now = self.clock.now();
        let turn_elsewhere = task
            .open_step()
            .is_some_and(|at| task.steps[at].party.province != self.province);
        if turn_elsewhere && record.role == Role::Receiving {
            // The sending province holds the turn: it applies the cancellation (unless its
            // last approval came first) and sends the task back.
            if reason.trim().is_empty() {
                return Err(TransferError::invalid("reason", "a reason is required"));
            }
            self.request_cancel(&mut tx, &record, &who, reason.trim(), now)
                .await?;
            store::audit(
                &mut tx,
                actor,
                "transfers.cancel_requested",
                id,
                None,
                Some(serde_json::json!({ "reason": reason, "sent_to": record.other_province })),
            )
            .await?;
            tx.commit().await?;
            self.relay_due.notify_one();
            return self.get(id).await;
        }
        let outcome = task
            .cancel(&who, reason.trim(), now)
            .map_err(workflow_error)?;
        if outcome == Outcome::AlreadyApplied {
            return Ok(record);
        }
        let version = store::save_task(&mut tx, id, record.role, &task).await?;
        self.replicate_task(&mut tx, &record, &task, version)
            .await?;
        store::audit(
            &mut tx,
            actor,
            "transfers.cancel",
            id,
            Some(serde_json::json!({ "state": record.state.as_str() })),
            Some(serde_json::json!({ "state": "cancelled", "reason": reason })),
        )
        .await?;
        tx.commit().await?;
        self.relay_due.notify_one();
        self.settle(id).await;
        self.get(id).await
    }

    /// Carries out at once what `id` owes identity (the caller then sees the outcome); left to
    /// the background when identity does not answer.
    async fn settle(&self, id: Uuid) {
        if let Err(error) = self.run_effects(Some(id), 10).await {
            tracing::warn!(%id, %error, "transfer effect left for the background");
        }
        self.effects_due.notify_one();
    }

    /// Acts on every deadline passed (database clock, moved by the node's clock skew): claims
    /// due transfers with SKIP LOCKED, so concurrent sweepers never act on one twice. Answers
    /// how many transfers were acted on.
    pub async fn sweep_deadlines(&self, batch: i64) -> Result<usize, TransferError> {
        let mut acted = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let now = sweep::database_now(&mut tx, self.skew_seconds()).await?;
            let due = sweep::claim_due(&mut tx, now, &self.province, batch).await?;
            if due.is_empty() {
                return Ok(acted);
            }
            let mut settled = Vec::new();
            for id in &due {
                let Some(record) = store::load(&mut tx, *id, false).await? else {
                    continue;
                };
                let mut task = record.task.clone();
                let sending_authority = record.sending_authority.clone().unwrap_or_default();
                let mut outcomes = Vec::new();
                // A long outage may have let several escalation deadlines pass: act on each.
                for _ in 0..8 {
                    let outcome =
                        self.with_rules(&sending_authority, |rules| task.expire(now, rules));
                    if outcome == Outcome::NotDue {
                        break;
                    }
                    let finished = matches!(outcome, Outcome::Finished(_));
                    outcomes.push(format!("{outcome:?}"));
                    if finished {
                        break;
                    }
                }
                if outcomes.is_empty() {
                    continue;
                }
                let version = store::save_task(&mut tx, *id, record.role, &task).await?;
                self.replicate_task(&mut tx, &record, &task, version)
                    .await?;
                store::audit(
                    &mut tx,
                    Actor {
                        who: "system",
                        jurisdiction: "",
                        request_id: "",
                    },
                    "transfers.deadline",
                    *id,
                    None,
                    Some(serde_json::json!({ "at": now, "outcomes": outcomes })),
                )
                .await?;
                if task.state.is_terminal() {
                    settled.push(*id);
                }
                acted += 1;
            }
            tx.commit().await?;
            self.relay_due.notify_one();
            if !settled.is_empty() {
                self.effects_due.notify_one();
            }
            if (due.len() as i64) < batch {
                return Ok(acted);
            }
        }
    }

    /// Carries out effects owed to identity (all, or `only` one transfer's); each is claimed
    /// with SKIP LOCKED and marked done in the same transaction after identity answered.
    pub async fn run_effects(
        &self,
        only: Option<Uuid>,
        batch: i64,
    ) -> Result<usize, TransferError> {
        let mut done = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let effects = sweep::claim_effects(&mut tx, only, batch).await?;
            if effects.is_empty() {
                return Ok(done);
            }
            let mut failures = 0;
            for effect in &effects {
                let result = match effect.kind {
                    EffectKind::Release => self.ledger.release(effect.transfer_id).await,
                    EffectKind::TransferOut => self.send_record(&mut tx, effect.transfer_id).await,
                    EffectKind::Complete => {
                        let record = store::load(&mut tx, effect.transfer_id, false)
                            .await?
                            .ok_or_else(|| {
                                TransferError::Internal(format!(
                                    "effect of a missing transfer {}",
                                    effect.transfer_id
                                ))
                            })?;
                        self.ledger
                            .complete(
                                effect.transfer_id,
                                &record.receiving_school,
                                record.target_grade,
                                china_today(self.clock.now()),
                            )
                            .await
                    }
                };
                match result {
                    Ok(()) => {
                        sweep::effect_done(&mut tx, effect).await?;
                        done += 1;
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(transfer = %effect.transfer_id, %error, "transfer effect failed; retried later");
                        sweep::effect_failed(&mut tx, effect, &error.to_string()).await?;
                    }
                }
            }
            tx.commit().await?;
            // A transfer out queued its record for the other province.
            self.relay_due.notify_one();
            if failures > 0 || (effects.len() as i64) < batch {
                return Ok(done);
            }
        }
    }

    /// Takes over starts left `starting` (a crash, or a client that gave up).
    pub async fn resume_starts(&self) -> Result<usize, TransferError> {
        let ids = self
            .store
            .interrupted_starts(START_TAKEOVER_SECS, 50)
            .await?;
        let mut resumed = 0;
        for id in ids {
            let actor = Actor {
                who: "system",
                jurisdiction: "",
                request_id: "",
            };
            match self.drive_start(id, actor, None).await {
                Ok(_) | Err(TransferError::Refused { .. }) => resumed += 1,
                Err(error) => tracing::warn!(%id, %error, "resuming a start failed; retried later"),
            }
        }
        Ok(resumed)
    }

    /// The background work: deadlines, effects, interrupted starts, every `interval` (effects
    /// also as soon as one is queued).
    /// Each round runs as its own task: a panic in one (a bug, or input nothing should have
    /// let through) is logged and the next round runs, so the deadlines never stop.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        loop {
            let round = tokio::spawn(self.clone().background_round());
            if let Err(failure) = round.await {
                tracing::error!(%failure, "a round of the transfer sweeper failed; the next one runs");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.effects_due.notified() => {}
            }
        }
    }

    async fn background_round(self: Arc<Self>) {
        {
            if let Err(error) = self.sweep_deadlines(100).await {
                tracing::warn!(%error, "deadline sweep failed");
            }
            if let Err(error) = self.run_effects(None, 50).await {
                tracing::warn!(%error, "transfer effects failed");
            }
            if let Err(error) = self.resume_starts().await {
                tracing::warn!(%error, "resuming starts failed");
            }
            match self.store.backlog(self.clock.now()).await {
                Ok(backlog) => {
                    self.gauges
                        .estimated_deadlines
                        .set(backlog.estimated_deadlines);
                    self.gauges.overdue_steps.set(backlog.overdue_steps);
                    self.gauges.effects_pending.set(backlog.effects_pending);
                    if backlog.estimated_deadlines > 0 {
                        tracing::warn!(
                            steps = backlog.estimated_deadlines,
                            "open transfer deadlines reach a year whose calendar is not loaded"
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "reading the transfer backlog failed"),
            }
        }
    }

    /// The node's "now" for deadlines shown to users.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// May `caller` see `record` at all? The parties over either school, and anyone deciding a step.
pub fn may_see(caller: &Caller, record: &TransferRecord) -> bool {
    caller.may_access_record(&record.receiving_school, &record.receiving_division)
        || sees_sending_side(caller, record)
        || record
            .task
            .steps
            .iter()
            .any(|s| domain::may_decide(caller, &s.party))
}

/// May `caller` see the sending side (the student's school and number)? Those over the sending
/// school always; everyone who may see the transfer once it completed.
pub fn sees_sending_side(caller: &Caller, record: &TransferRecord) -> bool {
    match (&record.sending_school, &record.sending_division) {
        (Some(school), Some(division)) => caller.may_access_record(school, division),
        _ => false,
    }
}
