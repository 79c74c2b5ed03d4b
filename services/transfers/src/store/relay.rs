//! The messages of transfers between provinces: the outbox (written in the transaction of the
//! change it reports), the inbox (each message taken once), and the rows only such transfers
//! have (the sending side's copy, the receiving side's wait for the hold).

use sqlx::PgConnection;
use uuid::Uuid;

use super::{NewTransfer, SendingSide, Store};
use crate::TransferError;

/// A message taken from the inbox, to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub id: i64,
    pub message_id: Uuid,
    pub transfer_id: Uuid,
    pub from_province: String,
    pub body: Vec<u8>,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: i64,
    pub body: Vec<u8>,
}

/// Queues a message; a message id queued before is left as it is (the change was reported).
pub async fn queue_message(
    conn: &mut PgConnection,
    message_id: Uuid,
    transfer_id: Uuid,
    to_province: &str,
    body: &[u8],
) -> Result<(), TransferError> {
    sqlx::query!(
        "INSERT INTO transfers.outbox (message_id, transfer_id, to_province, body)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (message_id) DO NOTHING",
        message_id,
        transfer_id,
        to_province,
        body
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the delivery turn (one deliverer at a time across replicas, on this transaction) and
/// answers up to `limit` messages not sent yet, oldest first; `None` when another holds it.
pub async fn claim_outbox(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Option<Vec<Outgoing>>, TransferError> {
    let turn = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended('transfers.outbox', 0)) AS "taken!""#
    )
    .fetch_one(&mut *conn)
    .await?;
    if !turn {
        return Ok(None);
    }
    let rows = sqlx::query!(
        "SELECT id, body FROM transfers.outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(Some(
        rows.into_iter()
            .map(|r| Outgoing {
                id: r.id,
                body: r.body,
            })
            .collect(),
    ))
}

pub async fn mark_sent(conn: &mut PgConnection, ids: &[i64]) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.outbox SET sent_at = now() WHERE id = ANY($1)",
        ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the applying turn and answers up to `limit` received messages to apply now, in the
/// order taken: none set aside, none waiting for its next attempt, and none behind an earlier
/// message of its own transfer that is still to apply (messages are ordered per transfer, so
/// one transfer's wait holds back no other). `None` when another replica holds the turn.
pub async fn claim_inbox(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Option<Vec<Received>>, TransferError> {
    let turn = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended('transfers.inbox', 0)) AS "taken!""#
    )
    .fetch_one(&mut *conn)
    .await?;
    if !turn {
        return Ok(None);
    }
    let rows = sqlx::query_as!(
        Received,
        "SELECT i.id, i.message_id, i.transfer_id, i.from_province, i.body FROM transfers.inbox i
         WHERE i.applied_at IS NULL AND i.set_aside_at IS NULL
           AND coalesce(i.next_attempt_at, '-infinity') <= now()
           AND NOT EXISTS (
               SELECT 1 FROM transfers.inbox e
               WHERE e.transfer_id = i.transfer_id AND e.id < i.id
                 AND e.applied_at IS NULL AND e.set_aside_at IS NULL)
         ORDER BY i.id LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(Some(rows))
}

pub async fn mark_applied(conn: &mut PgConnection, id: i64) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.inbox SET applied_at = now(), attempts = attempts + 1 WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A message that could not be applied now: tried again after a wait that doubles with each
/// attempt, from a tenth of a second to at most ten seconds (a province back from an outage
/// catches up at once). Answers the attempts made.
pub async fn apply_failed(
    conn: &mut PgConnection,
    id: i64,
    error: &str,
) -> Result<i32, TransferError> {
    Ok(sqlx::query_scalar!(
        "UPDATE transfers.inbox
         SET attempts = attempts + 1, last_error = $2,
             next_attempt_at = now()
                 + least(interval '100 milliseconds' * power(2, least(attempts, 10)), interval '10 seconds')
         WHERE id = $1
         RETURNING attempts",
        id,
        error
    )
    .fetch_one(conn)
    .await?)
}

/// A message that can never be applied: kept with its reason, listed for the province's
/// operators, and the inbox goes on past it.
pub async fn set_aside(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.inbox
         SET attempts = attempts + 1, last_error = $2, set_aside_at = now()
         WHERE id = $1",
        id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A message the national relay refused for good: kept with the relay's reason, never sent
/// again.
pub async fn mark_refused(
    conn: &mut PgConnection,
    message_id: Uuid,
    reason: &str,
) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.outbox SET sent_at = now(), refused_reason = $2 WHERE message_id = $1",
        message_id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A message set aside on arrival, or refused by the relay on the way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub sequence: i64,
    /// `inbox` (from another province) or `outbox` (refused by the national relay).
    pub direction: &'static str,
    pub message_id: Uuid,
    pub transfer_id: Uuid,
    /// The other province.
    pub province: String,
    pub reason: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Store {
    /// Messages set aside on arrival and refused on the way out, newest first, after
    /// `before` (a sequence of the previous page; `None` for the first).
    pub async fn set_aside_messages(
        &self,
        direction: &'static str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SetAside>, TransferError> {
        let before = before.unwrap_or(i64::MAX);
        let rows = if direction == "inbox" {
            sqlx::query!(
                r#"SELECT id, message_id, transfer_id, from_province AS "province!",
                          coalesce(last_error, '') AS "reason!", set_aside_at AS "at!"
                   FROM transfers.inbox
                   WHERE set_aside_at IS NOT NULL AND id < $1 ORDER BY id DESC LIMIT $2"#,
                before,
                limit
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    r.message_id,
                    r.transfer_id,
                    r.province,
                    r.reason,
                    r.at,
                )
            })
            .collect::<Vec<_>>()
        } else {
            sqlx::query!(
                r#"SELECT id, message_id, transfer_id, to_province AS "province!",
                          refused_reason AS "reason!", sent_at AS "at!"
                   FROM transfers.outbox
                   WHERE refused_reason IS NOT NULL AND id < $1 ORDER BY id DESC LIMIT $2"#,
                before,
                limit
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    r.message_id,
                    r.transfer_id,
                    r.province,
                    r.reason,
                    r.at,
                )
            })
            .collect()
        };
        Ok(rows
            .into_iter()
            .map(
                |(sequence, message_id, transfer_id, province, reason, at)| SetAside {
                    sequence,
                    direction,
                    message_id,
                    transfer_id,
                    province,
                    reason,
                    at,
                },
            )
            .collect())
    }

    /// How many messages are set aside on arrival (the metric).
    pub async fn set_aside_count(&self) -> Result<i64, TransferError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM transfers.inbox WHERE set_aside_at IS NOT NULL"#
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// A receiving-side start whose student lives in another province: it now waits for the
/// answer to its hold request.
pub async fn await_hold(conn: &mut PgConnection, id: Uuid) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.transfers SET awaiting_hold = true, role = 'receiving'
         WHERE id = $1 AND state = 'starting'",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The province that answered a hold request (the student's province). The start still
/// awaits the hold until its approvals open (or it is refused): should opening them fail (the
/// school list not answering, the process dying), the answer is applied again and carries the
/// start on, and neither the sweeper nor a retried start asks this province to hold a student
/// it does not have.
pub async fn set_other_province(
    conn: &mut PgConnection,
    id: Uuid,
    province: &str,
) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.transfers SET other_province = $2 WHERE id = $1",
        id,
        province
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The sending side's held student (before the receiving side sends the steps).
pub async fn record_sending_side(
    conn: &mut PgConnection,
    id: Uuid,
    sending: SendingSide<'_>,
) -> Result<(), TransferError> {
    sqlx::query!(
        "UPDATE transfers.transfers
         SET sending_school = $2, sending_division = $3, sending_authority = $4,
             registry_number = $5
         WHERE id = $1",
        id,
        sending.school,
        sending.division,
        sending.authority,
        sending.registry_number
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A transfer moving into `completed` once its record moved (inside the province), arrived
/// (the receiving side) or was sent (the sending side); false when it was not `approved`.
pub async fn complete(conn: &mut PgConnection, id: Uuid) -> Result<bool, TransferError> {
    Ok(sqlx::query!(
        "UPDATE transfers.transfers
         SET state = 'completed', ended_at = coalesce(ended_at, transfers.clock_now())
         WHERE id = $1 AND state = 'approved'",
        id
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

impl Store {
    /// Takes messages from another province; answers how many were new.
    pub async fn take_messages(
        &self,
        messages: &[(Uuid, Uuid, String, Vec<u8>)],
    ) -> Result<u32, TransferError> {
        let mut tx = self.pool.begin().await?;
        let mut accepted = 0;
        for (message_id, transfer_id, from, body) in messages {
            accepted += sqlx::query!(
                "INSERT INTO transfers.inbox (message_id, transfer_id, from_province, body)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (message_id) DO NOTHING",
                message_id,
                transfer_id,
                from,
                body
            )
            .execute(&mut *tx)
            .await?
            .rows_affected() as u32;
        }
        tx.commit().await?;
        Ok(accepted)
    }

    /// The sending side's copy of a transfer the receiving province started (same id),
    /// `starting` until the steps arrive; false when it exists already.
    pub async fn insert_sending_copy(
        &self,
        new: &NewTransfer<'_>,
        other_province: &str,
    ) -> Result<bool, TransferError> {
        Ok(sqlx::query!(
            "INSERT INTO transfers.transfers
                 (id, idempotency_key, request_hash, state, receiving_school, receiving_division,
                  receiving_authority, typed_number, typed_name, typed_birth_date, target_grade,
                  reason, evidence, started_by, role, other_province, traceparent)
             VALUES ($1, $2, $3, 'starting', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                     'sending', $14, $15)
             ON CONFLICT (id) DO NOTHING",
            new.id,
            new.idempotency_key,
            new.request_hash,
            new.receiving_school,
            new.receiving_division,
            new.receiving_authority,
            new.typed_number,
            new.typed_name,
            new.typed_birth_date,
            new.target_grade as i16,
            new.reason,
            new.evidence,
            new.started_by,
            other_province,
            new.traceparent,
        )
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }
}

/// A step's decision evidence as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptEvidence {
    pub step: usize,
    pub signer: String,
    pub payload: Vec<u8>,
    pub evidence: xueji_rpc::Evidence,
}

/// Keeps the evidence of a step's decision (the latest for the step: a decision never changes
/// once made, so a second copy is the same one signed again).
pub async fn keep_evidence(
    conn: &mut PgConnection,
    transfer: Uuid,
    kept: &KeptEvidence,
) -> Result<(), TransferError> {
    let step = i32::try_from(kept.step)
        .map_err(|_| TransferError::Internal("a step position past i32".into()))?;
    sqlx::query!(
        "INSERT INTO transfers.decision_evidence
             (transfer_id, step, signer, payload, scheme, signature, certificates)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (transfer_id, step) DO UPDATE
         SET signer = EXCLUDED.signer, payload = EXCLUDED.payload, scheme = EXCLUDED.scheme,
             signature = EXCLUDED.signature, certificates = EXCLUDED.certificates,
             kept_at = now()",
        transfer,
        step,
        kept.signer,
        kept.payload,
        i32::from(kept.evidence.scheme),
        kept.evidence.signature,
        &kept.evidence.certificates
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// The decision evidence kept for a transfer, by step.
    pub async fn evidence_of(&self, transfer: Uuid) -> Result<Vec<KeptEvidence>, TransferError> {
        let mut conn = self.pool.acquire().await?;
        self.evidence_of_in(&mut conn, transfer).await
    }

    /// [`evidence_of`](Self::evidence_of) in a transaction of the caller's.
    pub async fn evidence_of_in(
        &self,
        conn: &mut PgConnection,
        transfer: Uuid,
    ) -> Result<Vec<KeptEvidence>, TransferError> {
        let rows = sqlx::query!(
            "SELECT step, signer, payload, scheme, signature, certificates
             FROM transfers.decision_evidence WHERE transfer_id = $1 ORDER BY step",
            transfer
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(KeptEvidence {
                    step: usize::try_from(row.step).map_err(|_| {
                        TransferError::Internal(format!("stored evidence step {}", row.step))
                    })?,
                    signer: row.signer,
                    payload: row.payload,
                    evidence: xueji_rpc::Evidence {
                        scheme: u16::try_from(row.scheme).map_err(|_| {
                            TransferError::Internal(format!("stored scheme {}", row.scheme))
                        })?,
                        signature: row.signature,
                        certificates: row.certificates,
                    },
                })
            })
            .collect()
    }
}
