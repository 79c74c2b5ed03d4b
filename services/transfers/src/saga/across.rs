//! Transfers between provinces. The receiving province coordinates; the sending province holds
//! the sending-side steps. Every change is reported to the other side by a message written in
//! the change's own transaction (the outbox), carried through the national node, and taken once
//! on arrival (the inbox); applying a message again changes nothing (each handler checks the
//! transfer's state or version first), so a crash anywhere only means a message is sent or
//! applied again.
//!
//! ```text
//! receiving R                     national N                   sending S
//! start: own identity says 2001
//!   HoldRequest (to: owner) ─────▶ finds the owner ──────────▶ holds the student (identity)
//!                       ◀───────────────────────────────────── HoldAnswer
//! rules, parties, first step
//!   TaskUpdate v1 ─────────────────────────────────────────────▶ copy of the steps
//! receiving authority decides
//!   TaskUpdate v2 ─────────────────────────────────────────────▶ sending school's turn
//!                       ◀───────────────────────────────────── TaskUpdate v3, v4 … (approved)
//!                       ◀───── owner := R ◀─────────────────── RecordMoved (transfer_out done)
//! identity transfer_in: completed
//! ```

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use xueji_calendar::china_today;
use xueji_proto::transfers::v1::{self as pb, saga_message::Body};
use xueji_workflow::{Outcome, Task, TaskState};

use super::{Saga, stored_student};
use crate::{
    TransferError,
    domain::{
        SchoolFacts, StudentKey,
        remote::{self, RemoteRefusal},
    },
    links::Held,
    store::{self, Actor, NewTransfer, Role, SendingSide, TransferRecord, TransferState, relay},
};

/// How long a start waits for the student's province to answer before answering `starting`.
const HOLD_PATIENCE: Duration = Duration::from_secs(3);

const SYSTEM: Actor<'static> = Actor {
    who: "system",
    jurisdiction: "",
    request_id: "",
};

/// Who a change another province's message made is recorded as: that province, never the
/// user it names (who stays in the entry's data).
fn remote_actor_name(province: &str) -> String {
    format!("province:{province}")
}

fn remote_actor(name: &str) -> Actor<'_> {
    Actor {
        who: name,
        jurisdiction: "",
        request_id: "",
    }
}

/// A message's id, derived from what it reports: writing the same report again (a retried
/// handler) queues nothing new, and the receiver takes it once.
fn message_id(transfer: Uuid, kind: &str, version: i64) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(transfer.as_bytes());
    hash.update(kind.as_bytes());
    hash.update(version.to_be_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.finalize()[..16]);
    // A version-8 (custom) UUID of the RFC 4122 variant.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A message from another province that can never apply (it is set aside with this reason).
fn bad_message(what: impl std::fmt::Display) -> TransferError {
    TransferError::FailedPrecondition(format!("a message from another province: {what}"))
}

/// A refusal of a message field (see [`remote`]).
fn refused(error: RemoteRefusal) -> TransferError {
    bad_message(error)
}

/// Whether a message from `from` is about a transfer this province shares with `from`.
fn check_counterpart(record: &TransferRecord, from: &str) -> Result<(), TransferError> {
    if record.role == Role::Both || record.other_province.as_deref() != Some(from) {
        return Err(bad_message(format!(
            "transfer {} is not one this province shares with province {from}",
            record.id
        )));
    }
    Ok(())
}

impl Saga {
    /// Queues `body` about `transfer` for `to` ('' = the province owning the student), in
    /// `conn`'s transaction, carrying the transfer's trace context.
    async fn send(
        &self,
        conn: &mut sqlx::PgConnection,
        (transfer, traceparent): (Uuid, &str),
        to: &str,
        kind: &str,
        version: i64,
        body: Body,
    ) -> Result<(), TransferError> {
        let id = message_id(transfer, kind, version);
        let message = pb::SagaMessage {
            message_id: id.to_string(),
            transfer_id: transfer.to_string(),
            from_province: self.province.clone(),
            to_province: to.to_owned(),
            traceparent: traceparent.to_owned(),
            body: Some(body),
        };
        relay::queue_message(conn, id, transfer, to, &message.encode_to_vec()).await
    }

    /// The student is not in this province: asks the province that holds the number (found by
    /// the national node) to hold it.
    pub(super) async fn ask_owner_to_hold(
        &self,
        record: &TransferRecord,
        student: &StudentKey,
        actor: Actor<'_>,
    ) -> Result<(), TransferError> {
        let (registry_number, id_number) = match student {
            StudentKey::RegistryNumber(n) => (n.to_string(), String::new()),
            StudentKey::IdNumber(id) => (String::new(), id.to_string()),
        };
        let request = pb::HoldRequest {
            registry_number,
            id_number,
            name: record.typed_name.clone(),
            birth_date: date_text(record.typed_birth_date),
            receiving_school_code: record.receiving_school.clone(),
            receiving_division: record.receiving_division.clone(),
            receiving_authority: record.receiving_authority.clone(),
            target_grade: record.target_grade,
            reason: record.reason.clone(),
            evidence: record.evidence.clone(),
            started_by: record.started_by.clone(),
        };
        let mut tx = self.store.begin().await?;
        relay::await_hold(&mut tx, record.id).await?;
        self.send(
            &mut tx,
            (record.id, &record.traceparent),
            "",
            "hold_request",
            0,
            Body::HoldRequest(request),
        )
        .await?;
        store::audit(
            &mut tx,
            actor,
            "transfers.hold_requested",
            record.id,
            None,
            Some(serde_json::json!({ "asked": "the province holding the student" })),
        )
        .await?;
        tx.commit().await?;
        self.relay_due.notify_one();
        Ok(())
    }

    /// Waits (a while) for a start to leave `starting`; answers it as it then stands.
    pub(super) async fn wait_for_start(&self, id: Uuid) -> Result<TransferRecord, TransferError> {
        let until = tokio::time::Instant::now() + HOLD_PATIENCE;
        loop {
            let record = self.get(id).await?;
            if record.state != TransferState::Starting || tokio::time::Instant::now() >= until {
                return self.refusal_or(record);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Tells the sending side that the transfer was refused after its hold (a province rule):
    /// it releases the student.
    pub(super) async fn send_refusal(
        &self,
        conn: &mut sqlx::PgConnection,
        record: &TransferRecord,
        to: &str,
        sending: SendingSide<'_>,
        reason: &str,
        message: &str,
    ) -> Result<(), TransferError> {
        let update = pb::TaskUpdate {
            version: 1,
            state: TransferState::Refused.as_str().to_owned(),
            task_json: String::new(),
            sending_school_code: sending.school.to_owned(),
            sending_division: sending.division.to_owned(),
            sending_authority: sending.authority.to_owned(),
            registry_number: sending.registry_number.to_owned(),
            refusal: reason.to_owned(),
            message: message.to_owned(),
            signed_decisions: Vec::new(),
        };
        self.send(
            conn,
            (record.id, &record.traceparent),
            to,
            "task_update",
            1,
            Body::TaskUpdate(update),
        )
        .await
    }

    /// Sends the other side the task as `record` holds it (a transfer between provinces).
    pub(super) async fn replicate(
        &self,
        conn: &mut sqlx::PgConnection,
        record: &TransferRecord,
    ) -> Result<(), TransferError> {
        self.replicate_task(conn, record, &record.task, record.version)
            .await
    }

    /// Sends the other side `task` at `version` (nothing for a transfer inside the province).
    pub(super) async fn replicate_task(
        &self,
        conn: &mut sqlx::PgConnection,
        record: &TransferRecord,
        task: &Task,
        version: i64,
    ) -> Result<(), TransferError> {
        let Some(to) = record.other_province.as_deref() else {
            return Ok(());
        };
        if record.role == Role::Both {
            return Ok(());
        }
        let task_json = serde_json::to_string(task)
            .map_err(|e| TransferError::Internal(format!("task does not serialise: {e}")))?;
        let signed_decisions = self.sign_own_decisions(conn, record.id, task).await?;
        let update = pb::TaskUpdate {
            signed_decisions,
            version: version as u64,
            state: TransferState::after(task.state).as_str().to_owned(),
            task_json,
            sending_school_code: record.sending_school.clone().unwrap_or_default(),
            sending_division: record.sending_division.clone().unwrap_or_default(),
            sending_authority: record.sending_authority.clone().unwrap_or_default(),
            registry_number: record.registry_number.clone().unwrap_or_default(),
            refusal: String::new(),
            message: String::new(),
        };
        self.send(
            conn,
            (record.id, &record.traceparent),
            to,
            "task_update",
            version,
            Body::TaskUpdate(update),
        )
        .await
    }

    /// The receiving side asks the sending side, which holds the turn, to cancel.
    pub(super) async fn request_cancel(
        &self,
        conn: &mut sqlx::PgConnection,
        record: &TransferRecord,
        who: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), TransferError> {
        let to = record.other_province.clone().unwrap_or_default();
        let request = pb::CancelRequest {
            by: who.to_owned(),
            reason: reason.to_owned(),
            at: at.to_rfc3339(),
        };
        self.send(
            conn,
            (record.id, &record.traceparent),
            &to,
            "cancel_request",
            record.version,
            Body::CancelRequest(request),
        )
        .await
    }

    /// The sending side's last effect: closes the enrollment (identity) and sends the record to
    /// the receiving province, in the effect's transaction.
    pub(super) async fn send_record(
        &self,
        conn: &mut sqlx::PgConnection,
        id: Uuid,
    ) -> Result<(), TransferError> {
        let record = store::load(conn, id, false)
            .await?
            .ok_or_else(|| TransferError::Internal(format!("effect of a missing transfer {id}")))?;
        let to = record.other_province.clone().ok_or_else(|| {
            TransferError::Internal(format!("transfer {id} has no receiving province"))
        })?;
        let student = self.ledger.transfer_out(id).await?;
        self.send(
            conn,
            (id, &record.traceparent),
            &to,
            "record_moved",
            0,
            Body::RecordMoved(pb::RecordMoved {
                student: Some(student),
            }),
        )
        .await?;
        store::audit(
            conn,
            SYSTEM,
            "transfers.record_sent",
            id,
            None,
            Some(serde_json::json!({ "to_province": to })),
        )
        .await?;
        self.relay_due.notify_one();
        Ok(())
    }

    /// The sending side: holds the student another province asked for, and answers.
    pub(super) async fn hold_for_other(
        &self,
        id: Uuid,
        from: &str,
        traceparent: &str,
        request: pb::HoldRequest,
    ) -> Result<(), TransferError> {
        let birth_date = NaiveDate::parse_from_str(&request.birth_date, "%Y-%m-%d")
            .map_err(|_| bad_message("hold_request.birth_date: not a date"))?;
        remote::check_hold_request(
            from,
            &request.receiving_school_code,
            &request.receiving_division,
            &request.receiving_authority,
            &[
                ("hold_request.name", &request.name),
                ("hold_request.reason", &request.reason),
                ("hold_request.started_by", &request.started_by),
            ],
            &request.evidence,
            request.target_grade,
        )
        .map_err(refused)?;
        let typed = if request.registry_number.is_empty() {
            request.id_number.clone()
        } else {
            request.registry_number.clone()
        };
        if StudentKey::parse(&typed).is_none() {
            return Err(bad_message(
                "hold_request: neither a registry number nor a resident ID number",
            ));
        }
        let key = format!("relay:{id}");
        let traceparent = traceparent.to_owned();
        let inserted = self
            .store
            .insert_sending_copy(
                &NewTransfer {
                    id,
                    idempotency_key: &key,
                    request_hash: &[],
                    receiving_school: &request.receiving_school_code,
                    receiving_division: &request.receiving_division,
                    receiving_authority: &request.receiving_authority,
                    typed_number: &typed,
                    typed_name: &request.name,
                    typed_birth_date: birth_date,
                    target_grade: request.target_grade,
                    reason: &request.reason,
                    evidence: &request.evidence,
                    started_by: &request.started_by,
                    traceparent: &traceparent,
                },
                from,
            )
            .await?;
        let record = self.get(id).await?;
        if record.role != Role::Sending {
            return Err(bad_message(format!(
                "transfer {id} is not one this province sends"
            )));
        }
        check_counterpart(&record, from)?;
        if record.state != TransferState::Starting {
            // Answered before (the answer was queued with the refusal).
            return Ok(());
        }
        let student = stored_student(&record)?;
        let answer = match self
            .ledger
            .hold(id, &student, &record.typed_name, record.typed_birth_date)
            .await
        {
            Ok(held) => {
                let code: xueji_codes::SchoolCode = held.school_code.parse().map_err(|_| {
                    TransferError::Internal(format!(
                        "identity answered school {:?}",
                        held.school_code
                    ))
                })?;
                let school = self.schools.school(&code).await?.ok_or_else(|| {
                    TransferError::Unavailable(format!(
                        "the school list does not hold the sending school {code} yet"
                    ))
                })?;
                let mut tx = self.store.begin().await?;
                relay::record_sending_side(
                    &mut tx,
                    id,
                    SendingSide {
                        school: school.code.as_str(),
                        division: school.division.as_str(),
                        authority: school.registry_authority.as_str(),
                        registry_number: &held.registry_number,
                    },
                )
                .await?;
                store::audit(
                    &mut tx,
                    SYSTEM,
                    "transfers.hold_for_province",
                    id,
                    None,
                    Some(serde_json::json!({
                        "receiving_province": from, "registry_number": held.registry_number,
                        "new": inserted,
                    })),
                )
                .await?;
                let answer = pb::HoldAnswer {
                    held: true,
                    registry_number: held.registry_number,
                    school_code: held.school_code,
                    grade: held.grade,
                    school_division: school.division.to_string(),
                    registry_authority: school.registry_authority.to_string(),
                    ..Default::default()
                };
                (tx, answer)
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
                    other_province: Some(from),
                };
                store::refuse(&mut tx, SYSTEM, id, refusal, false).await?;
                let answer = pb::HoldAnswer {
                    held: false,
                    refusal: reason,
                    national_code: national_code.unwrap_or_default(),
                    message,
                    ..Default::default()
                };
                (tx, answer)
            }
            Err(other) => return Err(other),
        };
        let (mut tx, answer) = answer;
        self.send(
            &mut tx,
            (id, &record.traceparent),
            from,
            "hold_answer",
            0,
            Body::HoldAnswer(answer),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The receiving side: the student's province answered the hold.
    pub(super) async fn hold_answered(
        &self,
        id: Uuid,
        from: &str,
        answer: pb::HoldAnswer,
    ) -> Result<(), TransferError> {
        let record = self.get(id).await?;
        if record.role != Role::Receiving {
            return Err(bad_message(format!(
                "transfer {id} is not one this province receives"
            )));
        }
        if record.state != TransferState::Starting || !record.awaiting_hold {
            return Ok(());
        }
        // The national relay answers a hold it could not route itself (no province holds the
        // student): such an answer comes from no province and can only refuse.
        if from.is_empty() && answer.held {
            return Err(bad_message("a hold answer from no province cannot hold"));
        }
        remote::text("hold_answer.refusal", &answer.refusal).map_err(refused)?;
        remote::text("hold_answer.message", &answer.message).map_err(refused)?;
        remote::text("hold_answer.national_code", &answer.national_code).map_err(refused)?;
        if !answer.held {
            let national_code = (!answer.national_code.is_empty()).then_some(answer.national_code);
            let mut tx = self.store.begin().await?;
            let refusal = store::Refusal {
                reason: &answer.refusal,
                national_code: national_code.as_deref(),
                message: &answer.message,
                other_province: Some(from),
            };
            store::refuse(&mut tx, SYSTEM, id, refusal, false).await?;
            tx.commit().await?;
            return Ok(());
        }
        remote::registry_number("hold_answer.registry_number", &answer.registry_number)
            .map_err(refused)?;
        if !(1..=12).contains(&answer.grade) {
            return Err(bad_message("hold_answer.grade: must be 1 to 12"));
        }
        // The sending school as its own province describes it (this province's replica answers
        // for this province's schools only).
        let sending = SchoolFacts {
            code: remote::school_of("hold_answer.school_code", &answer.school_code, from)
                .map_err(refused)?,
            division: remote::division_of(
                "hold_answer.school_division",
                &answer.school_division,
                from,
            )
            .map_err(refused)?,
            registry_authority: remote::division_of(
                "hold_answer.registry_authority",
                &answer.registry_authority,
                from,
            )
            .map_err(refused)?,
            township: None,
            // The sending side's grades are its own province's business.
            stages: Vec::new(),
        };
        let mut tx = self.store.begin().await?;
        relay::set_other_province(&mut tx, id, from).await?;
        tx.commit().await?;
        let held = Held {
            registry_number: answer.registry_number,
            school_code: answer.school_code,
            grade: answer.grade,
        };
        match self
            .open_approvals(id, SYSTEM, held, None, Some((from, sending)))
            .await
        {
            Ok(_) | Err(TransferError::Refused { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Either side: the other side changed the task. Only what `from` owns is taken (see
    /// `xueji_workflow::Task::merge_remote`): its steps' decisions, deadlines and
    /// escalations, and a cancellation; a task that ended takes nothing.
    pub(super) async fn update_received(
        &self,
        id: Uuid,
        from: &str,
        update: pb::TaskUpdate,
    ) -> Result<(), TransferError> {
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .ok_or_else(|| bad_message(format!("an update of unknown transfer {id}")))?;
        check_counterpart(&record, from)?;
        let version = i64::try_from(update.version)
            .map_err(|_| bad_message("task_update.version: out of range"))?;
        if version <= record.version {
            return Ok(());
        }
        for (field, value) in [
            ("task_update.refusal", &update.refusal),
            ("task_update.message", &update.message),
        ] {
            remote::text(field, value).map_err(refused)?;
        }
        if update.state == TransferState::Refused.as_str() {
            // The receiving side refused the start after the hold (a rule of its province):
            // only the receiving side refuses, and only a start.
            if record.role != Role::Sending || record.state != TransferState::Starting {
                return Err(bad_message(
                    "only the receiving province refuses, and only a transfer starting",
                ));
            }
            let refusal = store::Refusal {
                reason: &update.refusal,
                national_code: None,
                message: &update.message,
                other_province: Some(from),
            };
            store::refuse(&mut tx, SYSTEM, id, refusal, true).await?;
        } else {
            if update.task_json.len() > 64 * 1024 {
                return Err(bad_message("task_update.task_json: too long"));
            }
            let remote_task: Task = serde_json::from_str(&update.task_json)
                .map_err(|e| bad_message(format!("task_update.task_json: {e}")))?;
            if record.state.is_terminal() {
                return Err(bad_message(format!(
                    "transfer {id} is {}: it takes no update",
                    record.state.as_str()
                )));
            }
            let sending_here = match (
                record.role,
                &record.sending_school,
                &record.sending_authority,
            ) {
                (Role::Sending, Some(school), Some(authority)) => {
                    Some((school.as_str(), authority.as_str()))
                }
                (Role::Sending, _, _) => {
                    return Err(bad_message(format!(
                        "transfer {id} holds no student here yet"
                    )));
                }
                _ => None,
            };
            let school_authority = record.sending_authority.clone().unwrap_or_default();
            let mut task = record.task.clone();
            let first_copy = task.steps.is_empty();
            let now = self.clock.now();
            let merged = self.with_rules(&school_authority, |rules| {
                remote::with_counterpart(&self.province, from, sending_here, |side| {
                    task.merge_remote(&remote_task, side, now, rules)
                })
            });
            let changed = merged.map_err(|e| bad_message(format!("task_update: {e}")))?;
            if record.role == Role::Sending
                && task.state == TaskState::Approved
                && !task.steps_of_decided(&self.province)
            {
                return Err(bad_message(
                    "task_update: approved without this province's own decisions",
                ));
            }
            if !changed && !first_copy {
                return Ok(());
            }
            self.check_remote_decisions(
                &mut tx,
                id,
                from,
                super::evidence::Copies {
                    before: &record.task,
                    merged: &task,
                    remote: &remote_task,
                    signed: &update.signed_decisions,
                },
            )
            .await?;
            if first_copy {
                store::insert_steps(&mut tx, id, &task).await?;
            }
            store::write_task(&mut tx, id, record.role, &task, Some(version)).await?;
        }
        let who = remote_actor_name(from);
        store::audit(
            &mut tx,
            remote_actor(&who),
            "transfers.update_received",
            id,
            Some(serde_json::json!({ "version": record.version, "state": record.state.as_str() })),
            Some(serde_json::json!({ "version": version, "from_province": from })),
        )
        .await?;
        tx.commit().await?;
        self.effects_due.notify_one();
        Ok(())
    }

    /// The sending side: the receiving side cancels while the turn is here. Only the
    /// receiving province asks; the entry names that province, and the user it gives as data.
    pub(super) async fn cancel_requested(
        &self,
        id: Uuid,
        from: &str,
        request: pb::CancelRequest,
    ) -> Result<(), TransferError> {
        let at = DateTime::parse_from_rfc3339(&request.at)
            .map_err(|_| bad_message("cancel_request.at: not a time"))?
            .with_timezone(&Utc);
        remote::text("cancel_request.by", &request.by).map_err(refused)?;
        remote::text("cancel_request.reason", &request.reason).map_err(refused)?;
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .ok_or_else(|| bad_message(format!("a cancellation of unknown transfer {id}")))?;
        check_counterpart(&record, from)?;
        if record.role != Role::Sending {
            return Err(bad_message(
                "only the receiving province asks for a cancellation",
            ));
        }
        let who = remote_actor_name(from);
        let mut task = record.task.clone();
        let outcome = if record.state == TransferState::InProgress {
            task.cancel(&request.by, &request.reason, at)
        } else {
            Ok(Outcome::AlreadyApplied)
        };
        match outcome {
            Ok(Outcome::AlreadyApplied) | Err(_) => {
                // Too late (the last approval came first) or done: the receiving side learns
                // the task as it stands from the updates already sent.
                store::audit(
                    &mut tx,
                    remote_actor(&who),
                    "transfers.cancel_too_late",
                    id,
                    None,
                    Some(serde_json::json!({ "by": request.by, "state": record.state.as_str() })),
                )
                .await?;
            }
            Ok(_) => {
                let version = store::save_task(&mut tx, id, record.role, &task).await?;
                self.replicate_task(&mut tx, &record, &task, version)
                    .await?;
                store::audit(
                    &mut tx,
                    remote_actor(&who),
                    "transfers.cancel",
                    id,
                    Some(serde_json::json!({ "state": record.state.as_str() })),
                    Some(serde_json::json!({
                        "state": "cancelled", "reason": request.reason, "by": request.by,
                    })),
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.effects_due.notify_one();
        self.relay_due.notify_one();
        Ok(())
    }

    /// The receiving side: the record left the sending province; it opens here, only for an
    /// approved transfer (this province's own steps decided here), from the province that
    /// held the student, and only for the student held: the same registry number, name,
    /// birth date and ID number. (The national relay forwarded it only when the index showed
    /// the sender owning the number.)
    pub(super) async fn record_arrived(
        &self,
        id: Uuid,
        from: &str,
        moved: pb::RecordMoved,
    ) -> Result<(), TransferError> {
        let record = self.get(id).await?;
        check_counterpart(&record, from)?;
        if record.role != Role::Receiving {
            return Err(bad_message("a record moves only to the receiving province"));
        }
        match record.state {
            TransferState::Completed => return Ok(()),
            TransferState::Approved => {}
            // The sender's approval travels before its record (one outbox, one relay order,
            // one inbox order per transfer): a record ahead of this side's approval was sent
            // without one.
            other => {
                return Err(bad_message(format!(
                    "transfer {id} is {}: no record opens for it",
                    other.as_str()
                )));
            }
        }
        if !record.task.steps_of_decided(&self.province) {
            return Err(bad_message(format!(
                "transfer {id} lacks this province's own approvals"
            )));
        }
        let student = moved
            .student
            .ok_or_else(|| bad_message("record_moved without the student"))?;
        check_moved_is_held(&record, &student)?;
        self.ledger
            .transfer_in(
                id,
                &student,
                &record.receiving_school,
                record.target_grade,
                china_today(self.clock.now()),
            )
            .await?;
        let mut tx = self.store.begin().await?;
        relay::complete(&mut tx, id).await?;
        store::audit(
            &mut tx,
            SYSTEM,
            "transfers.complete",
            id,
            None,
            Some(serde_json::json!({
                "registry_number": student.registry_number, "from_province": from,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Is the moved record the student the sending province held for `record`? Same number as
/// the hold answered, and the name, birth date and ID number the family gave at the start.
fn check_moved_is_held(
    record: &TransferRecord,
    student: &xueji_proto::identity::v1::MovedStudent,
) -> Result<(), TransferError> {
    let held = record.registry_number.as_deref().unwrap_or_default();
    if held.is_empty() || student.registry_number != held {
        return Err(bad_message(
            "record_moved: the record is not the student the hold answered",
        ));
    }
    let same_name = xueji_validation::canonical_name(&student.name)
        == xueji_validation::canonical_name(&record.typed_name);
    if !same_name || student.birth_date != date_text(record.typed_birth_date) {
        return Err(bad_message(
            "record_moved: the record's name or birth date is not the held student's",
        ));
    }
    if record.typed_number.len() == 18
        && !student
            .id_number_claim
            .eq_ignore_ascii_case(&record.typed_number)
    {
        return Err(bad_message(
            "record_moved: the record's ID number is not the held student's",
        ));
    }
    Ok(())
}
