//! The enrollment side of transfers: the pending-task lock and the move of the record, each in
//! one transaction with its audit entry.

use chrono::NaiveDate;
use uuid::Uuid;
use xueji_audit::Entry;

use super::{Actor, Store};
use crate::{
    IdentityError,
    domain::{EnrollmentStatus, TransferRefusal, check_transfer_match},
};

/// How the family identified the student.
#[derive(Debug, Clone, Copy)]
pub enum TransferLookup<'a> {
    RegistryNumber(&'a str),
    IdNumber(&'a str),
}

/// The enrollment a transfer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEnrollment {
    pub registry_number: String,
    pub school_code: String,
    pub school_division: String,
    pub registry_authority: String,
    pub grade: i16,
    /// The state a pupil who left school is picked up from (休学, 辍学, a departure); none
    /// for a pupil in school.
    pub picked_up_from: Option<EnrollmentStatus>,
}

/// What completing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedTransfer {
    pub registry_number: String,
    /// False when an earlier call had moved the record already.
    pub moved: bool,
}

/// Where the new enrollment opens.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    pub school_code: &'a str,
    pub school_division: &'a str,
    pub grade: i16,
    pub entry_date: NaiveDate,
    /// Who decided the transfer's steps, as the transfers service names them ("step: who"):
    /// kept on the new enrollment for its history.
    pub deciders: &'a [String],
}

impl Store {
    /// Locks the enrollment the family's data describe for `task`. Holding again for the same
    /// task answers the same enrollment. While `frozen` (the annual cycle's freeze), a student of
    /// a graduating grade takes no new task.
    pub async fn hold_for_transfer(
        &self,
        task: Uuid,
        lookup: TransferLookup<'_>,
        (name, birth_date): (&str, NaiveDate),
        frozen: bool,
        actor: Actor<'_>,
    ) -> Result<HeldEnrollment, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let student_id = match lookup {
            TransferLookup::RegistryNumber(number) => {
                sqlx::query_scalar!(
                    "SELECT student_id FROM identity.registry_numbers WHERE number = $1",
                    number
                )
                .fetch_optional(&mut *tx)
                .await?
            }
            TransferLookup::IdNumber(id) => {
                sqlx::query_scalar!(
                    "SELECT id FROM identity.students WHERE id_number_claim = $1",
                    id
                )
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let mismatch = || IdentityError::TransferRefused(TransferRefusal::DataMismatch);
        let student_id = student_id.ok_or_else(mismatch)?;
        // The current enrollment, locked: a concurrent hold of the same student waits here and
        // then finds the lock taken.
        sqlx::query!(
            "SELECT id FROM identity.enrollments WHERE student_id = $1 AND is_current FOR UPDATE",
            student_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(mismatch)?;
        let record = sqlx::query!(
            r#"SELECT registry_number AS "registry_number!", name AS "name!",
                      birth_date AS "birth_date!", status AS "status!",
                      school_code AS "school_code!", school_division AS "school_division!",
                      registry_authority AS "registry_authority!", grade AS "grade!",
                      duplicate_name AS "duplicate_name!",
                      national_problems AS "national_problems!"
               FROM identity.student_view WHERE id = $1"#,
            student_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(mismatch)?;
        let status = EnrollmentStatus::parse(&record.status)
            .ok_or_else(|| super::unknown("status", &record.status))?;
        // A record that left this province lives in another one now: the family's data
        // describe no enrollment here.
        if status == EnrollmentStatus::TransferredOut {
            return Err(mismatch());
        }
        let held = HeldEnrollment {
            registry_number: record.registry_number,
            school_code: record.school_code,
            school_division: record.school_division,
            registry_authority: record.registry_authority,
            grade: record.grade,
            picked_up_from: status.may_be_picked_up().then_some(status),
        };
        let holder = sqlx::query_scalar!(
            "SELECT task_id FROM identity.pending_tasks WHERE student_id = $1",
            student_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        match holder {
            Some(holder) if holder == task => return Ok(held),
            _ => {}
        }
        check_transfer_match(
            &record.name,
            record.birth_date,
            status,
            record.duplicate_name || !record.national_problems.is_empty(),
            name,
            birth_date,
        )
        .map_err(IdentityError::TransferRefused)?;
        if holder.is_some() {
            return Err(IdentityError::TransferRefused(TransferRefusal::PendingTask));
        }
        if frozen {
            let graduating = sqlx::query_scalar!(
                r#"SELECT $2::smallint = ANY(graduating_grades) AS "graduating!"
                   FROM identity.schools WHERE code = $1"#,
                held.school_code,
                held.grade
            )
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(false);
            if graduating {
                return Err(IdentityError::TransferRefused(
                    TransferRefusal::GraduatingFreeze,
                ));
            }
        }
        sqlx::query!(
            "INSERT INTO identity.pending_tasks (student_id, task_id, kind)
             VALUES ($1, $2, 'transfer')",
            student_id,
            task
        )
        .execute(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.hold_for_transfer",
                object: &format!("student:{}", held.registry_number),
                before: None,
                after: Some(serde_json::json!({ "pending_task": task, "kind": "transfer" })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(held)
    }

    /// Releases `task`'s lock; false when there was none.
    pub async fn release_transfer_hold(
        &self,
        task: Uuid,
        actor: Actor<'_>,
    ) -> Result<bool, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let released = sqlx::query!(
            "DELETE FROM identity.pending_tasks p USING identity.students s
             WHERE p.task_id = $1 AND s.id = p.student_id
             RETURNING s.registry_number",
            task
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(released) = released else {
            return Ok(false);
        };
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.release_transfer_hold",
                object: &format!("student:{}", released.registry_number),
                before: Some(serde_json::json!({ "pending_task": task })),
                after: None,
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves the record `task` holds to `to`, in one transaction: the old enrollment becomes
    /// `transferred_out` and stops being current, a new current `active` enrollment opens (a
    /// pupil who had left school is picked up: the new enrollment keeps the state they were
    /// taken from), the lock goes. Exactly one enrollment is current before and after.
    pub async fn complete_transfer(
        &self,
        task: Uuid,
        to: Destination<'_>,
        actor: Actor<'_>,
    ) -> Result<CompletedTransfer, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query!(
            "SELECT p.student_id, s.registry_number
             FROM identity.pending_tasks p JOIN identity.students s ON s.id = p.student_id
             WHERE p.task_id = $1
             FOR UPDATE OF p",
            task
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(held) = held else {
            // Done already (a retry), or never held.
            let done = sqlx::query_scalar!(
                "SELECT s.registry_number FROM identity.enrollments e
                 JOIN identity.students s ON s.id = e.student_id
                 WHERE e.transfer_task = $1",
                task
            )
            .fetch_optional(&mut *tx)
            .await?;
            return match done {
                Some(registry_number) => Ok(CompletedTransfer {
                    registry_number,
                    moved: false,
                }),
                None => Err(IdentityError::FailedPrecondition(format!(
                    "transfer {task} holds no enrollment"
                ))),
            };
        };
        let decided_by = actor.caller.describe();
        // The state the pupil leaves: a pupil who had left school is picked up from it.
        let leaving = sqlx::query!(
            "SELECT status, left_reason FROM identity.enrollments
             WHERE student_id = $1 AND is_current FOR UPDATE",
            held.student_id
        )
        .fetch_one(&mut *tx)
        .await?;
        let leaving_status = EnrollmentStatus::parse(&leaving.status)
            .ok_or_else(|| super::unknown("status", &leaving.status))?;
        let picked_up_from = leaving_status
            .may_be_picked_up()
            .then_some(leaving_status.as_str());
        let picked_up_left_reason = leaving.left_reason.filter(|_| picked_up_from.is_some());
        let closed = sqlx::query!(
            "UPDATE identity.enrollments
             SET status = 'transferred_out', is_current = false, decided_at = identity.clock_now(),
                 decided_by = $2, decision_reason = 'transferred', departed_as = $3,
                 archived_person = (
                     SELECT jsonb_build_object(
                         'name', v.name, 'gender', v.gender, 'birth_date', v.birth_date,
                         'ethnicity', v.ethnicity, 'document_type', v.document_type,
                         'document_number', v.document_number, 'guardian', v.guardian,
                         'aliases', to_jsonb(v.aliases))
                     FROM identity.student_view v WHERE v.id = $1)
             WHERE student_id = $1 AND is_current
             RETURNING school_code, grade, entry_route",
            held.student_id,
            decided_by,
            picked_up_from
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO identity.enrollments
                 (student_id, school_code, school_division, grade, entry_date, entry_route,
                  status, is_current, decided_at, decided_by, transfer_task, picked_up_from,
                  picked_up_left_reason, transfer_deciders)
             VALUES ($1, $2, $3, $4, $5, $6, 'active', true, identity.clock_now(), $7, $8, $9, $10, $11)",
            held.student_id,
            to.school_code,
            to.school_division,
            to.grade,
            to.entry_date,
            closed.entry_route,
            decided_by,
            task,
            picked_up_from,
            picked_up_left_reason,
            to.deciders
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM identity.pending_tasks WHERE task_id = $1",
            task
        )
        .execute(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &decided_by,
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.complete_transfer",
                object: &format!("student:{}", held.registry_number),
                before: Some(serde_json::json!({
                    "school_code": closed.school_code, "grade": closed.grade,
                    "status": leaving_status.as_str(),
                })),
                after: Some(serde_json::json!({
                    "school_code": to.school_code, "grade": to.grade, "status": "active",
                    "transfer": task, "picked_up_from": picked_up_from,
                    "deciders": to.deciders,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(CompletedTransfer {
            registry_number: held.registry_number,
            moved: true,
        })
    }
}

/// A closed enrollment of a student that is no longer current: the sending school's archived
/// copy after a transfer, or a finished stage's record after progression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedEnrollment {
    pub status: String,
    pub school_code: String,
    pub school_division: String,
    pub registry_authority: String,
    pub grade: i16,
    pub entry_date: NaiveDate,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    pub decided_by: Option<String>,
    /// The student's personal fields as they stood when the enrollment was archived by a move
    /// (none for one archived before the copy was kept, or by progression).
    pub person: Option<ArchivedPerson>,
}

/// The personal fields an archived copy keeps, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedPerson {
    pub name: String,
    pub gender: String,
    pub birth_date: NaiveDate,
    pub ethnicity: String,
    pub document_type: String,
    pub document_number: Option<String>,
    pub guardian: serde_json::Value,
    pub aliases: Vec<String>,
}

struct ArchivedRow {
    status: String,
    school_code: String,
    school_division: String,
    registry_authority: String,
    grade: i16,
    entry_date: NaiveDate,
    decided_at: Option<chrono::DateTime<chrono::Utc>>,
    decided_by: Option<String>,
    archived_person: Option<serde_json::Value>,
}

impl Store {
    /// The student's archived enrollments (not current, not rejected), newest first.
    pub async fn archived_enrollments(
        &self,
        student_id: i64,
    ) -> Result<Vec<ArchivedEnrollment>, IdentityError> {
        let rows = sqlx::query_as!(
            ArchivedRow,
            "SELECT e.status, e.school_code, e.school_division, s.registry_authority, e.grade,
                    e.entry_date, e.decided_at, e.decided_by, e.archived_person
             FROM identity.enrollments e JOIN identity.schools s ON s.code = e.school_code
             WHERE e.student_id = $1 AND NOT e.is_current AND e.status <> 'rejected'
             ORDER BY e.id DESC",
            student_id
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ArchivedEnrollment {
                    person: row
                        .archived_person
                        .map(|person| {
                            serde_json::from_value(person)
                                .map_err(|e| super::unknown("archived_person", e.to_string()))
                        })
                        .transpose()?,
                    status: row.status,
                    school_code: row.school_code,
                    school_division: row.school_division,
                    registry_authority: row.registry_authority,
                    grade: row.grade,
                    entry_date: row.entry_date,
                    decided_at: row.decided_at,
                    decided_by: row.decided_by,
                })
            })
            .collect()
    }
}
