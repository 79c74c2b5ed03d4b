//! A transfer's approvals written: the sending side's facts, its steps and task saved, a
//! refusal, the effects it owes identity queued.

use sqlx::PgConnection;
use uuid::Uuid;
use xueji_workflow::{Task, TaskState, Verdict};

use super::*;
use crate::TransferError;

/// The sending side, once the student is held.
#[derive(Debug, Clone, Copy)]
pub struct SendingSide<'a> {
    pub school: &'a str,
    pub division: &'a str,
    pub authority: &'a str,
    pub registry_number: &'a str,
}

/// Records the held student and the task's steps; the transfer is `in_progress`.
pub async fn begin_approvals(
    conn: &mut PgConnection,
    id: Uuid,
    role: Role,
    sending: SendingSide<'_>,
    task: &Task,
) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.transfers
         SET state = 'in_progress', sending_school = $2, sending_division = $3,
             sending_authority = $4, registry_number = $5, awaiting_hold = false
         WHERE id = $1",
        id,
        sending.school,
        sending.division,
        sending.authority,
        sending.registry_number
    )
    .execute(&mut *conn)
    .await?;
    insert_steps(conn, id, task).await?;
    save_task(conn, id, role, task).await?;
    Ok(())
}

/// Writes the rows of `task`'s steps that are not there yet (their state follows with
/// [`write_task`]).
pub async fn insert_steps(
    conn: &mut PgConnection,
    id: Uuid,
    task: &Task,
) -> Result<(), TransferError> {
    for (position, step) in task.steps.iter().enumerate() {
        sqlx::query!(
            "INSERT INTO transfers.steps (transfer_id, position, kind, jurisdiction, province,
                                          state, timeout_action)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (transfer_id, position) DO NOTHING",
            id,
            position as i16,
            step.party.kind,
            step.party.jurisdiction,
            step.party.province,
            step.state.as_str(),
            step.timeout.as_str(),
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes every step of `task` and the transfer's state after it (a finished task also its
/// ending). Only steps whose row differs change.
pub async fn save_task(
    conn: &mut PgConnection,
    id: Uuid,
    role: Role,
    task: &Task,
) -> Result<i64, TransferError> {
    write_task(conn, id, role, task, None).await
}

/// Writes `task` as [`save_task`] does; `version` is the other side's (an update received),
/// or `None` for a change made here (the version grows by one). Answers the version written.
pub async fn write_task(
    conn: &mut PgConnection,
    id: Uuid,
    role: Role,
    task: &Task,
    version: Option<i64>,
) -> Result<i64, TransferError> {
    for (position, step) in task.steps.iter().enumerate() {
        let decision = step.decision.as_ref();
        sqlx::query!(
            "UPDATE transfers.steps
             SET jurisdiction = $3, state = $4, deadline = $5, due_at = $6, estimated = $7,
                 timeout_action = $8, escalations = $9, verdict = $10, decided_by = $11,
                 decided_at = $12, reason = $13, on_timeout = $14
             WHERE transfer_id = $1 AND position = $2",
            id,
            position as i16,
            step.party.jurisdiction,
            step.state.as_str(),
            step.deadline.map(|d| d.date),
            step.due_at,
            step.deadline.is_some_and(|d| d.estimated),
            step.timeout.as_str(),
            step.escalations as i32,
            decision.map(|d| match d.verdict {
                Verdict::Approve => "approve",
                Verdict::Reject => "reject",
            }),
            decision.map(|d| d.by.as_str()),
            decision.map(|d| d.at),
            decision.map(|d| d.reason.as_str()),
            decision.is_some_and(|d| d.on_timeout),
        )
        .execute(&mut *conn)
        .await?;
    }
    let state = TransferState::after(task.state);
    let ended = task.ended.as_ref();
    let version = sqlx::query_scalar!(
        "UPDATE transfers.transfers
         SET state = $2,
             ended_at = coalesce(ended_at, $3), ended_by = coalesce(ended_by, $4),
             end_reason = coalesce(end_reason, $5),
             version = coalesce($6, version + 1)
         WHERE id = $1
         RETURNING version",
        id,
        state.as_str(),
        ended.map(|d| d.at),
        ended.map(|d| d.by.as_str()),
        ended.map(|d| d.reason.as_str()),
        version,
    )
    .fetch_one(&mut *conn)
    .await?;
    // What the task's end owes identity: the side that holds the student moves or releases
    // it; the receiving side of a transfer between provinces waits for the record.
    let effect = match (task.state, role) {
        (TaskState::InProgress, _) | (_, Role::Receiving) => None,
        (TaskState::Approved, Role::Both) => Some("complete"),
        (TaskState::Approved, Role::Sending) => Some("transfer_out"),
        (TaskState::Rejected | TaskState::Cancelled, _) => Some("release"),
    };
    if let Some(effect) = effect {
        queue_effect(conn, id, effect).await?;
    }
    Ok(version)
}

/// Why a start was refused.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    /// The refusal's name (DATA_MISMATCH, PENDING_TASK, …, or the province rule).
    pub reason: &'a str,
    pub national_code: Option<&'a str>,
    pub message: &'a str,
    /// The other province, where it answered or asked (transfers between provinces).
    pub other_province: Option<&'a str>,
}

/// Records a refusal at start with its audit entry; the hold (if any was taken) is released
/// by an effect when `release`.
pub async fn refuse(
    conn: &mut PgConnection,
    actor: Actor<'_>,
    id: Uuid,
    refusal: Refusal<'_>,
    release: bool,
) -> Result<(), TransferError> {
    let Refusal {
        reason,
        national_code,
        message,
        other_province,
    } = refusal;
    sqlx::query!(
        "UPDATE transfers.transfers
         SET state = 'refused', refusal = $2, national_code = $3, end_reason = $4,
             ended_at = transfers.clock_now(), ended_by = 'system', awaiting_hold = false
         WHERE id = $1 AND state = 'starting'",
        id,
        reason,
        national_code,
        message
    )
    .execute(&mut *conn)
    .await?;
    if release {
        queue_effect(conn, id, "release").await?;
    }
    let after = serde_json::json!({
        "refusal": reason,
        "national_code": national_code,
        "message": message,
        "other_province": other_province,
    });
    audit(conn, actor, "transfers.refuse", id, None, Some(after)).await
}

pub(crate) async fn queue_effect(
    conn: &mut PgConnection,
    id: Uuid,
    kind: &str,
) -> Result<(), TransferError> {
    sqlx::query!(
        "INSERT INTO transfers.effects (transfer_id, kind) VALUES ($1, $2)
         ON CONFLICT (transfer_id, kind) DO NOTHING",
        id,
        kind
    )
    .execute(conn)
    .await?;
    Ok(())
}
