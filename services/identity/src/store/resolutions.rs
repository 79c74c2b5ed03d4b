//! Problem resolutions applied: a confirmed record is remembered as genuine, a deleted one
//! leaves the registry (kept, its ID number and national entry released); either clears the
//! record's flags, and a flag the national index raised goes in the other province too.

use sqlx::PgConnection;

use super::{ChangeRecord, outbox, unknown};
use crate::{
    IdentityError,
    domain::outbox::{ApprovalContext, NoticeKind, OutboxBody},
    domain::resolution::{Action, Problem},
};

/// Drops the student's national flags of the given kinds; when `tell_other_side`, the other
/// province of each pair is told to drop its flag too. Answers how many flags went.
pub(super) async fn clear_national_flags(
    conn: &mut PgConnection,
    student_id: i64,
    kinds: &[&str],
    tell_other_side: bool,
) -> Result<usize, IdentityError> {
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    let cleared = sqlx::query!(
        "DELETE FROM identity.national_flags WHERE student_id = $1 AND kind = ANY($2)
         RETURNING kind, other_registry_number",
        student_id,
        &kinds
    )
    .fetch_all(&mut *conn)
    .await?;
    if tell_other_side && !cleared.is_empty() {
        let number = sqlx::query_scalar!(
            "SELECT registry_number FROM identity.students WHERE id = $1",
            student_id
        )
        .fetch_one(&mut *conn)
        .await?;
        for flag in &cleared {
            let problem =
                NoticeKind::parse(&flag.kind).ok_or_else(|| unknown("flag kind", &flag.kind))?;
            outbox::enqueue(
                conn,
                &OutboxBody::ResolveProblem {
                    registry_number: number.clone(),
                    problem,
                    other_registry_number: flag.other_registry_number.clone(),
                },
            )
            .await?;
        }
    }
    Ok(cleared.len())
}

/// Applies an approved resolution, in the approval's transaction; answers what it did.
pub(super) async fn apply(
    conn: &mut PgConnection,
    record: &ChangeRecord,
    approval: &ApprovalContext,
) -> Result<serde_json::Value, IdentityError> {
    let resolution = record.resolution.ok_or_else(|| {
        IdentityError::Internal("a problem resolution without its problem".into())
    })?;
    let problem = resolution.problem.as_str();
    match resolution.action {
        Action::Confirm => {
            sqlx::query!(
                "INSERT INTO identity.confirmed_records (student_id, problem, change_id)
                 VALUES ($1, $2, $3) ON CONFLICT (student_id, problem) DO NOTHING",
                record.student_id,
                problem,
                record.id
            )
            .execute(&mut *conn)
            .await?;
            // A name duplicate confirmed is two people: the other side's flag goes too. An ID
            // duplicate confirmed on this side leaves the other record contested.
            let cleared = clear_national_flags(
                conn,
                record.student_id,
                &[problem],
                resolution.problem == Problem::DuplicateName,
            )
            .await?;
            Ok(serde_json::json!({
                "problem": problem, "action": "confirm", "national_flags_cleared": cleared,
            }))
        }
        Action::Delete => {
            let before = sqlx::query_scalar!(
                "UPDATE identity.enrollments e
                 SET status = 'deleted', decided_at = identity.clock_now(), decided_by = $2, decision_reason = $3
                 FROM identity.enrollments old
                 WHERE e.student_id = $1 AND e.is_current AND old.id = e.id
                 RETURNING old.status",
                record.student_id,
                approval.decided_by,
                record.reason
            )
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query!(
                "UPDATE identity.students SET id_number_claim = NULL WHERE id = $1",
                record.student_id
            )
            .execute(&mut *conn)
            .await?;
            sqlx::query!(
                "DELETE FROM identity.id_number_problems WHERE student_id = $1",
                record.student_id
            )
            .execute(&mut *conn)
            .await?;
            let cleared = clear_national_flags(
                conn,
                record.student_id,
                &["duplicate_id_number", "duplicate_name"],
                true,
            )
            .await?;
            outbox::enqueue_index(conn, record.student_id, "ended").await?;
            Ok(serde_json::json!({
                "problem": problem, "action": "delete",
                "before": { "status": before }, "after": { "status": "deleted" },
                "national_flags_cleared": cleared,
            }))
        }
    }
}
