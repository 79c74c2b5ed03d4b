//! Decisions on registrations: approval (issuing the `G` after the national check, or a `J`
//! at once) and rejection, each audited in its transaction.

use xueji_audit::Entry;
use xueji_codes::RegistryNumber;

use super::{
    Actor, Store, outbox,
    promotion::{audit_decision, promote},
};
use crate::domain::outbox::{ApprovalContext, OutboxBody};
use crate::{
    IdentityError,
    domain::{Decision, EnrollmentStatus, Promotion},
};

/// What approving did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Already approved (or awaiting its national check): nothing written.
    Unchanged,
    /// The new number is issued and the record active.
    Promoted,
    /// A progression approved: the student keeps the number they hold.
    Continued,
    /// Waiting for the national duplicate check, queued as this outbox message.
    AwaitingNationalCheck { claim: outbox::Queued },
}

/// A registration locked for a decision.
#[derive(Debug)]
pub(super) struct LockedRegistration {
    pub registry_number: String,
    /// False when the decision was already taken: a retry changes nothing.
    pub needs_decision: bool,
}

impl Store {
    /// Approves a pending registration. A `J` is issued at once (the old number kept as an
    /// alias) and reported to the national index. A `G` needs the national duplicate check
    /// first: the record waits for it, and the claim goes into the outbox in the same
    /// transaction. Approving a record already approved changes nothing.
    pub async fn approve(
        &self,
        student_id: i64,
        promotion: &Promotion,
        actor: Actor<'_>,
    ) -> Result<Approval, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let locked = lock_registration(&mut tx, student_id, Decision::Approve).await?;
        if !locked.needs_decision {
            return Ok(Approval::Unchanged);
        }
        let approval = ApprovalContext {
            decided_by: actor.caller.describe(),
            jurisdiction: actor.caller.jurisdiction.as_string(),
            request_id: actor.request_id.to_owned(),
        };
        let number = match promotion {
            Promotion::Keep => {
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
                    &mut tx,
                    &approval,
                    "identity.approve_registration",
                    &locked.registry_number,
                    serde_json::json!({ "status": "pending" }),
                    serde_json::json!({ "status": "active", "continued": true }),
                )
                .await?;
                // The record was finished in the national index: live again.
                outbox::enqueue_index(&mut tx, student_id, "active").await?;
                tx.commit().await?;
                return Ok(Approval::Continued);
            }
            Promotion::ToG(resident_id) => {
                sqlx::query!(
                    "UPDATE identity.enrollments
                     SET status = 'awaiting_national_check', decided_at = identity.clock_now(), decided_by = $2
                     WHERE student_id = $1 AND is_current",
                    student_id,
                    approval.decided_by
                )
                .execute(&mut *tx)
                .await?;
                let claim = outbox::enqueue(
                    &mut tx,
                    &OutboxBody::ClaimIdNumber {
                        registry_number: locked.registry_number.clone(),
                        id_number: resident_id.to_string(),
                        approval: approval.clone(),
                    },
                )
                .await?;
                audit_decision(
                    &mut tx,
                    &approval,
                    "identity.approve_registration",
                    &locked.registry_number,
                    serde_json::json!({ "status": "pending" }),
                    serde_json::json!({
                        "status": "awaiting_national_check", "national_claim": claim.message_id
                    }),
                )
                .await?;
                tx.commit().await?;
                return Ok(Approval::AwaitingNationalCheck { claim });
            }
            Promotion::ToJ {
                division,
                birth_date,
            } => {
                let sequence = sqlx::query_scalar!(
                    "INSERT INTO identity.j_sequences (division, birth_date, last_value)
                     VALUES ($1, $2, 1)
                     ON CONFLICT (division, birth_date) DO UPDATE
                         SET last_value = identity.j_sequences.last_value + 1
                     RETURNING last_value",
                    division.as_str(),
                    birth_date
                )
                .fetch_one(&mut *tx)
                .await?;
                u16::try_from(sequence)
                    .ok()
                    .and_then(|sequence| RegistryNumber::j(*division, *birth_date, sequence))
                    .ok_or_else(|| {
                        IdentityError::Exhausted(format!(
                            "all 999 J numbers of division {division} and birth date {birth_date} are issued"
                        ))
                    })?
            }
        };
        promote(
            &mut tx,
            student_id,
            &locked.registry_number,
            number.as_str(),
            &approval,
            "identity.approve_registration",
        )
        .await?;
        outbox::enqueue_index(&mut tx, student_id, "active").await?;
        tx.commit().await?;
        Ok(Approval::Promoted)
    }

    /// Rejects a pending registration and releases its ID number. Rejecting a rejected record
    /// changes nothing.
    pub async fn reject(
        &self,
        student_id: i64,
        reason: &str,
        actor: Actor<'_>,
    ) -> Result<(), IdentityError> {
        let mut tx = self.pool.begin().await?;
        let locked = lock_registration(&mut tx, student_id, Decision::Reject).await?;
        if !locked.needs_decision {
            return Ok(());
        }
        let decided_by = actor.caller.describe();
        let continued = Self::continued_enrollment(&mut tx, student_id).await?;
        // A refused progression leaves the enrollment and makes the finished record current
        // again: the student keeps their number and their claim on the ID number.
        sqlx::query!(
            "UPDATE identity.enrollments
             SET status = 'rejected', is_current = $4, decided_at = identity.clock_now(), decided_by = $2,
                 decision_reason = $3
             WHERE student_id = $1 AND is_current",
            student_id,
            decided_by,
            reason,
            continued.is_none()
        )
        .execute(&mut *tx)
        .await?;
        match continued {
            Some(finished) => {
                sqlx::query!(
                    "UPDATE identity.enrollments SET is_current = true WHERE id = $1",
                    finished
                )
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query!(
                    "UPDATE identity.students SET id_number_claim = NULL WHERE id = $1",
                    student_id
                )
                .execute(&mut *tx)
                .await?;
                outbox::enqueue(
                    &mut tx,
                    &OutboxBody::ReleaseStudent {
                        registry_number: locked.registry_number.clone(),
                    },
                )
                .await?;
            }
        }
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &decided_by,
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.reject_registration",
                object: &format!("student:{}", locked.registry_number),
                before: Some(serde_json::json!({
                    "status": "pending", "continued": continued.is_some()
                })),
                after: Some(serde_json::json!({ "status": "rejected", "reason": reason })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Locks a registration for `decision` and says whether the decision still has work to do.
async fn lock_registration(
    tx: &mut sqlx::PgConnection,
    student_id: i64,
    decision: Decision,
) -> Result<LockedRegistration, IdentityError> {
    let row = sqlx::query!(
        "SELECT s.registry_number, e.status
         FROM identity.students s
         JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
         WHERE s.id = $1
         FOR UPDATE OF s, e",
        student_id
    )
    .fetch_optional(tx)
    .await?
    .ok_or_else(|| IdentityError::NotFound("student".into()))?;
    let status = EnrollmentStatus::parse(&row.status).ok_or_else(|| {
        IdentityError::FailedPrecondition(format!("unknown enrollment status {}", row.status))
    })?;
    let needs_decision = crate::domain::decision_needed(status, decision, &row.registry_number)
        .map_err(IdentityError::FailedPrecondition)?;
    Ok(LockedRegistration {
        registry_number: row.registry_number,
        needs_decision,
    })
}
