//! Issuing a registration's number: the `G` (or `J`) written, the enrollment made active, the
//! decision audited. Approval calls it at once for a `J`; the outbox calls it when the
//! national check grants a `G`'s claim.

use xueji_audit::Entry;

use crate::{IdentityError, domain::outbox::ApprovalContext};

/// Issues `number` to a student (keeping `old_number` as an alias), activates the enrollment
/// and audits, on the caller's transaction.
pub(super) async fn promote(
    tx: &mut sqlx::PgConnection,
    student_id: i64,
    old_number: &str,
    number: &str,
    approval: &ApprovalContext,
    action: &str,
) -> Result<(), IdentityError> {
    let inserted = sqlx::query!(
        "INSERT INTO identity.registry_numbers (number, student_id) VALUES ($1, $2)",
        number,
        student_id
    )
    .execute(&mut *tx)
    .await;
    if let Err(error) = inserted {
        return Err(match xueji_db::unique_violation(&error) {
            Some(_) => IdentityError::AlreadyExists {
                field: "registry_number",
                message: format!("registry number {number} was already issued to another student"),
            },
            None => error.into(),
        });
    }
    sqlx::query!(
        "UPDATE identity.students SET registry_number = $2 WHERE id = $1",
        student_id,
        number
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE identity.enrollments
         SET status = 'active', decided_at = identity.clock_now(), decided_by = $2
         WHERE student_id = $1 AND is_current",
        student_id,
        approval.decided_by
    )
    .execute(&mut *tx)
    .await?;
    audit_decision(
        tx,
        approval,
        action,
        old_number,
        serde_json::json!({ "registry_number": old_number }),
        serde_json::json!({
            "registry_number": number, "status": "active", "aliases": [old_number]
        }),
    )
    .await
}

pub(super) async fn audit_decision(
    tx: &mut sqlx::PgConnection,
    approval: &ApprovalContext,
    action: &str,
    registry_number: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> Result<(), IdentityError> {
    xueji_audit::record(
        tx,
        &Entry {
            actor: &approval.decided_by,
            jurisdiction: &approval.jurisdiction,
            action,
            object: &format!("student:{registry_number}"),
            before: Some(before),
            after: Some(after),
            request_id: &approval.request_id,
        },
    )
    .await?;
    Ok(())
}
