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
use xueji_proto::transfers::v1::{self as pb, saga_message::Body};
use xueji_workflow::Task;

use super::Saga;
use crate::{
    TransferError,
    domain::{StudentKey, remote::RemoteRefusal},
    store::{self, Actor, Role, SendingSide, TransferRecord, TransferState, relay},
};

mod arrivals;

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
}
