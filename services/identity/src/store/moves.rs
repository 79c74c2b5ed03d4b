//! Transfers between provinces: the sending half closes the enrollment and hands the record
//! over; the receiving half opens it under the same registry number. Each half is one
//! transaction with its audit entry, idempotent on the transfer's task id.

use chrono::NaiveDate;
use uuid::Uuid;
use xueji_audit::Entry;

use super::{Actor, Store};
use crate::{IdentityError, domain};

/// A student's record as it leaves one province for another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedStudent {
    pub registry_number: String,
    pub aliases: Vec<String>,
    pub name: String,
    pub gender: xueji_codes::Gender,
    pub birth_date: NaiveDate,
    pub ethnicity: String,
    pub document_type: String,
    pub document_number: Option<String>,
    pub id_number_claim: Option<String>,
    pub guardian: serde_json::Value,
    pub entry_route: String,
    /// How the pupil stood when the transfer took them, when they had left school: the
    /// receiving side counts the arrival as the return it is.
    pub picked_up_from: Option<domain::Departure>,
}

/// Where the record opens in the receiving province.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub school_code: &'a str,
    pub school_division: &'a str,
    pub grade: i16,
    pub entry_date: NaiveDate,
    /// Who decided the transfer's steps ("step: who"), for the record's history.
    pub deciders: &'a [String],
}

impl Store {
    /// The sending half: the enrollment `task` holds becomes `transferred_out` (it stays the
    /// student's last enrollment here: the sending school's archived copy), the lock goes.
    /// Answers the record and whether this call closed it (false: an earlier call had).
    pub async fn transfer_out(
        &self,
        task: Uuid,
        actor: Actor<'_>,
    ) -> Result<(MovedStudent, bool), IdentityError> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query_scalar!(
            "SELECT student_id FROM identity.pending_tasks WHERE task_id = $1 FOR UPDATE",
            task
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(student_id) = held else {
            let done = sqlx::query_scalar!(
                "SELECT student_id FROM identity.enrollments
                 WHERE transfer_task = $1 AND status = 'transferred_out'",
                task
            )
            .fetch_optional(&mut *tx)
            .await?;
            return match done {
                Some(student_id) => Ok((moved_student(&mut tx, student_id, task).await?, false)),
                None => Err(IdentityError::FailedPrecondition(format!(
                    "transfer {task} holds no enrollment"
                ))),
            };
        };
        let decided_by = actor.caller.describe();
        // A pupil in school, or one who had left it and is picked up (the state is kept on
        // the archived enrollment, and travels with the record).
        let closed = sqlx::query!(
            "UPDATE identity.enrollments e
             SET status = 'transferred_out', decided_at = identity.clock_now(), decided_by = $2,
                 decision_reason = 'transferred to another province', transfer_task = $3,
                 departed_as = NULLIF(before.status, 'active')
             FROM (SELECT id, status FROM identity.enrollments
                   WHERE student_id = $1 AND is_current FOR UPDATE) before
             WHERE e.id = before.id
               AND before.status IN ('active', 'suspended', 'dropped_out', 'left')
             RETURNING e.school_code, e.grade, before.status AS before_status",
            student_id,
            decided_by,
            task
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            IdentityError::FailedPrecondition(format!(
                "the enrollment transfer {task} holds is no longer in school nor left \
                 in a way another school may pick up"
            ))
        })?;
        sqlx::query!(
            "DELETE FROM identity.pending_tasks WHERE task_id = $1",
            task
        )
        .execute(&mut *tx)
        .await?;
        let student = moved_student(&mut tx, student_id, task).await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &decided_by,
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.transfer_out",
                object: &format!("student:{}", student.registry_number),
                before: Some(serde_json::json!({
                    "school_code": closed.school_code, "grade": closed.grade,
                    "status": closed.before_status,
                })),
                after: Some(serde_json::json!({
                    "status": "transferred_out", "transfer": task,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok((student, true))
    }

    /// The receiving half: the student (same registry number and aliases) with a new `active`
    /// enrollment at `at`. A student who once left this province gets the enrollment on the
    /// old record. Answers whether this call opened it (false: an earlier call had).
    pub async fn transfer_in(
        &self,
        task: Uuid,
        student: &MovedStudent,
        at: Arrival<'_>,
        actor: Actor<'_>,
    ) -> Result<bool, IdentityError> {
        let mut tx = self.pool.begin().await?;
        // One arrival per task, even between concurrent retries.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))",
            task.to_string()
        )
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query_scalar!(
            "SELECT 1 AS \"one!\" FROM identity.enrollments
             WHERE transfer_task = $1 AND status = 'active'",
            task
        )
        .fetch_optional(&mut *tx)
        .await?;
        if done.is_some() {
            return Ok(false);
        }
        let known = sqlx::query_scalar!(
            "SELECT student_id FROM identity.registry_numbers WHERE number = $1",
            student.registry_number
        )
        .fetch_optional(&mut *tx)
        .await?;
        let by = actor.caller.describe();
        let student_id = match known {
            Some(student_id) => {
                // Back in a province it left: the archived enrollment stops being current.
                let closed = sqlx::query_scalar!(
                    "UPDATE identity.enrollments SET is_current = false
                     WHERE student_id = $1 AND is_current AND status = 'transferred_out'
                     RETURNING id",
                    student_id
                )
                .fetch_optional(&mut *tx)
                .await?;
                if closed.is_none() {
                    return Err(IdentityError::FailedPrecondition(format!(
                        "student {} is enrolled in this province already",
                        student.registry_number
                    )));
                }
                student_id
            }
            None => {
                let name_key = domain::name_key(&student.name, student.gender, student.birth_date);
                let student_id = sqlx::query_scalar!(
                    "INSERT INTO identity.students
                         (registry_number, name, gender, birth_date, ethnicity, document_type,
                          document_number, id_number_claim, name_key, guardian, idempotency_key,
                          request_hash, registered_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '\\x'::bytea, $12)
                     RETURNING id",
                    student.registry_number,
                    student.name,
                    domain::gender_str(student.gender),
                    student.birth_date,
                    student.ethnicity,
                    student.document_type,
                    student.document_number,
                    student.id_number_claim,
                    name_key,
                    student.guardian,
                    format!("transfer-in:{task}"),
                    by
                )
                .fetch_one(&mut *tx)
                .await?;
                let mut numbers = student.aliases.clone();
                numbers.push(student.registry_number.clone());
                sqlx::query!(
                    "INSERT INTO identity.registry_numbers (number, student_id)
                     SELECT number, $2 FROM unnest($1::text[]) AS number
                     ON CONFLICT (number) DO NOTHING",
                    &numbers,
                    student_id
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query!(
                    "INSERT INTO identity.duplicate_groups (key, registrations) VALUES ($1, 1)
                     ON CONFLICT (key) DO UPDATE
                     SET registrations = identity.duplicate_groups.registrations + 1",
                    name_key
                )
                .execute(&mut *tx)
                .await?;
                student_id
            }
        };
        sqlx::query!(
            "INSERT INTO identity.enrollments
                 (student_id, school_code, school_division, grade, entry_date, entry_route,
                  status, is_current, decided_at, decided_by, transfer_task, picked_up_from,
                  picked_up_left_reason, transfer_deciders)
             VALUES ($1, $2, $3, $4, $5, $6, 'active', true, identity.clock_now(), $7, $8, $9, $10, $11)",
            student_id,
            at.school_code,
            at.school_division,
            at.grade,
            at.entry_date,
            student.entry_route,
            by,
            task,
            student.picked_up_from.map(|d| d.status.as_str()),
            student
                .picked_up_from
                .and_then(|d| d.left_reason)
                .map(|r| r.as_str()),
            at.deciders
        )
        .execute(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &by,
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.transfer_in",
                object: &format!("student:{}", student.registry_number),
                before: None,
                after: Some(serde_json::json!({
                    "school_code": at.school_code, "grade": at.grade, "status": "active",
                    "transfer": task,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The record of `student_id` as it leaves (its entry route from the enrollment `task`
/// closed).
async fn moved_student(
    conn: &mut sqlx::PgConnection,
    student_id: i64,
    task: Uuid,
) -> Result<MovedStudent, IdentityError> {
    let row = sqlx::query!(
        r#"SELECT s.registry_number, s.name, s.gender, s.birth_date, s.ethnicity,
                  s.document_type, s.document_number, s.id_number_claim, s.guardian,
                  e.entry_route, e.departed_as, e.left_reason,
                  ARRAY(SELECT r.number FROM identity.registry_numbers r
                        WHERE r.student_id = s.id AND r.number <> s.registry_number
                        ORDER BY r.issued_at, r.number) AS "aliases!"
           FROM identity.students s
           JOIN identity.enrollments e ON e.student_id = s.id AND e.transfer_task = $2
           WHERE s.id = $1"#,
        student_id,
        task
    )
    .fetch_one(&mut *conn)
    .await?;
    let gender = domain::parse_gender(&row.gender).ok_or_else(|| {
        IdentityError::Internal(format!(
            "unknown gender {:?} in identity.students",
            row.gender
        ))
    })?;
    Ok(MovedStudent {
        registry_number: row.registry_number,
        aliases: row.aliases,
        name: row.name,
        gender,
        birth_date: row.birth_date,
        ethnicity: row.ethnicity,
        document_type: row.document_type,
        document_number: row.document_number,
        id_number_claim: row.id_number_claim,
        guardian: row.guardian,
        entry_route: row.entry_route,
        picked_up_from: domain::Departure::parse(
            row.departed_as.as_deref(),
            row.left_reason.as_deref(),
        )
        .map_err(|e| super::unknown("departed_as", e))?,
    })
}
