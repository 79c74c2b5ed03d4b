//! The outbox to the national node and the notices from it: written with the changes they
//! report, delivered by the national deliverer (`national.rs`).

use sqlx::{PgConnection, PgPool};

use super::promotion::{audit_decision, promote};
use crate::{
    IdentityError,
    domain::outbox::{
        ApprovalContext, DeliveryOutcome, Notice, NoticeKind, OutboxBody, OutboxMessage,
    },
};

/// A message just queued: where it sits in the outbox, and the id the national node knows it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub sequence: i64,
    pub message_id: uuid::Uuid,
}

/// Queues `body` on the caller's transaction.
pub async fn enqueue(conn: &mut PgConnection, body: &OutboxBody) -> Result<Queued, IdentityError> {
    let row = sqlx::query!(
        "INSERT INTO identity.outbox (payload) VALUES ($1) RETURNING sequence, message_id",
        serde_json::to_value(body).expect("outbox bodies serialize")
    )
    .fetch_one(conn)
    .await?;
    Ok(Queued {
        sequence: row.sequence,
        message_id: row.message_id,
    })
}

/// Queues the national index's picture of a student as it stands in this transaction.
pub async fn enqueue_index(
    conn: &mut PgConnection,
    student_id: i64,
    status: &str,
) -> Result<(), IdentityError> {
    sqlx::query!(
        "INSERT INTO identity.outbox (payload)
         SELECT json_build_object(
                    'kind', 'index_student', 'registry_number', s.registry_number,
                    'aliases', to_json(ARRAY(SELECT r.number FROM identity.registry_numbers r
                                              WHERE r.student_id = s.id
                                                AND r.number <> s.registry_number
                                              ORDER BY r.number)),
                    'id_number', s.id_number_claim,
                    'duplicate_digest', encode(sha256(convert_to(s.name_key, 'UTF8')), 'hex'),
                    'status', $2::text)
         FROM identity.students s WHERE s.id = $1",
        student_id,
        status
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes this node's delivery turn for the caller's transaction: one delivery at a time per
/// province, so that messages reach the national node in outbox order. Answers false while
/// another process (a second replica) is delivering; it then skips its round.
pub async fn take_delivery_turn(conn: &mut PgConnection) -> Result<bool, IdentityError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended('identity.outbox delivery', 0)) AS "taken!""#
    )
    .fetch_one(conn)
    .await?)
}

/// Where delivery stands: the last delivered message's (xid as text, sequence).
async fn watermark(conn: &mut PgConnection) -> Result<(String, i64), IdentityError> {
    let mark = sqlx::query!(
        r#"SELECT last_xid::text AS "last_xid!", last_sequence FROM identity.outbox_watermark"#
    )
    .fetch_one(conn)
    .await?;
    Ok((mark.last_xid, mark.last_sequence))
}

/// Up to `limit` undelivered messages in delivery order, of transactions that have finished
/// (see migration 0004). Call with the delivery turn taken.
pub async fn undelivered(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<OutboxMessage>, IdentityError> {
    // The watermark goes in as values, so that both bounds are conditions of one index range
    // scan: joined to the scan instead, it left the planner reading every delivered row again.
    let (last_xid, last_sequence) = watermark(&mut *conn).await?;
    let rows = sqlx::query!(
        r#"SELECT o.sequence, o.xid::text AS "xid!", o.message_id, o.payload::text AS "payload!"
           FROM identity.outbox o
           WHERE (o.xid, o.sequence) > ($1::text::xid8, $2)
             AND o.xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
           ORDER BY o.xid, o.sequence LIMIT $3"#,
        last_xid,
        last_sequence,
        limit
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            // Read as text straight into the message type: through a `serde_json::Value` it
            // was parsed twice.
            let body = serde_json::from_str(&row.payload).map_err(|e| {
                IdentityError::FailedPrecondition(format!(
                    "outbox message {} is unreadable: {e}",
                    row.message_id
                ))
            })?;
            Ok(OutboxMessage {
                sequence: row.sequence,
                transaction: row.xid,
                message_id: row.message_id,
                body,
            })
        })
        .collect()
}

/// Applies the national node's answers to delivered messages (the i-th outcome answers the i-th
/// message) and moves the delivery watermark past them, on the delivery's transaction: a granted
/// claim promotes the student to `G`; a refused one returns the registration to pending (the
/// problem record arrives as a notice). During intake nearly every message is an index update
/// answered `Applied`: nothing is written for it but the watermark.
pub async fn settle(
    conn: &mut PgConnection,
    messages: &[OutboxMessage],
    outcomes: &[DeliveryOutcome],
) -> Result<(), IdentityError> {
    assert_eq!(messages.len(), outcomes.len(), "one outcome per message");
    let Some(last) = messages.last() else {
        return Ok(());
    };
    let (mut sequences, mut answers) = (Vec::new(), Vec::new());
    for (message, outcome) in messages.iter().zip(outcomes) {
        apply_outcome(conn, message, outcome).await?;
        if *outcome != DeliveryOutcome::Applied {
            sequences.push(message.sequence);
            answers.push(serde_json::to_value(outcome).expect("outcomes serialize"));
        }
    }
    if !sequences.is_empty() {
        sqlx::query!(
            "INSERT INTO identity.outbox_outcomes (sequence, outcome)
             SELECT * FROM unnest($1::bigint[], $2::jsonb[])",
            &sequences,
            &answers
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query!(
        "UPDATE identity.outbox_watermark SET last_xid = $1::text::xid8, last_sequence = $2",
        last.transaction,
        last.sequence
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn apply_outcome(
    conn: &mut PgConnection,
    message: &OutboxMessage,
    outcome: &DeliveryOutcome,
) -> Result<(), IdentityError> {
    if let OutboxBody::ClaimIdNumber {
        registry_number,
        id_number,
        approval,
    } = &message.body
    {
        let student = sqlx::query!(
            "SELECT s.id, s.registry_number, e.status FROM identity.registry_numbers r
             JOIN identity.students s ON s.id = r.student_id
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE r.number = $1 FOR UPDATE OF s, e",
            registry_number
        )
        .fetch_optional(&mut *conn)
        .await?;
        // Only a record still waiting for this answer changes.
        if let Some(student) = student.filter(|s| s.status == "awaiting_national_check") {
            match outcome {
                DeliveryOutcome::Granted => {
                    promote(
                        conn,
                        student.id,
                        &student.registry_number,
                        &format!("G{id_number}"),
                        approval,
                        "identity.national_check_granted",
                    )
                    .await?;
                }
                DeliveryOutcome::Refused {
                    owner_province,
                    owner_registry_number,
                } => {
                    back_to_pending(
                        conn,
                        student.id,
                        &student.registry_number,
                        approval,
                        "identity.national_check_refused",
                        serde_json::json!({
                            "status": "pending",
                            "owner_province": owner_province,
                            "owner_registry_number": owner_registry_number,
                        }),
                    )
                    .await?;
                }
                // The check can never answer: the record goes back to pending, where its
                // authority sees it, instead of waiting forever.
                DeliveryOutcome::Rejected { reason } => {
                    back_to_pending(
                        conn,
                        student.id,
                        &student.registry_number,
                        approval,
                        "identity.national_check_rejected",
                        serde_json::json!({ "status": "pending", "reason": reason }),
                    )
                    .await?;
                }
                DeliveryOutcome::Applied => {}
            }
        }
    }
    if let DeliveryOutcome::Rejected { reason } = outcome {
        tracing::warn!(
            sequence = message.sequence,
            message_id = %message.message_id,
            %reason,
            "the national node rejected an outbox message for good; delivery goes on past it"
        );
    }
    Ok(())
}

/// A registration whose national check did not grant its `G` goes back to pending, audited
/// in the approver's name.
async fn back_to_pending(
    conn: &mut PgConnection,
    student_id: i64,
    registry_number: &str,
    approval: &ApprovalContext,
    action: &str,
    after: serde_json::Value,
) -> Result<(), IdentityError> {
    sqlx::query!(
        "UPDATE identity.enrollments
         SET status = 'pending', decided_at = NULL, decided_by = NULL
         WHERE student_id = $1 AND is_current",
        student_id
    )
    .execute(&mut *conn)
    .await?;
    audit_decision(
        conn,
        approval,
        action,
        registry_number,
        serde_json::json!({ "status": "awaiting_national_check" }),
        after,
    )
    .await
}

/// A message the national node rejected for good, as province operators see it.
#[derive(Debug, Clone)]
pub struct RejectedMessage {
    pub sequence: i64,
    pub message_id: uuid::Uuid,
    pub body: OutboxBody,
    pub reason: String,
    pub written_at: chrono::DateTime<chrono::Utc>,
}

/// Rejected messages after `after` (a sequence), oldest first.
pub async fn rejected_messages(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<RejectedMessage>, IdentityError> {
    let rows = sqlx::query!(
        r#"SELECT o.sequence, o.message_id, o.payload::text AS "payload!", o.created_at,
                  a.outcome->>'reason' AS "reason!"
           FROM identity.outbox_outcomes a
           JOIN identity.outbox o ON o.sequence = a.sequence
           WHERE a.outcome->>'outcome' = 'rejected' AND a.sequence > $1
           ORDER BY a.sequence LIMIT $2"#,
        after,
        limit
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(RejectedMessage {
                sequence: row.sequence,
                message_id: row.message_id,
                body: serde_json::from_str(&row.payload).map_err(|e| {
                    IdentityError::Internal(format!(
                        "outbox message {} does not read back: {e}",
                        row.sequence
                    ))
                })?,
                reason: row.reason,
                written_at: row.created_at,
            })
        })
        .collect()
}

/// The national node's answer to the message at `sequence`, once delivered.
pub async fn outcome_of(
    pool: &PgPool,
    sequence: i64,
) -> Result<Option<DeliveryOutcome>, IdentityError> {
    let row = sqlx::query!(
        r#"SELECT a.outcome AS "outcome?",
                  (o.xid, o.sequence) <= (w.last_xid, w.last_sequence) AS "delivered!"
           FROM identity.outbox o CROSS JOIN identity.outbox_watermark w
           LEFT JOIN identity.outbox_outcomes a ON a.sequence = o.sequence
           WHERE o.sequence = $1"#,
        sequence
    )
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(row) if row.delivered => Some(
            row.outcome
                .and_then(|value| serde_json::from_value(value).ok())
                .unwrap_or(DeliveryOutcome::Applied),
        ),
        _ => None,
    })
}

/// (undelivered, delivered) message counts.
pub async fn backlog(pool: &PgPool) -> Result<(i64, i64), IdentityError> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE (o.xid, o.sequence) > (w.last_xid, w.last_sequence))
                      AS "undelivered!",
                  count(*) FILTER (WHERE (o.xid, o.sequence) <= (w.last_xid, w.last_sequence))
                      AS "delivered!"
           FROM identity.outbox o CROSS JOIN identity.outbox_watermark w"#
    )
    .fetch_one(pool)
    .await?;
    Ok((row.undelivered, row.delivered))
}

pub async fn notice_cursor(pool: &PgPool) -> Result<i64, IdentityError> {
    Ok(
        sqlx::query_scalar!("SELECT last_sequence FROM identity.notice_cursor")
            .fetch_one(pool)
            .await?,
    )
}

/// Records notices as problem records and moves the cursor past them, in one transaction. A
/// notice about a number this province does not know is skipped (logged).
pub async fn apply_notices(pool: &PgPool, notices: &[Notice]) -> Result<(), IdentityError> {
    let Some(last) = notices.iter().map(|n| n.sequence).max() else {
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    for notice in notices {
        if notice.kind == NoticeKind::ContinuedElsewhere {
            // 升学 across provinces: the finished record stays here as history; the student's
            // national entry is the other province's now.
            sqlx::query!(
                "INSERT INTO identity.continued_elsewhere
                     (notice_sequence, student_id, province, registry_number, detail)
                 SELECT $1, r.student_id, $3, $4, $5
                 FROM identity.registry_numbers r WHERE r.number = $2
                 ON CONFLICT (notice_sequence) DO NOTHING",
                notice.sequence,
                notice.registry_number,
                notice.other_province,
                notice.other_registry_number,
                notice.detail
            )
            .execute(&mut *tx)
            .await?;
            continue;
        }
        if notice.cleared {
            // Resolved on the other side: the flag on the pair goes (the other record may have
            // been renumbered since, so the pair is known by its province).
            sqlx::query!(
                "DELETE FROM identity.national_flags f USING identity.registry_numbers r
                 WHERE r.number = $1 AND f.student_id = r.student_id AND f.kind = $2
                   AND f.other_province = $3",
                notice.registry_number,
                notice.kind.as_str(),
                notice.other_province
            )
            .execute(&mut *tx)
            .await?;
            continue;
        }
        let inserted = sqlx::query!(
            "INSERT INTO identity.national_flags
                 (notice_sequence, student_id, kind, other_province, other_registry_number, detail)
             SELECT $1, r.student_id, $3, $4, $5, $6
             FROM identity.registry_numbers r WHERE r.number = $2
             ON CONFLICT (notice_sequence) DO NOTHING",
            notice.sequence,
            notice.registry_number,
            notice.kind.as_str(),
            notice.other_province,
            notice.other_registry_number,
            notice.detail
        )
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tracing::warn!(
                sequence = notice.sequence,
                registry_number = %notice.registry_number,
                "a national notice names a number this province does not hold"
            );
        }
    }
    sqlx::query!(
        "UPDATE identity.notice_cursor SET last_sequence = greatest(last_sequence, $1)",
        last
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
