//! What the background work finds: deadlines passed, effects owed to identity, transfers whose
//! start was interrupted. Each is claimed with `FOR UPDATE SKIP LOCKED`, so several replicas of
//! the service can run the same sweep without acting twice.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Store;
use crate::TransferError;

/// What operators watch of the saga.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub effects_pending: i64,
    pub estimated_deadlines: i64,
    pub overdue_steps: i64,
}

/// An effect owed to identity, claimed for this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEffect {
    pub id: i64,
    pub transfer_id: Uuid,
    pub kind: EffectKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectKind {
    /// Move the record (the last approval was given).
    Complete,
    /// Release the student (the transfer ended without moving it).
    Release,
    /// Close the enrollment and send the record to the receiving province.
    TransferOut,
}

/// The database's clock, moved by `skew_seconds` (zero in service; a test's controllable clock
/// moves it forward).
pub async fn database_now(
    conn: &mut PgConnection,
    skew_seconds: f64,
) -> Result<DateTime<Utc>, TransferError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT now() + make_interval(secs => $1) AS "now!""#,
        skew_seconds
    )
    .fetch_one(conn)
    .await?)
}

/// Claims up to `limit` transfers whose open step's deadline has passed at `now`: their rows
/// stay locked until the caller's transaction ends; rows another sweeper holds are skipped.
/// Only steps of `province`'s parties: the other side of a transfer between provinces acts on
/// its own.
pub async fn claim_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    province: &str,
    limit: i64,
) -> Result<Vec<Uuid>, TransferError> {
    Ok(sqlx::query_scalar!(
        "SELECT t.id FROM transfers.steps s
         JOIN transfers.transfers t ON t.id = s.transfer_id
         WHERE s.state = 'open' AND s.due_at <= $1 AND t.state = 'in_progress'
           AND s.province = $2
         ORDER BY s.due_at, t.id
         LIMIT $3
         FOR UPDATE OF t SKIP LOCKED",
        now,
        province,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Claims up to `limit` effects not yet carried out.
pub async fn claim_effects(
    conn: &mut PgConnection,
    only: Option<Uuid>,
    limit: i64,
) -> Result<Vec<PendingEffect>, TransferError> {
    let rows = sqlx::query!(
        "SELECT id, transfer_id, kind FROM transfers.effects
         WHERE done_at IS NULL AND ($1::uuid IS NULL OR transfer_id = $1)
         ORDER BY id
         LIMIT $2
         FOR UPDATE SKIP LOCKED",
        only,
        limit
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let kind = match r.kind.as_str() {
                "complete" => EffectKind::Complete,
                "release" => EffectKind::Release,
                "transfer_out" => EffectKind::TransferOut,
                other => return Err(super::unknown("effect kind", other)),
            };
            Ok(PendingEffect {
                id: r.id,
                transfer_id: r.transfer_id,
                kind,
            })
        })
        .collect()
}

/// Marks an effect done; a completed move makes the transfer `completed`.
pub async fn effect_done(
    conn: &mut PgConnection,
    effect: &PendingEffect,
) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.effects SET done_at = now(), attempts = attempts + 1 WHERE id = $1",
        effect.id
    )
    .execute(&mut *conn)
    .await?;
    if matches!(effect.kind, EffectKind::Complete | EffectKind::TransferOut) {
        super::relay::complete(conn, effect.transfer_id).await?;
    }
    Ok(())
}

/// Counts a failed attempt, with its error.
pub async fn effect_failed(
    conn: &mut PgConnection,
    effect: &PendingEffect,
    error: &str,
) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.effects SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
        effect.id,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Transfers left `starting` for longer than `age_seconds` (their start was interrupted);
    /// not those waiting for another province, whose answer comes as a message.
    pub async fn interrupted_starts(
        &self,
        age_seconds: f64,
        limit: i64,
    ) -> Result<Vec<Uuid>, TransferError> {
        Ok(sqlx::query_scalar!(
            "SELECT id FROM transfers.transfers
             WHERE state = 'starting'
               AND started_at < transfers.clock_now() - make_interval(secs => $1)
               AND role <> 'sending' AND NOT awaiting_hold
             ORDER BY started_at LIMIT $2",
            age_seconds,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// What operators watch: effects still owed, open steps with an estimated deadline, open
    /// steps past their deadline at `now`.
    pub async fn backlog(&self, now: DateTime<Utc>) -> Result<Backlog, TransferError> {
        let row = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM transfers.effects WHERE done_at IS NULL)
                        + (SELECT count(*) FROM transfers.outbox WHERE sent_at IS NULL)
                        + (SELECT count(*) FROM transfers.inbox
                           WHERE applied_at IS NULL AND set_aside_at IS NULL)
                          AS "effects!",
                      (SELECT count(*) FROM transfers.steps WHERE state = 'open' AND estimated)
                          AS "estimated!",
                      (SELECT count(*) FROM transfers.steps WHERE state = 'open' AND due_at <= $1)
                          AS "overdue!""#,
            now
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Backlog {
            effects_pending: row.effects,
            estimated_deadlines: row.estimated,
            overdue_steps: row.overdue,
        })
    }
}
