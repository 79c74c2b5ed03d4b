//! The outbox to the national node and the notices from it: written with the changes they
//! report, delivered by [`crate::national::Deliverer`].

use sqlx::{PgConnection, PgPool};

use super::promote;
use crate::{
    IdentityError,
    national::{DeliveryOutcome, Notice, OutboxBody, OutboxMessage},
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
         SELECT jsonb_build_object(
                    'kind', 'index_student', 'registry_number', s.registry_number,
                    'aliases', to_jsonb(ARRAY(SELECT r.number FROM identity.registry_numbers r
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

/// Up to `limit` undelivered messages in outbox order. Call with the delivery turn taken.
pub async fn undelivered(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<OutboxMessage>, IdentityError> {
    let rows = sqlx::query!(
        "SELECT sequence, message_id, payload FROM identity.outbox
         WHERE delivered_at IS NULL ORDER BY sequence LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let body = serde_json::from_value(row.payload).map_err(|e| {
                IdentityError::FailedPrecondition(format!(
                    "outbox message {} is unreadable: {e}",
                    row.message_id
                ))
            })?;
            Ok(OutboxMessage {
                sequence: row.sequence,
                message_id: row.message_id,
                body,
            })
        })
        .collect()
}

/// Applies the national node's answers to delivered messages (the i-th outcome answers the i-th
/// message) and marks them delivered, on the delivery's transaction: a granted claim promotes
/// the student to `G`; a refused one returns the registration to pending (the problem record
/// arrives as a notice). Marking is one statement for the whole batch: during intake nearly
/// every message is an index update with nothing else to do.
pub async fn settle(
    conn: &mut PgConnection,
    messages: &[OutboxMessage],
    outcomes: &[DeliveryOutcome],
) -> Result<(), IdentityError> {
    assert_eq!(messages.len(), outcomes.len(), "one outcome per message");
    for (message, outcome) in messages.iter().zip(outcomes) {
        apply_outcome(conn, message, outcome).await?;
    }
    let sequences: Vec<i64> = messages.iter().map(|message| message.sequence).collect();
    let outcomes: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|outcome| serde_json::to_value(outcome).expect("outcomes serialize"))
        .collect();
    sqlx::query!(
        "UPDATE identity.outbox AS o SET delivered_at = now(), outcome = d.outcome
         FROM unnest($1::bigint[], $2::jsonb[]) AS d(sequence, outcome)
         WHERE o.sequence = d.sequence",
        &sequences,
        &outcomes
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
                    sqlx::query!(
                        "UPDATE identity.enrollments
                         SET status = 'pending', decided_at = NULL, decided_by = NULL
                         WHERE student_id = $1 AND is_current",
                        student.id
                    )
                    .execute(&mut *conn)
                    .await?;
                    super::audit_decision(
                        conn,
                        approval,
                        "identity.national_check_refused",
                        &student.registry_number,
                        serde_json::json!({ "status": "awaiting_national_check" }),
                        serde_json::json!({
                            "status": "pending",
                            "owner_province": owner_province,
                            "owner_registry_number": owner_registry_number,
                        }),
                    )
                    .await?;
                }
                DeliveryOutcome::Applied => {}
            }
        }
    }
    Ok(())
}

/// The national node's answer to the message at `sequence`, once delivered.
pub async fn outcome_of(
    pool: &PgPool,
    sequence: i64,
) -> Result<Option<DeliveryOutcome>, IdentityError> {
    let outcome = sqlx::query_scalar!(
        "SELECT outcome FROM identity.outbox WHERE sequence = $1",
        sequence
    )
    .fetch_optional(pool)
    .await?
    .flatten();
    Ok(outcome.and_then(|value| serde_json::from_value(value).ok()))
}

/// (undelivered, delivered) message counts.
pub async fn backlog(pool: &PgPool) -> Result<(i64, i64), IdentityError> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE delivered_at IS NULL) AS "undelivered!",
                  count(*) FILTER (WHERE delivered_at IS NOT NULL) AS "delivered!"
           FROM identity.outbox"#
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
