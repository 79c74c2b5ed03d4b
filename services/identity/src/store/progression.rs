//! Progression to the next stage (升学): a new enrollment continues a student whose record
//! finished its stage, with the same registry number; rejecting it gives the finished record
//! back its place as the current one.

use xueji_audit::Entry;

use super::{Actor, Store, unknown};
use crate::{
    IdentityError,
    domain::{
        EnrollmentStatus, FieldViolation, Registration, parse_gender,
        school_year::{FinishedRecord, check_progression},
    },
};

/// What continuing a student did.
#[derive(Debug)]
pub enum ContinueOutcome {
    /// The new pending enrollment is open; the finished one is archived.
    Opened,
    /// The idempotency key was seen before with the same content.
    Replayed,
    /// The key was seen before with different content.
    KeyReused,
    /// The student's current record has not finished its stage (it is in this state).
    NotFinished(EnrollmentStatus),
    /// The registration does not continue the record (name, birth date, gender, grade).
    Refused(Vec<FieldViolation>),
}

impl Store {
    /// Continues student `student_id` at the registration's school, in one transaction.
    pub async fn continue_student(
        &self,
        student_id: i64,
        registration: &Registration,
        actor: Actor<'_>,
    ) -> Result<ContinueOutcome, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let seen = sqlx::query!(
            "SELECT student_id, request_hash FROM identity.enrollments WHERE idempotency_key = $1",
            registration.idempotency_key
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(seen) = seen {
            return Ok(
                if seen.student_id == student_id
                    && seen.request_hash.as_deref() == Some(&registration.fingerprint()[..])
                {
                    ContinueOutcome::Replayed
                } else {
                    ContinueOutcome::KeyReused
                },
            );
        }
        let row = sqlx::query!(
            "SELECT s.registry_number, s.name, s.gender, s.birth_date,
                    e.id AS enrollment, e.status, e.grade, e.school_code
             FROM identity.students s
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE s.id = $1 FOR UPDATE OF s, e",
            student_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| IdentityError::NotFound("student".into()))?;
        let status =
            EnrollmentStatus::parse(&row.status).ok_or_else(|| unknown("status", &row.status))?;
        if !status.finished_stage() {
            return Ok(ContinueOutcome::NotFinished(status));
        }
        let record = FinishedRecord {
            registry_number: row.registry_number.clone(),
            name: row.name,
            gender: parse_gender(&row.gender).ok_or_else(|| unknown("gender", &row.gender))?,
            birth_date: row.birth_date,
            grade: u32::try_from(row.grade).map_err(|_| unknown("grade", row.grade))?,
        };
        if let Err(violations) = check_progression(&record, registration) {
            return Ok(ContinueOutcome::Refused(violations));
        }
        sqlx::query!(
            "UPDATE identity.enrollments SET is_current = false WHERE id = $1",
            row.enrollment
        )
        .execute(&mut *tx)
        .await?;
        let opened = sqlx::query!(
            "INSERT INTO identity.enrollments
                 (student_id, school_code, school_division, grade, entry_date, entry_route,
                  status, continues, idempotency_key, request_hash)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9)",
            student_id,
            registration.school.code.as_str(),
            registration.school.division.as_str(),
            registration.grade as i16,
            registration.entry_date,
            registration.entry_route.as_str(),
            row.enrollment,
            registration.idempotency_key,
            registration.fingerprint()
        )
        .execute(&mut *tx)
        .await;
        if let Err(error) = opened {
            // A concurrent retry with the same key committed first: answer as a replay.
            if xueji_db::unique_violation(&error).is_some() {
                return Ok(ContinueOutcome::Replayed);
            }
            return Err(error.into());
        }
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.continue_student",
                object: &format!("student:{}", row.registry_number),
                before: Some(serde_json::json!({
                    "school_code": row.school_code, "grade": row.grade, "status": row.status
                })),
                after: Some(serde_json::json!({
                    "school_code": registration.school.code.as_str(),
                    "grade": registration.grade,
                    "entry_date": registration.entry_date,
                    "status": "pending",
                    "continues": row.status,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ContinueOutcome::Opened)
    }

    /// The enrollment the current one continues, if it is a progression.
    pub(crate) async fn continued_enrollment(
        conn: &mut sqlx::PgConnection,
        student_id: i64,
    ) -> Result<Option<i64>, IdentityError> {
        Ok(sqlx::query_scalar!(
            "SELECT continues FROM identity.enrollments WHERE student_id = $1 AND is_current",
            student_id
        )
        .fetch_optional(conn)
        .await?
        .flatten())
    }
}
