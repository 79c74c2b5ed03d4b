//! Import jobs (their rows' progress and error reports) and the bulk writer of migrated
//! records: one transaction per chunk writes the students, their numbers, enrollments,
//! duplicate counters, outbox messages, one audit entry, the chunk's bad rows and the job's
//! progress, so a crash leaves a job exactly at a chunk's end.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use xueji_audit::Entry;

use super::{Actor, Store, unknown};
use crate::{IdentityError, domain::sheet::ImportKind};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Finished,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Running, Self::Finished, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone)]
pub struct ImportJobRecord {
    pub id: uuid::Uuid,
    pub kind: ImportKind,
    pub jurisdiction: String,
    pub division: String,
    pub file_name: String,
    pub format: xueji_sheets::Format,
    pub encoding: Option<String>,
    pub headings: Vec<String>,
    pub started_by: String,
    pub state: JobState,
    pub failure: Option<String>,
    pub done_through: i64,
    pub imported: i64,
    pub already: i64,
    pub bad: i64,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct JobRow {
    id: uuid::Uuid,
    kind: String,
    jurisdiction: String,
    division: String,
    file_name: String,
    format: String,
    encoding: Option<String>,
    headings: Vec<String>,
    started_by: String,
    state: String,
    failure: Option<String>,
    done_through: i64,
    imported: i64,
    already: i64,
    bad: i64,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<JobRow> for ImportJobRecord {
    type Error = IdentityError;

    fn try_from(row: JobRow) -> Result<Self, IdentityError> {
        Ok(Self {
            kind: ImportKind::parse(&row.kind).ok_or_else(|| unknown("import kind", &row.kind))?,
            format: xueji_sheets::Format::parse(&row.format)
                .ok_or_else(|| unknown("sheet format", &row.format))?,
            state: JobState::parse(&row.state).ok_or_else(|| unknown("job state", &row.state))?,
            id: row.id,
            jurisdiction: row.jurisdiction,
            division: row.division,
            file_name: row.file_name,
            encoding: row.encoding,
            headings: row.headings,
            started_by: row.started_by,
            failure: row.failure,
            done_through: row.done_through,
            imported: row.imported,
            already: row.already,
            bad: row.bad,
            started_at: row.started_at,
            updated_at: row.updated_at,
        })
    }
}

/// A job about to start (or to attach to, when the same file was sent before).
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: ImportKind,
    pub jurisdiction: &'a str,
    pub division: &'a str,
    pub sha256: &'a [u8],
    pub file_name: &'a str,
    pub format: xueji_sheets::Format,
    pub started_by: &'a str,
}

/// One problem of a bad row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    pub field: String,
    pub heading: String,
    pub reason: String,
}

/// A bad row as it was, with its problems.
#[derive(Debug, Clone)]
pub struct RowError {
    pub row: i64,
    pub cells: Vec<String>,
    pub problems: Vec<RowProblem>,
}

/// What one chunk of rows did, to add to the job.
#[derive(Debug, Clone, Default)]
pub struct ChunkDone {
    /// The last sheet row of the chunk.
    pub through: i64,
    pub imported: i64,
    pub already: i64,
    pub errors: Vec<RowError>,
}

impl Store {
    /// Opens the job for this file in this jurisdiction, or finds the one opened before.
    /// Answers the job and whether it is new.
    pub async fn open_import_job(
        &self,
        job: &NewJob<'_>,
    ) -> Result<(ImportJobRecord, bool), IdentityError> {
        let id = uuid::Uuid::new_v4();
        let row = sqlx::query_as!(
            JobRow,
            r#"INSERT INTO identity.import_jobs
                   (id, kind, jurisdiction, division, file_sha256, file_name, format, started_by,
                    state)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running')
               ON CONFLICT (kind, jurisdiction, file_sha256) DO UPDATE SET updated_at = now()
               RETURNING id, kind, jurisdiction, division, file_name, format, encoding,
                         headings, started_by, state, failure, done_through, imported,
                         already, bad, started_at, updated_at"#,
            id,
            job.kind.as_str(),
            job.jurisdiction,
            job.division,
            job.sha256,
            job.file_name,
            job.format.as_str(),
            job.started_by,
        )
        .fetch_one(&self.pool)
        .await?;
        let created = row.id == id;
        Ok((row.try_into()?, created))
    }

    pub async fn import_job(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<ImportJobRecord>, IdentityError> {
        sqlx::query_as!(
            JobRow,
            "SELECT id, kind, jurisdiction, division, file_name, format, encoding, headings,
                    started_by, state, failure, done_through, imported, already, bad,
                    started_at, updated_at
             FROM identity.import_jobs WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .map(TryInto::try_into)
        .transpose()
    }

    /// The newest jobs of this node, newest first (the caller narrows them to its scope).
    pub async fn recent_import_jobs(
        &self,
        limit: i64,
    ) -> Result<Vec<ImportJobRecord>, IdentityError> {
        sqlx::query_as!(
            JobRow,
            "SELECT id, kind, jurisdiction, division, file_name, format, encoding, headings,
                    started_by, state, failure, done_through, imported, already, bad,
                    started_at, updated_at
             FROM identity.import_jobs ORDER BY started_at DESC LIMIT $1",
            limit
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    /// Records what the file turned out to be (its heading row, its encoding), and that it is
    /// being read again.
    pub async fn import_job_reading(
        &self,
        id: uuid::Uuid,
        headings: &[String],
        encoding: Option<&str>,
    ) -> Result<(), IdentityError> {
        sqlx::query!(
            "UPDATE identity.import_jobs
             SET headings = $2, encoding = $3, state = 'running', failure = NULL,
                 updated_at = now()
             WHERE id = $1",
            id,
            headings,
            encoding
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a job: finished, or failed with the reason.
    pub async fn end_import_job(
        &self,
        id: uuid::Uuid,
        state: JobState,
        failure: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<(), IdentityError> {
        let mut tx = self.pool.begin().await?;
        let job = sqlx::query!(
            "UPDATE identity.import_jobs SET state = $2, failure = $3, updated_at = now()
             WHERE id = $1
             RETURNING kind, file_name, imported, already, bad, done_through",
            id,
            state.as_str(),
            failure
        )
        .fetch_one(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.end_import",
                object: &format!("import:{id}"),
                before: None,
                after: Some(serde_json::json!({
                    "kind": job.kind,
                    "file_name": job.file_name,
                    "state": state.as_str(),
                    "failure": failure,
                    "imported": job.imported,
                    "already_present": job.already,
                    "bad": job.bad,
                    "done_through_row": job.done_through,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a chunk's counts and bad rows to the job (intake: its rows were written by
    /// registration itself; a row written before a crash answers as a replay when read again).
    pub async fn record_import_chunk(
        &self,
        id: uuid::Uuid,
        done: &ChunkDone,
    ) -> Result<(), IdentityError> {
        let mut tx = self.pool.begin().await?;
        save_chunk(&mut tx, id, done).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A job's bad rows after sheet row `after`, at most `limit`, in row order.
    pub async fn import_errors(
        &self,
        id: uuid::Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RowError>, IdentityError> {
        let rows = sqlx::query!(
            r#"SELECT row_number, cells, problems AS "problems: Json<Vec<RowProblem>>"
               FROM identity.import_errors
               WHERE job_id = $1 AND row_number > $2
               ORDER BY row_number LIMIT $3"#,
            id,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| RowError {
                row: row.row_number,
                cells: row.cells,
                problems: row.problems.0,
            })
            .collect())
    }
}

pub(super) async fn save_chunk(
    tx: &mut sqlx::PgConnection,
    id: uuid::Uuid,
    done: &ChunkDone,
) -> Result<(), IdentityError> {
    let rows: Vec<i64> = done.errors.iter().map(|e| e.row).collect();
    // A text[] per row: passed as one JSON array of arrays, unpacked in SQL.
    let cells = Json(done.errors.iter().map(|e| &e.cells).collect::<Vec<_>>());
    let problems: Vec<Json<&Vec<RowProblem>>> =
        done.errors.iter().map(|e| Json(&e.problems)).collect();
    sqlx::query!(
        "INSERT INTO identity.import_errors (job_id, row_number, cells, problems)
         SELECT $1, r.row_number,
                ARRAY(SELECT jsonb_array_elements_text(c.cells)), r.problems
         FROM unnest($2::bigint[], $4::jsonb[]) WITH ORDINALITY AS r(row_number, problems, n)
         JOIN jsonb_array_elements($3::jsonb) WITH ORDINALITY AS c(cells, n) ON c.n = r.n
         ON CONFLICT (job_id, row_number) DO NOTHING",
        id,
        &rows,
        cells as _,
        &problems as _
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE identity.import_jobs
         SET done_through = greatest(done_through, $2), imported = imported + $3,
             already = already + $4, bad = bad + $5, updated_at = now()
         WHERE id = $1",
        id,
        done.through,
        done.imported,
        done.already,
        done.errors.len() as i64
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store {
    /// One page of current records for export, after student id `after`, in id order: the
    /// records of `school`, or of the schools in `counties`. Records whose current copy is
    /// elsewhere (transferred out), rejected or deleted are not exported.
    pub async fn export_page(
        &self,
        counties: &[String],
        school: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<super::StudentRecord>, IdentityError> {
        let ids = sqlx::query_scalar!(
            "SELECT e.student_id FROM identity.enrollments e
             WHERE e.is_current AND e.student_id > $3
               AND ($1::text IS NULL OR e.school_code = $1)
               AND ($1::text IS NOT NULL OR e.school_division = ANY($2))
               AND e.status NOT IN ('transferred_out', 'rejected', 'deleted')
             ORDER BY e.student_id LIMIT $4",
            school,
            counties,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        let mut records = self.students(&ids).await?;
        records.sort_by_key(|r| r.id);
        Ok(records)
    }
}
