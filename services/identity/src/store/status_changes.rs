//! Status changes and their evidence: the request with its workflow task (one pending task per
//! student), each decision written back with the task, the approved change applied to the
//! enrollment in the same transaction, the sweeper's due deadlines, the inbox.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;
use xueji_audit::Entry;
use xueji_workflow::{Task, TaskState};

use super::{
    Actor, Store,
    corrections::{self, Collision, CorrectionCheck},
    unknown,
};
use crate::{
    IdentityError,
    domain::outbox::ApprovalContext,
    domain::{
        EnrollmentStatus,
        correction::FieldChange,
        resolution::Resolution,
        status_change::{LeftReason, RecordState, RequestKind, Transition},
    },
};

mod evidence;

pub use evidence::EvidenceFile;

/// A status change as stored, its values typed.
#[derive(Debug, Clone)]
pub struct ChangeRecord {
    pub id: Uuid,
    pub student_id: i64,
    pub enrollment_id: i64,
    pub registry_number: String,
    pub name: String,
    pub kind: RequestKind,
    pub reason: String,
    pub grounds: String,
    pub effective_date: NaiveDate,
    pub evidence: Vec<Uuid>,
    pub school_code: String,
    pub school_division: String,
    pub registry_authority: String,
    pub state: TaskState,
    pub task: Task,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub applied: Option<serde_json::Value>,
    /// A correction's fields (empty for a status change).
    pub corrections: Vec<FieldChange>,
    /// A problem resolution's problem and action.
    pub resolution: Option<Resolution>,
}

struct ChangeRow {
    id: Uuid,
    student_id: i64,
    enrollment_id: i64,
    registry_number: String,
    name: String,
    kind: String,
    reason: String,
    grounds: String,
    effective_date: NaiveDate,
    evidence: Vec<Uuid>,
    school_code: String,
    school_division: String,
    registry_authority: String,
    state: String,
    task: Json<Task>,
    requested_by: String,
    requested_at: DateTime<Utc>,
    applied: Option<serde_json::Value>,
    corrections: Option<Json<Vec<FieldChange>>>,
    resolution: Option<Json<Resolution>>,
}

impl TryFrom<ChangeRow> for ChangeRecord {
    type Error = IdentityError;

    fn try_from(row: ChangeRow) -> Result<Self, IdentityError> {
        Ok(Self {
            kind: RequestKind::parse(&row.kind).ok_or_else(|| unknown("change kind", &row.kind))?,
            corrections: row.corrections.map(|c| c.0).unwrap_or_default(),
            resolution: row.resolution.map(|r| r.0),
            state: TaskState::parse(&row.state).ok_or_else(|| unknown("task state", &row.state))?,
            task: row.task.0,
            id: row.id,
            student_id: row.student_id,
            enrollment_id: row.enrollment_id,
            registry_number: row.registry_number,
            name: row.name,
            reason: row.reason,
            grounds: row.grounds,
            effective_date: row.effective_date,
            evidence: row.evidence,
            school_code: row.school_code,
            school_division: row.school_division,
            registry_authority: row.registry_authority,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            applied: row.applied,
        })
    }
}

/// A new status change, checked.
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    pub id: Uuid,
    pub student_id: i64,
    /// The enrollment the rules were checked on, as it stood: (id, status, left reason,
    /// grade). The request is refused if it changed since.
    pub enrollment: (i64, RecordState, u32),
    pub kind: RequestKind,
    /// A correction's fields, and what they must not collide with.
    pub corrections: Option<(&'a [FieldChange], CorrectionCheck<'a>)>,
    /// A problem resolution's problem and action.
    pub resolution: Option<Resolution>,
    pub reason: &'a str,
    pub grounds: &'a str,
    pub effective_date: NaiveDate,
    pub evidence: &'a [Uuid],
    pub school_code: &'a str,
    pub school_division: &'a str,
    pub registry_authority: &'a str,
    pub task: &'a Task,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
}

/// What opening a status change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Opened,
    /// The idempotency key was seen with the same request: this change.
    Replayed(Uuid),
    KeyReused,
    /// Another task is pending on the student.
    PendingTask,
    /// Evidence ids that are not this student's.
    UnknownEvidence(Vec<Uuid>),
    /// The record changed since the rules were checked: check again.
    RecordChanged,
    /// A correction's duplicate re-check failed.
    Collision(Collision),
}

impl Store {
    /// Opens a status change: its pending-task lock, its row and its audit entry, or nothing.
    pub async fn open_status_change(
        &self,
        new: &NewChange<'_>,
        actor: Actor<'_>,
    ) -> Result<OpenOutcome, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let seen = sqlx::query!(
            "SELECT id, request_hash FROM identity.status_changes WHERE idempotency_key = $1",
            new.idempotency_key
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(seen) = seen {
            return Ok(if seen.request_hash == new.request_hash {
                OpenOutcome::Replayed(seen.id)
            } else {
                OpenOutcome::KeyReused
            });
        }
        let (enrollment_id, state, grade) = new.enrollment;
        let current = sqlx::query!(
            "SELECT id, status, left_reason, grade FROM identity.enrollments
             WHERE student_id = $1 AND is_current FOR UPDATE",
            new.student_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let unchanged = current.is_some_and(|row| {
            row.id == enrollment_id
                && row.status == state.status.as_str()
                && row.left_reason.as_deref() == state.left_reason.map(LeftReason::as_str)
                && i64::from(row.grade) == i64::from(grade)
        });
        if !unchanged {
            return Ok(OpenOutcome::RecordChanged);
        }
        let known: Vec<Uuid> = sqlx::query_scalar!(
            "SELECT id FROM identity.evidence WHERE id = ANY($1) AND student_id = $2",
            new.evidence,
            new.student_id
        )
        .fetch_all(&mut *tx)
        .await?;
        let unknown_ids: Vec<Uuid> = new
            .evidence
            .iter()
            .filter(|id| !known.contains(id))
            .copied()
            .collect();
        if !unknown_ids.is_empty() {
            return Ok(OpenOutcome::UnknownEvidence(unknown_ids));
        }
        if let Some((_, check)) = &new.corrections
            && let Some(collision) = corrections::collisions(&mut tx, new.student_id, check).await?
        {
            return Ok(OpenOutcome::Collision(collision));
        }
        let locked = sqlx::query!(
            "INSERT INTO identity.pending_tasks (student_id, task_id, kind)
             VALUES ($1, $2, $3) ON CONFLICT (student_id) DO NOTHING",
            new.student_id,
            new.id,
            new.kind.task_kind()
        )
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() == 0 {
            return Ok(OpenOutcome::PendingTask);
        }
        let due = open_due(new.task);
        sqlx::query!(
            "INSERT INTO identity.status_changes
                 (id, student_id, enrollment_id, kind, reason, grounds, effective_date, evidence,
                  school_code, school_division, registry_authority, state, task, due_at,
                  requested_by, idempotency_key, request_hash, corrections, resolution)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'in_progress', $12, $13, $14,
                     $15, $16, $17, $18)",
            new.id,
            new.student_id,
            enrollment_id,
            new.kind.as_str(),
            new.reason,
            new.grounds,
            new.effective_date,
            new.evidence,
            new.school_code,
            new.school_division,
            new.registry_authority,
            Json(new.task) as _,
            due,
            actor.caller.describe(),
            new.idempotency_key,
            new.request_hash,
            new.corrections.as_ref().map(|(fields, _)| Json(fields)) as _,
            new.resolution.map(Json) as _
        )
        .execute(&mut *tx)
        .await?;
        let number = registry_number(&mut tx, new.student_id).await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: match new.kind {
                    RequestKind::Status(_) => "identity.request_status_change",
                    RequestKind::Correction => "identity.request_correction",
                    RequestKind::ProblemResolution => "identity.request_problem_resolution",
                },
                object: &format!("student:{number}"),
                before: Some(serde_json::json!({ "state": state.describe(), "grade": grade })),
                after: Some(serde_json::json!({
                    "status_change": new.id, "kind": new.kind.as_str(), "reason": new.reason,
                    "grounds": new.grounds, "effective_date": new.effective_date,
                    "evidence": new.evidence,
                    "corrections": new.corrections.as_ref().map(|(fields, _)| fields),
                    "resolution": new.resolution,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(OpenOutcome::Opened)
    }

    /// The id of the student's current enrollment.
    pub async fn current_enrollment(&self, student_id: i64) -> Result<i64, IdentityError> {
        sqlx::query_scalar!(
            "SELECT id FROM identity.enrollments WHERE student_id = $1 AND is_current",
            student_id
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| IdentityError::NotFound("student".into()))
    }

    /// One status change.
    pub async fn status_change(&self, id: Uuid) -> Result<Option<ChangeRecord>, IdentityError> {
        let mut conn = self.pool.acquire().await?;
        Ok(read_changes(&mut conn, &[id]).await?.pop())
    }

    /// Begins a transaction holding the status change's row lock.
    pub async fn lock_status_change(
        &self,
        id: Uuid,
    ) -> Result<Option<(sqlx::Transaction<'static, sqlx::Postgres>, ChangeRecord)>, IdentityError>
    {
        let mut tx = self.pool.begin().await?;
        let locked = sqlx::query_scalar!(
            "SELECT id FROM identity.status_changes WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        if locked.is_none() {
            return Ok(None);
        }
        Ok(read_changes(&mut tx, &[id])
            .await?
            .pop()
            .map(|record| (tx, record)))
    }

    /// Writes a status change's task back after an event, in the caller's transaction. When the
    /// task ended, releases the student's pending task; when it was approved, applies
    /// `transition` to the enrollment. Audits the event.
    pub async fn save_status_change(
        tx: &mut PgConnection,
        record: &ChangeRecord,
        transition: Option<Transition>,
        action: &str,
        actor: Actor<'_>,
    ) -> Result<(), IdentityError> {
        let state = record.task.state;
        let mut applied = None;
        if state == TaskState::Approved {
            let approval = ApprovalContext {
                decided_by: actor.caller.describe(),
                jurisdiction: actor.caller.jurisdiction.as_string(),
                request_id: actor.request_id.to_owned(),
            };
            applied = match (record.kind, transition) {
                (RequestKind::Correction, _) => {
                    Some(corrections::apply(tx, record, &approval).await?)
                }
                (RequestKind::ProblemResolution, _) => {
                    Some(super::resolutions::apply(tx, record, &approval).await?)
                }
                (RequestKind::Status(_), Some(transition)) => {
                    Some(apply(tx, record, transition).await?)
                }
                (RequestKind::Status(_), None) => None,
            };
        }
        sqlx::query!(
            "UPDATE identity.status_changes
             SET state = $2, task = $3, due_at = $4, applied = coalesce($5, applied)
             WHERE id = $1",
            record.id,
            state.as_str(),
            Json(&record.task) as _,
            open_due(&record.task),
            applied.clone()
        )
        .execute(&mut *tx)
        .await?;
        if state.is_terminal() {
            sqlx::query!(
                "DELETE FROM identity.pending_tasks WHERE task_id = $1",
                record.id
            )
            .execute(&mut *tx)
            .await?;
        }
        xueji_audit::record(
            tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action,
                object: &format!("student:{}", record.registry_number),
                before: None,
                after: Some(serde_json::json!({
                    "status_change": record.id, "kind": record.kind.as_str(),
                    "state": state.as_str(), "applied": applied,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        Ok(())
    }

    /// Status changes whose open step's deadline has passed at `now`.
    pub async fn due_status_changes(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, IdentityError> {
        Ok(sqlx::query_scalar!(
            "SELECT id FROM identity.status_changes
             WHERE state = 'in_progress' AND due_at <= $1 ORDER BY due_at LIMIT $2",
            now,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Open status changes and corrections of students now active in a graduating grade: the
    /// tasks the clearing day (7/15) ends. Problem resolutions stay (they unblock graduation).
    pub async fn graduating_open_changes(&self, limit: i64) -> Result<Vec<Uuid>, IdentityError> {
        Ok(sqlx::query_scalar!(
            "SELECT c.id FROM identity.status_changes c
             JOIN identity.enrollments e
                 ON e.student_id = c.student_id AND e.is_current AND e.status = 'active'
             JOIN identity.schools sc ON sc.code = e.school_code
             WHERE c.state = 'in_progress' AND c.kind <> 'problem_resolution'
               AND e.grade = ANY(sc.graduating_grades)
             ORDER BY c.requested_at LIMIT $1",
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Open status changes at the given schools or in the given counties, soonest deadline
    /// first: the candidates of an inbox (the caller's turn is decided from the task).
    pub async fn open_status_changes(
        &self,
        schools: &[String],
        counties: &[String],
        limit: i64,
    ) -> Result<Vec<ChangeRecord>, IdentityError> {
        let ids = sqlx::query_scalar!(
            "SELECT id FROM identity.status_changes
             WHERE state = 'in_progress'
               AND (school_code = ANY($1) OR school_division = ANY($2))
             ORDER BY due_at NULLS LAST, requested_at LIMIT $3",
            schools,
            counties,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        read_changes(&mut conn, &ids).await
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The open step's deadline instant, for the sweeper.
fn open_due(task: &Task) -> Option<DateTime<Utc>> {
    task.open_step()
        .and_then(|position| task.steps[position].due_at)
}

pub(super) async fn registry_number(
    conn: &mut PgConnection,
    student_id: i64,
) -> Result<String, IdentityError> {
    Ok(sqlx::query_scalar!(
        "SELECT registry_number FROM identity.students WHERE id = $1",
        student_id
    )
    .fetch_one(conn)
    .await?)
}

/// Status changes by id, soonest deadline first (one statement for any number of them).
async fn read_changes(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<ChangeRecord>, IdentityError> {
    let rows = sqlx::query_as!(
        ChangeRow,
        r#"SELECT c.id, c.student_id, c.enrollment_id, s.registry_number, s.name, c.kind,
                  c.reason, c.grounds, c.effective_date, c.evidence, c.school_code,
                  c.school_division, c.registry_authority, c.state,
                  c.task AS "task: Json<Task>", c.requested_by, c.requested_at, c.applied,
                  c.corrections AS "corrections: Json<Vec<FieldChange>>",
                  c.resolution AS "resolution: Json<Resolution>"
           FROM identity.status_changes c JOIN identity.students s ON s.id = c.student_id
           WHERE c.id = ANY($1) ORDER BY c.due_at NULLS LAST, c.requested_at"#,
        ids
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(ChangeRecord::try_from).collect()
}

/// Applies an approved change to the enrollment it was asked on; answers before and after.
async fn apply(
    tx: &mut PgConnection,
    record: &ChangeRecord,
    transition: Transition,
) -> Result<serde_json::Value, IdentityError> {
    let before = sqlx::query!(
        "SELECT status, left_reason, grade, suspended_until FROM identity.enrollments
         WHERE id = $1 FOR UPDATE",
        record.enrollment_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let closes = matches!(transition.to.status, EnrollmentStatus::Deceased);
    // The term's end; the trigger of 0024 clears it when the record leaves `suspended`.
    let suspended_until = transition
        .term
        .map(|term| term.ends(record.effective_date, before.suspended_until));
    sqlx::query!(
        "UPDATE identity.enrollments
         SET status = $2, left_reason = $3, grade = grade + $4,
             closed_on = CASE WHEN $5 THEN $6 ELSE closed_on END,
             suspended_until = $7
         WHERE id = $1",
        record.enrollment_id,
        transition.to.status.as_str(),
        transition.to.left_reason.map(LeftReason::as_str),
        transition.grade_delta as i16,
        closes,
        record.effective_date,
        suspended_until
    )
    .execute(&mut *tx)
    .await?;
    Ok(serde_json::json!({
        "before": {
            "status": before.status, "left_reason": before.left_reason, "grade": before.grade,
            "suspended_until": before.suspended_until,
        },
        "after": {
            "status": transition.to.status.as_str(),
            "left_reason": transition.to.left_reason.map(LeftReason::as_str),
            "grade": i32::from(before.grade) + transition.grade_delta,
            "effective_date": record.effective_date,
            "suspended_until": suspended_until,
        },
    }))
}
