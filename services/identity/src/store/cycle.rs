//! The annual cycle's SQL: graduation and promotion in batches of enrollment ids, each batch one
//! transaction that also advances the step's watermark and writes its audit entry, so a run cut
//! short resumes exactly after the last batch it finished and nobody moves twice.

use chrono::{DateTime, NaiveDate, Utc};
use xueji_audit::Entry;

use super::{Actor, Store, unknown};
use crate::{
    IdentityError,
    domain::school_year::{CycleStep, GraduationOutcome},
};

/// Where one step of one summer's cycle stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleStepRun {
    pub year: i32,
    pub step: CycleStep,
    pub done: bool,
    /// The last enrollment id the step has gone through.
    pub watermark: i64,
    /// The highest enrollment id when the step started: where it ends.
    pub ceiling: i64,
    pub changed: i64,
    pub blocked: i64,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchDone {
    pub changed: i64,
    pub blocked: i64,
    /// False when another runner had already taken this batch: nothing was written.
    pub applied: bool,
}

/// What the cycle of a summer would do now (the dry run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CyclePreview {
    pub will_graduate: i64,
    pub blocked_by_task: i64,
    pub blocked_by_problem: i64,
    pub awaiting_confirmation: i64,
    pub will_promote: i64,
    pub already_promoted: i64,
    pub already_graduated: i64,
}

struct StepRow {
    cycle_year: i16,
    step: String,
    state: String,
    watermark: i64,
    ceiling: i64,
    changed: i64,
    blocked: i64,
    started_by: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<StepRow> for CycleStepRun {
    type Error = IdentityError;

    fn try_from(row: StepRow) -> Result<Self, IdentityError> {
        Ok(Self {
            year: i32::from(row.cycle_year),
            step: CycleStep::parse(&row.step).ok_or_else(|| unknown("cycle step", &row.step))?,
            done: match row.state.as_str() {
                "running" => false,
                "done" => true,
                other => return Err(unknown("cycle step state", other)),
            },
            watermark: row.watermark,
            ceiling: row.ceiling,
            changed: row.changed,
            blocked: row.blocked,
            started_by: row.started_by,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

impl Store {
    /// The steps of a summer's cycle that have started, in their order.
    pub async fn cycle_steps(&self, year: i32) -> Result<Vec<CycleStepRun>, IdentityError> {
        let rows = sqlx::query_as!(
            StepRow,
            "SELECT cycle_year, step, state, watermark, ceiling, changed, blocked, started_by, started_at,
                    finished_at
             FROM identity.cycle_steps WHERE cycle_year = $1 ORDER BY step",
            year as i16
        )
        .fetch_all(&self.pool)
        .await?;
        let mut runs = rows
            .into_iter()
            .map(CycleStepRun::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        runs.sort_by_key(|run| run.step);
        Ok(runs)
    }

    /// Starts a step (or finds it started: a rerun resumes it), audited once when it starts.
    pub async fn begin_cycle_step(
        &self,
        year: i32,
        step: CycleStep,
        actor: &str,
        jurisdiction: &str,
    ) -> Result<CycleStepRun, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let started = sqlx::query_scalar!(
            "INSERT INTO identity.cycle_steps (cycle_year, step, state, started_by, ceiling)
             VALUES ($1, $2, 'running', $3,
                     (SELECT coalesce(max(id), 0) FROM identity.enrollments))
             ON CONFLICT (cycle_year, step) DO NOTHING RETURNING cycle_year",
            year as i16,
            step.as_str(),
            actor
        )
        .fetch_optional(&mut *tx)
        .await?;
        if started.is_some() {
            xueji_audit::record(
                &mut tx,
                &Entry {
                    actor,
                    jurisdiction,
                    action: &format!("identity.cycle.start_{}", step.as_str()),
                    object: &format!("cycle:{year}"),
                    before: None,
                    after: Some(serde_json::json!({ "step": step.as_str(), "state": "running" })),
                    request_id: "",
                },
            )
            .await?;
        }
        let row = sqlx::query_as!(
            StepRow,
            "SELECT cycle_year, step, state, watermark, ceiling, changed, blocked, started_by, started_at,
                    finished_at
             FROM identity.cycle_steps WHERE cycle_year = $1 AND step = $2",
            year as i16,
            step.as_str()
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// Claims the batch `(after, upto]` of a running step: moves its watermark and totals, in
    /// the caller's transaction. False when the watermark is elsewhere (another runner took
    /// the batch, or the step is done).
    async fn claim_batch(
        tx: &mut sqlx::PgConnection,
        year: i32,
        step: CycleStep,
        after: i64,
        upto: i64,
    ) -> Result<bool, IdentityError> {
        let claimed = sqlx::query!(
            "UPDATE identity.cycle_steps SET watermark = $4
             WHERE cycle_year = $1 AND step = $2 AND state = 'running' AND watermark = $3",
            year as i16,
            step.as_str(),
            after,
            upto
        )
        .execute(&mut *tx)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn add_totals(
        tx: &mut sqlx::PgConnection,
        year: i32,
        step: CycleStep,
        done: BatchDone,
    ) -> Result<(), IdentityError> {
        sqlx::query!(
            "UPDATE identity.cycle_steps SET changed = changed + $3, blocked = blocked + $4
             WHERE cycle_year = $1 AND step = $2",
            year as i16,
            step.as_str(),
            done.changed,
            done.blocked
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Graduates the students of graduating grades among enrollments `(after, upto]`: the
    /// outcome their school recorded, else graduated. A student with a pending task or an open
    /// problem, or of a senior high school whose authority has not confirmed the year's
    /// graduation, stays active and is counted as blocked.
    pub async fn graduate_batch(
        &self,
        year: i32,
        after: i64,
        upto: i64,
        closed_on: NaiveDate,
        actor: Actor<'_>,
    ) -> Result<BatchDone, IdentityError> {
        let mut tx = self.pool.begin().await?;
        if !Self::claim_batch(&mut tx, year, CycleStep::Graduation, after, upto).await? {
            return Ok(BatchDone::default());
        }
        let row = sqlx::query!(
            r#"WITH candidates AS (
                   SELECT e.id,
                          EXISTS (SELECT 1 FROM identity.pending_tasks p
                                  WHERE p.student_id = e.student_id)
                          OR identity.has_open_problem(e.student_id)
                          OR (e.grade = ANY(sc.confirmed_grades) AND NOT EXISTS (
                                  SELECT 1 FROM identity.graduation_confirmations c
                                  WHERE c.school_code = e.school_code AND c.cycle_year = $1))
                              AS blocked
                   FROM identity.enrollments e
                   JOIN identity.schools sc ON sc.code = e.school_code
                   WHERE e.id > $2 AND e.id <= $3 AND e.is_current AND e.status = 'active'
                     AND e.grade = ANY(sc.graduating_grades)
               ), graduated AS (
                   UPDATE identity.enrollments e
                   SET status = COALESCE(o.outcome, 'graduated'), closed_on = $4
                   FROM candidates c
                   LEFT JOIN identity.graduation_outcomes o
                       ON o.enrollment_id = c.id AND o.cycle_year = $1
                   WHERE e.id = c.id AND NOT c.blocked
                   RETURNING e.id, e.student_id
               ), finished AS (
                   -- The national index learns the record finished its stage: not live for
                   -- the duplicate check, so that a school of another province may continue
                   -- the student (升学 across provinces).
                   INSERT INTO identity.outbox (payload)
                   SELECT json_build_object(
                              'kind', 'index_student', 'registry_number', s.registry_number,
                              'aliases', to_json(ARRAY(SELECT r.number
                                                       FROM identity.registry_numbers r
                                                       WHERE r.student_id = s.id
                                                         AND r.number <> s.registry_number
                                                       ORDER BY r.number)),
                              'id_number', s.id_number_claim,
                              'duplicate_digest',
                              encode(sha256(convert_to(s.name_key, 'UTF8')), 'hex'),
                              'status', 'finished')
                   FROM graduated g JOIN identity.students s ON s.id = g.student_id
                   ORDER BY s.id
               )
               SELECT (SELECT count(*) FROM graduated) AS "changed!",
                      (SELECT count(*) FROM candidates WHERE blocked) AS "blocked!""#,
            year as i16,
            after,
            upto,
            closed_on
        )
        .fetch_one(&mut *tx)
        .await?;
        let done = BatchDone {
            changed: row.changed,
            blocked: row.blocked,
            applied: true,
        };
        Self::finish_batch(
            &mut tx,
            year,
            CycleStep::Graduation,
            after,
            upto,
            done,
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Promotes every active student of enrollments `(after, upto]` one grade, except those of
    /// a graduating grade, those who entered on or after `cutoff` (the new intake) and those
    /// this summer's promotion already moved.
    pub async fn promote_batch(
        &self,
        year: i32,
        after: i64,
        upto: i64,
        cutoff: NaiveDate,
        actor: Actor<'_>,
    ) -> Result<BatchDone, IdentityError> {
        let mut tx = self.pool.begin().await?;
        if !Self::claim_batch(&mut tx, year, CycleStep::Promotion, after, upto).await? {
            return Ok(BatchDone::default());
        }
        let promoted = sqlx::query!(
            "UPDATE identity.enrollments e SET grade = e.grade + 1, promoted_in = $1
             FROM identity.schools sc
             WHERE e.id > $2 AND e.id <= $3 AND e.is_current AND e.status = 'active'
               AND sc.code = e.school_code AND NOT (e.grade = ANY(sc.graduating_grades))
               AND e.grade < 12 AND e.entry_date < $4
               AND e.promoted_in IS DISTINCT FROM $1",
            year as i16,
            after,
            upto,
            cutoff
        )
        .execute(&mut *tx)
        .await?;
        let done = BatchDone {
            changed: promoted.rows_affected() as i64,
            blocked: 0,
            applied: true,
        };
        Self::finish_batch(
            &mut tx,
            year,
            CycleStep::Promotion,
            after,
            upto,
            done,
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn finish_batch(
        tx: &mut sqlx::PgConnection,
        year: i32,
        step: CycleStep,
        after: i64,
        upto: i64,
        done: BatchDone,
        actor: Actor<'_>,
    ) -> Result<(), IdentityError> {
        Self::add_totals(tx, year, step, done).await?;
        if done.changed > 0 || done.blocked > 0 {
            xueji_audit::record(
                tx,
                &Entry {
                    actor: &actor.caller.describe(),
                    jurisdiction: &actor.caller.jurisdiction.as_string(),
                    action: &format!("identity.cycle.{}", step.as_str()),
                    object: &format!("cycle:{year}:enrollments:{}-{upto}", after + 1),
                    before: None,
                    after: Some(serde_json::json!({
                        "changed": done.changed, "blocked": done.blocked
                    })),
                    request_id: actor.request_id,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Marks a step done once its watermark passed the ceiling.
    pub async fn finish_cycle_step(&self, year: i32, step: CycleStep) -> Result<(), IdentityError> {
        sqlx::query!(
            "UPDATE identity.cycle_steps SET state = 'done', finished_at = now()
             WHERE cycle_year = $1 AND step = $2 AND state = 'running'",
            year as i16,
            step.as_str()
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What the cycle of `year` would do now, without changing anything.
    pub async fn preview_cycle(
        &self,
        year: i32,
        cutoff: NaiveDate,
    ) -> Result<CyclePreview, IdentityError> {
        let row = sqlx::query!(
            r#"WITH graduation AS (
                   SELECT watermark, ceiling FROM identity.cycle_steps
                   WHERE cycle_year = $1 AND step = 'graduation'
               ), promotion AS (
                   SELECT watermark, ceiling FROM identity.cycle_steps
                   WHERE cycle_year = $1 AND step = 'promotion'
               ), current AS (
                   -- A step already run (in part or whole) moves only the enrollments it has
                   -- not gone through below its ceiling: what a run now would do.
                   SELECT e.status, e.entry_date, e.promoted_in, e.grade < 12 AS below_top,
                          (g.ceiling IS NULL OR (e.id > g.watermark AND e.id <= g.ceiling))
                              AS graduation_left,
                          (p.ceiling IS NULL OR (e.id > p.watermark AND e.id <= p.ceiling))
                              AS promotion_left,
                          e.status = 'active' AND e.grade = ANY(sc.graduating_grades) AS graduating,
                          CASE WHEN e.status = 'active' AND e.grade = ANY(sc.graduating_grades)
                               THEN EXISTS (SELECT 1 FROM identity.pending_tasks p
                                            WHERE p.student_id = e.student_id)
                               ELSE false END AS has_task,
                          CASE WHEN e.status = 'active' AND e.grade = ANY(sc.graduating_grades)
                               THEN identity.has_open_problem(e.student_id)
                               ELSE false END AS has_problem,
                          e.status = 'active' AND e.grade = ANY(sc.confirmed_grades)
                              AND NOT EXISTS (
                                  SELECT 1 FROM identity.graduation_confirmations c
                                  WHERE c.school_code = e.school_code AND c.cycle_year = $1)
                              AS unconfirmed,
                          e.closed_on
                   FROM identity.enrollments e
                   JOIN identity.schools sc ON sc.code = e.school_code
                   LEFT JOIN graduation g ON true
                   LEFT JOIN promotion p ON true
                   WHERE e.is_current
               )
               SELECT
                 count(*) FILTER (WHERE graduating AND graduation_left AND NOT has_task
                                    AND NOT has_problem AND NOT unconfirmed) AS "will_graduate!",
                 count(*) FILTER (WHERE graduating AND graduation_left AND has_task)
                     AS "blocked_by_task!",
                 count(*) FILTER (WHERE graduating AND graduation_left AND has_problem)
                     AS "blocked_by_problem!",
                 count(*) FILTER (WHERE unconfirmed AND graduation_left)
                     AS "awaiting_confirmation!",
                 count(*) FILTER (WHERE status = 'active' AND NOT graduating AND below_top
                                    AND promotion_left AND entry_date < $2
                                    AND promoted_in IS DISTINCT FROM $1) AS "will_promote!",
                 count(*) FILTER (WHERE promoted_in = $1) AS "already_promoted!",
                 count(*) FILTER (WHERE status IN ('graduated', 'completed', 'incomplete')
                                    AND closed_on >= make_date($1, 1, 1)) AS "already_graduated!"
               FROM current"#,
            year as i16,
            cutoff
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(CyclePreview {
            will_graduate: row.will_graduate,
            blocked_by_task: row.blocked_by_task,
            blocked_by_problem: row.blocked_by_problem,
            awaiting_confirmation: row.awaiting_confirmation,
            will_promote: row.will_promote,
            already_promoted: row.already_promoted,
            already_graduated: row.already_graduated,
        })
    }

    /// The registry authority confirms a senior high school's graduation of `year`. True when
    /// this call confirmed it, false when it was confirmed already.
    pub async fn confirm_graduation(
        &self,
        school_code: &str,
        year: i32,
        actor: Actor<'_>,
    ) -> Result<bool, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let by = actor.caller.describe();
        let inserted = sqlx::query!(
            "INSERT INTO identity.graduation_confirmations (school_code, cycle_year, confirmed_by)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            school_code,
            year as i16,
            by
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            xueji_audit::record(
                &mut tx,
                &Entry {
                    actor: &by,
                    jurisdiction: &actor.caller.jurisdiction.as_string(),
                    action: "identity.confirm_graduation",
                    object: &format!("school:{school_code}"),
                    before: None,
                    after: Some(serde_json::json!({ "cycle_year": year, "confirmed": true })),
                    request_id: actor.request_id,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// A school records how a student of a graduating grade ends the stage this summer
    /// (before the cycle's graduation takes it). Answers the outcome recorded before, if any.
    pub async fn record_graduation_outcome(
        &self,
        student_id: i64,
        registry_number: &str,
        year: i32,
        outcome: GraduationOutcome,
        actor: Actor<'_>,
    ) -> Result<Option<GraduationOutcome>, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let enrollment = sqlx::query_scalar!(
            "SELECT id FROM identity.enrollments
             WHERE student_id = $1 AND is_current AND status = 'active' FOR UPDATE",
            student_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            IdentityError::FailedPrecondition(format!(
                "{registry_number} is not active: only a student still in school graduates"
            ))
        })?;
        let before = sqlx::query_scalar!(
            "SELECT outcome FROM identity.graduation_outcomes WHERE enrollment_id = $1",
            enrollment
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(|text| GraduationOutcome::parse(&text).ok_or_else(|| unknown("outcome", &text)))
        .transpose()?;
        let by = actor.caller.describe();
        sqlx::query!(
            "INSERT INTO identity.graduation_outcomes (enrollment_id, cycle_year, outcome, recorded_by)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (enrollment_id) DO UPDATE SET cycle_year = excluded.cycle_year,
                 outcome = excluded.outcome, recorded_by = excluded.recorded_by,
                 recorded_at = now()",
            enrollment,
            year as i16,
            outcome.as_str(),
            by
        )
        .execute(&mut *tx)
        .await?;
        if before != Some(outcome) {
            xueji_audit::record(
                &mut tx,
                &Entry {
                    actor: &by,
                    jurisdiction: &actor.caller.jurisdiction.as_string(),
                    action: "identity.record_graduation_outcome",
                    object: &format!("student:{registry_number}"),
                    before: before.map(|o| serde_json::json!({ "outcome": o.as_str() })),
                    after: Some(serde_json::json!({
                        "cycle_year": year, "outcome": outcome.as_str()
                    })),
                    request_id: actor.request_id,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(before)
    }
}
