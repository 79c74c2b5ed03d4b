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
use tracing::Instrument;
use uuid::Uuid;
use xueji_calendar::china_today;
use xueji_proto::transfers::v1::{self as pb, saga_message::Body};
use xueji_workflow::{Outcome, Task};

use super::{Saga, stored_student};
use crate::{
    TransferError,
    domain::{SchoolFacts, StudentKey},
    links::Held,
    store::{
        self, Actor, NewTransfer, Role, SendingSide, TransferRecord, TransferState,
        relay::{self, Received},
    },
};

/// How long a start waits for the student's province to answer before answering `starting`.
const HOLD_PATIENCE: Duration = Duration::from_secs(3);

const SYSTEM: Actor<'static> = Actor {
    who: "system",
    jurisdiction: "",
    request_id: "",
};

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

fn bad_message(what: impl std::fmt::Display) -> TransferError {
    TransferError::Internal(format!(
        "a message from another province does not read: {what}"
    ))
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
        let update = pb::TaskUpdate {
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

    /// Takes messages the national node forwards; answers how many were new.
    pub async fn take_messages(&self, messages: &[pb::SagaMessage]) -> Result<u32, TransferError> {
        let mut rows = Vec::with_capacity(messages.len());
        for (at, message) in messages.iter().enumerate() {
            let message_id: Uuid = message.message_id.parse().map_err(|_| {
                TransferError::invalid("messages.message_id", format!("message {at}: not a UUID"))
            })?;
            let transfer_id: Uuid = message.transfer_id.parse().map_err(|_| {
                TransferError::invalid("messages.transfer_id", format!("message {at}: not a UUID"))
            })?;
            if message.to_province != self.province {
                return Err(TransferError::invalid(
                    "messages.to_province",
                    format!(
                        "message {at} is for province {:?}, this is {}",
                        message.to_province, self.province
                    ),
                ));
            }
            if message.body.is_none() {
                return Err(TransferError::invalid(
                    "messages.body",
                    format!("message {at} says nothing"),
                ));
            }
            rows.push((
                message_id,
                transfer_id,
                message.from_province.clone(),
                message.encode_to_vec(),
            ));
        }
        let accepted = self.store.take_messages(&rows).await?;
        self.relay_due.notify_one();
        Ok(accepted)
    }

    /// Sends what the outbox holds to the national node, oldest first; answers how many.
    pub async fn deliver_outbox(&self) -> Result<usize, TransferError> {
        let Some(link) = &self.relay else {
            return Ok(0);
        };
        let mut sent = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let Some(batch) = relay::claim_outbox(&mut tx, 200).await? else {
                return Ok(sent);
            };
            if batch.is_empty() {
                return Ok(sent);
            }
            let messages = batch
                .iter()
                .map(|m| pb::SagaMessage::decode(m.body.as_slice()).map_err(bad_message))
                .collect::<Result<Vec<_>, _>>()?;
            link.relay(messages).await?;
            let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
            relay::mark_sent(&mut tx, &ids).await?;
            tx.commit().await?;
            sent += batch.len();
            if batch.len() < 200 {
                return Ok(sent);
            }
        }
    }

    /// Applies received messages in the order taken; stops at the first that cannot be applied
    /// now (it is retried). Answers how many were applied.
    pub async fn apply_inbox(&self) -> Result<usize, TransferError> {
        let mut applied = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let Some(batch) = relay::claim_inbox(&mut tx, 50).await? else {
                return Ok(applied);
            };
            if batch.is_empty() {
                return Ok(applied);
            }
            for received in &batch {
                let message =
                    pb::SagaMessage::decode(received.body.as_slice()).map_err(bad_message)?;
                let span = tracing::info_span!(
                    "transfer_message",
                    transfer = %received.transfer_id,
                    from = %received.from_province,
                    kind = body_kind(&message),
                );
                xueji_telemetry::follow(&span, &message.traceparent);
                match self.apply(received, message).instrument(span).await {
                    Ok(()) => {
                        relay::mark_applied(&mut tx, received.id).await?;
                        applied += 1;
                    }
                    Err(error) => {
                        tracing::warn!(transfer = %received.transfer_id, %error, "a message from another province is retried later");
                        relay::apply_failed(&mut tx, received.id, &error.to_string()).await?;
                        tx.commit().await?;
                        return Ok(applied);
                    }
                }
            }
            tx.commit().await?;
            if batch.len() < 50 {
                return Ok(applied);
            }
        }
    }

    /// Sending and applying messages, as soon as there are some (and every `interval`).
    pub async fn run_relay(self: std::sync::Arc<Self>, interval: Duration) {
        loop {
            if let Err(error) = self.apply_inbox().await {
                tracing::warn!(%error, "applying messages from other provinces failed");
            }
            if let Err(error) = self.deliver_outbox().await {
                tracing::warn!(%error, "sending messages to other provinces failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.relay_due.notified() => {}
            }
        }
    }

    async fn apply(
        &self,
        received: &Received,
        message: pb::SagaMessage,
    ) -> Result<(), TransferError> {
        let id = received.transfer_id;
        let from = received.from_province.as_str();
        match message.body {
            Some(Body::HoldRequest(request)) => {
                self.hold_for_other(id, from, &message.traceparent, request)
                    .await
            }
            Some(Body::HoldAnswer(answer)) => self.hold_answered(id, from, answer).await,
            Some(Body::TaskUpdate(update)) => self.update_received(id, update).await,
            Some(Body::CancelRequest(request)) => self.cancel_requested(id, request).await,
            Some(Body::RecordMoved(moved)) => self.record_arrived(id, moved).await,
            None => Err(bad_message("a message without a body")),
        }
    }

    /// The sending side: holds the student another province asked for, and answers.
    async fn hold_for_other(
        &self,
        id: Uuid,
        from: &str,
        traceparent: &str,
        request: pb::HoldRequest,
    ) -> Result<(), TransferError> {
        let birth_date = NaiveDate::parse_from_str(&request.birth_date, "%Y-%m-%d")
            .map_err(|_| bad_message("birth_date"))?;
        let typed = if request.registry_number.is_empty() {
            request.id_number.clone()
        } else {
            request.registry_number.clone()
        };
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
    async fn hold_answered(
        &self,
        id: Uuid,
        from: &str,
        answer: pb::HoldAnswer,
    ) -> Result<(), TransferError> {
        let record = self.get(id).await?;
        if record.state != TransferState::Starting || !record.awaiting_hold {
            return Ok(());
        }
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
        let mut tx = self.store.begin().await?;
        relay::set_other_province(&mut tx, id, from).await?;
        tx.commit().await?;
        // The sending school as its own province describes it (this province's replica answers
        // for this province's schools only).
        let sending = SchoolFacts {
            code: answer
                .school_code
                .parse()
                .map_err(|_| bad_message("hold_answer.school_code"))?,
            division: answer
                .school_division
                .parse()
                .map_err(|_| bad_message("hold_answer.school_division"))?,
            registry_authority: answer
                .registry_authority
                .parse()
                .map_err(|_| bad_message("hold_answer.registry_authority"))?,
            township: None,
            // The sending side's grades are its own province's business.
            stages: Vec::new(),
        };
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

    /// Either side: the other side changed the task.
    async fn update_received(&self, id: Uuid, update: pb::TaskUpdate) -> Result<(), TransferError> {
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .ok_or_else(|| bad_message(format!("an update of unknown transfer {id}")))?;
        let version = update.version as i64;
        if version <= record.version || record.role == Role::Both {
            return Ok(());
        }
        if update.state == TransferState::Refused.as_str() {
            let refusal = store::Refusal {
                reason: &update.refusal,
                national_code: None,
                message: &update.message,
                other_province: record.other_province.as_deref(),
            };
            store::refuse(&mut tx, SYSTEM, id, refusal, record.role == Role::Sending).await?;
        } else {
            let task: Task = serde_json::from_str(&update.task_json).map_err(bad_message)?;
            relay::record_sending_side(
                &mut tx,
                id,
                SendingSide {
                    school: &update.sending_school_code,
                    division: &update.sending_division,
                    authority: &update.sending_authority,
                    registry_number: &update.registry_number,
                },
            )
            .await?;
            store::insert_steps(&mut tx, id, &task).await?;
            store::write_task(&mut tx, id, record.role, &task, Some(version)).await?;
        }
        store::audit(
            &mut tx,
            SYSTEM,
            "transfers.update_received",
            id,
            Some(serde_json::json!({ "version": record.version, "state": record.state.as_str() })),
            Some(serde_json::json!({ "version": version, "state": update.state })),
        )
        .await?;
        tx.commit().await?;
        self.effects_due.notify_one();
        Ok(())
    }

    /// The sending side: the receiving side cancels while the turn is here.
    async fn cancel_requested(
        &self,
        id: Uuid,
        request: pb::CancelRequest,
    ) -> Result<(), TransferError> {
        let at = DateTime::parse_from_rfc3339(&request.at)
            .map_err(|_| bad_message("cancel_request.at"))?
            .with_timezone(&Utc);
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .ok_or_else(|| bad_message(format!("a cancellation of unknown transfer {id}")))?;
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
                    SYSTEM,
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
                    Actor {
                        who: &request.by,
                        jurisdiction: "",
                        request_id: "",
                    },
                    "transfers.cancel",
                    id,
                    Some(serde_json::json!({ "state": record.state.as_str() })),
                    Some(serde_json::json!({ "state": "cancelled", "reason": request.reason })),
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.effects_due.notify_one();
        self.relay_due.notify_one();
        Ok(())
    }

    /// The receiving side: the record left the sending province; it opens here.
    async fn record_arrived(&self, id: Uuid, moved: pb::RecordMoved) -> Result<(), TransferError> {
        let record = self.get(id).await?;
        if record.state == TransferState::Completed {
            return Ok(());
        }
        let student = moved
            .student
            .ok_or_else(|| bad_message("record_moved without the student"))?;
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
            Some(serde_json::json!({ "registry_number": student.registry_number })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn body_kind(message: &pb::SagaMessage) -> &'static str {
    match message.body {
        Some(Body::HoldRequest(_)) => "hold_request",
        Some(Body::HoldAnswer(_)) => "hold_answer",
        Some(Body::TaskUpdate(_)) => "task_update",
        Some(Body::CancelRequest(_)) => "cancel_request",
        Some(Body::RecordMoved(_)) => "record_moved",
        None => "empty",
    }
}
