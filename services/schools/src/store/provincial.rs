//! The provincial side (schema `schools_provincial`): applications on their way from a county
//! to the national authority, and the replica of the published code list.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use xueji_codes::DivisionCode;

use super::{Actor, SchoolFilter, audit, national::LineageLink};
use crate::{
    SchoolsError,
    domain::{ApplicationStatus, Profile, SchoolRecord},
};

pub const SCHEMA: &str = "schools_provincial";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/provincial");

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    xueji_audit::migrate(pool).await?;
    xueji_db::migrate_schema(pool, SCHEMA, &MIGRATOR).await
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationStep {
    pub action: String,
    pub actor: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: String,
    pub county: DivisionCode,
    pub profile: Profile,
    pub open_from: NaiveDate,
    pub status: ApplicationStatus,
    pub code: Option<String>,
    pub filed_by: String,
    pub steps: Vec<ApplicationStep>,
}

/// What filing answered.
#[derive(Debug)]
pub enum Filed {
    New(Application),
    /// The idempotency key was seen with the same request: the original application.
    Replayed(Application),
    /// The key was seen with a different request.
    KeyReused,
}

/// How far the replica has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaState {
    pub version: i64,
    pub decision_cursor: i64,
}

#[derive(Debug, Clone)]
pub struct ProvincialStore {
    pool: PgPool,
}

super::school_lookups!(ProvincialStore);

impl ProvincialStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    // ---- applications ----

    pub async fn file(
        &self,
        idempotency_key: &str,
        request_hash: &[u8],
        profile: &Profile,
        open_from: NaiveDate,
        actor: &Actor,
    ) -> Result<Filed, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let id = format!("{}-{}", profile.division, uuid::Uuid::new_v4().simple());
        let profile_json = serde_json::to_value(profile).expect("serializable");
        let inserted = sqlx::query_scalar!(
            "INSERT INTO schools_provincial.applications
                 (id, idempotency_key, request_hash, county, profile, open_from, status, filed_by)
             VALUES ($1, $2, $3, $4, $5, $6, 'filed', $7)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING id",
            id,
            idempotency_key,
            request_hash,
            profile.division.as_str(),
            profile_json,
            open_from,
            actor.caller.describe(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            let earlier = sqlx::query!(
                "SELECT id, request_hash FROM schools_provincial.applications WHERE idempotency_key = $1",
                idempotency_key
            )
            .fetch_one(&mut *tx)
            .await?;
            return if earlier.request_hash == request_hash {
                Ok(Filed::Replayed(
                    fetch(&mut tx, &earlier.id).await?.expect("just read"),
                ))
            } else {
                Ok(Filed::KeyReused)
            };
        }
        add_step(&mut tx, &id, "filed", &actor.caller.describe(), "").await?;
        audit(
            &mut tx,
            actor,
            "schools.file_application",
            &format!("application:{id}"),
            None,
            Some(serde_json::json!({ "profile": profile_json, "open_from": open_from })),
        )
        .await?;
        let filed = fetch(&mut tx, &id).await?.expect("just inserted");
        tx.commit().await?;
        Ok(Filed::New(filed))
    }

    pub async fn application(&self, id: &str) -> Result<Option<Application>, SchoolsError> {
        let mut conn = self.pool.acquire().await?;
        fetch(&mut conn, id).await
    }

    /// Applications from counties under `division_prefix`, optionally of one status.
    /// Applications from counties under `division_prefix`, oldest first, after the one with
    /// id `after` (a page token), at most `limit`.
    pub async fn applications(
        &self,
        division_prefix: &str,
        status: Option<ApplicationStatus>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Application>, SchoolsError> {
        let mut conn = self.pool.acquire().await?;
        fetch_where(&mut conn, None, division_prefix, status, after, limit).await
    }

    /// Moves an application from `from` to `to` (refused if someone moved it first) and records
    /// the step.
    #[allow(clippy::too_many_arguments)]
    pub async fn advance(
        &self,
        id: &str,
        from: ApplicationStatus,
        to: ApplicationStatus,
        code: Option<&str>,
        action: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<Application, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let status = sqlx::query_scalar!(
            "SELECT status FROM schools_provincial.applications WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| SchoolsError::NotFound(format!("application {id}")))?;
        if status != from.as_str() {
            return Err(SchoolsError::FailedPrecondition(format!(
                "application {id} is {status} now, no longer {}",
                from.as_str()
            )));
        }
        sqlx::query!(
            "UPDATE schools_provincial.applications SET status = $2, code = coalesce($3, code)
             WHERE id = $1",
            id,
            to.as_str(),
            code
        )
        .execute(&mut *tx)
        .await?;
        add_step(&mut tx, id, action, &actor.caller.describe(), reason).await?;
        audit(
            &mut tx,
            actor,
            &format!("schools.{action}_application"),
            &format!("application:{id}"),
            Some(serde_json::json!({ "status": from.as_str() })),
            Some(serde_json::json!({ "status": to.as_str(), "reason": reason, "code": code })),
        )
        .await?;
        let moved = fetch(&mut tx, id).await?.expect("locked above");
        tx.commit().await?;
        Ok(moved)
    }

    // ---- replica ----

    pub async fn replica_state(&self) -> Result<ReplicaState, SchoolsError> {
        let row =
            sqlx::query!("SELECT version, decision_cursor FROM schools_provincial.replica_state")
                .fetch_one(&self.pool)
                .await?;
        Ok(ReplicaState {
            version: row.version,
            decision_cursor: row.decision_cursor,
        })
    }

    pub async fn set_decision_cursor(&self, cursor: i64) -> Result<(), SchoolsError> {
        sqlx::query!(
            "UPDATE schools_provincial.replica_state SET decision_cursor = greatest(decision_cursor, $1)",
            cursor
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Starts applying publication `version`, page by page, in one transaction; `None` when
    /// the replica holds it already. Publications must come in order: the replica never skips
    /// a version, and moves to one only when its last page is in.
    pub async fn begin_publication(
        &self,
        version: i64,
    ) -> Result<Option<super::replication::PublicationApplier>, SchoolsError> {
        super::replication::PublicationApplier::begin(&self.pool, version).await
    }

    pub async fn school(&self, code: &str) -> Result<Option<SchoolRecord>, SchoolsError> {
        let record = sqlx::query_scalar!(
            "SELECT record FROM schools_provincial.schools WHERE code = $1",
            code
        )
        .fetch_optional(&self.pool)
        .await?;
        record.map(decode_record).transpose()
    }

    /// (school, publication it came in) for the API.
    pub async fn published_in(&self, code: &str) -> Result<i64, SchoolsError> {
        Ok(sqlx::query_scalar!(
            "SELECT published_in FROM schools_provincial.schools WHERE code = $1",
            code
        )
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(0))
    }

    pub async fn schools(&self, filter: &SchoolFilter) -> Result<Vec<SchoolRecord>, SchoolsError> {
        let records = sqlx::query_scalar!(
            "SELECT record FROM schools_provincial.schools
             WHERE division LIKE $1 || '%'
               AND ($2::text IS NULL OR code = $2)
               AND ($3 = '' OR name LIKE '%' || $3 || '%')
               AND ($4::text IS NULL OR category = $4)
               AND ($5 OR status = 'open')
               AND code > $6
             ORDER BY code
             LIMIT $7",
            filter.division_prefix,
            filter.only_code,
            filter.name_contains,
            filter.category,
            filter.include_void,
            filter.after_code,
            filter.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        records.into_iter().map(decode_record).collect()
    }

    pub async fn lineage(&self, code: &str) -> Result<Vec<LineageLink>, SchoolsError> {
        Ok(sqlx::query_as!(
            LineageLink,
            r#"WITH RECURSIVE family(code) AS (
                   SELECT $1::text
                   UNION
                   SELECT CASE WHEN l.predecessor = f.code THEN l.successor ELSE l.predecessor END
                   FROM schools_provincial.lineage l
                   JOIN family f ON l.predecessor = f.code OR l.successor = f.code
               )
               SELECT predecessor, successor, kind, effective_date
               FROM schools_provincial.lineage
               WHERE predecessor IN (SELECT code FROM family)
               ORDER BY effective_date, predecessor, successor"#,
            code
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A voided code and the code that carries on, with the publication that voided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Succession {
    pub link: LineageLink,
    pub version: i64,
}

impl ProvincialStore {
    /// Successions after (`after_version`, `after_code`) in (version, voided code) order. A
    /// voided code changes no more, so the publication that last wrote it is the one that
    /// voided it.
    pub async fn successions(
        &self,
        after_version: i64,
        after_code: &str,
        limit: i64,
    ) -> Result<Vec<Succession>, SchoolsError> {
        let rows = sqlx::query!(
            r#"SELECT l.predecessor, l.successor, l.kind, l.effective_date, s.published_in
               FROM schools_provincial.lineage l
               JOIN schools_provincial.schools s ON s.code = l.predecessor
               WHERE (s.published_in, l.predecessor) > ($1, $2)
               ORDER BY s.published_in, l.predecessor, l.successor
               LIMIT $3"#,
            after_version,
            after_code,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Succession {
                link: LineageLink {
                    predecessor: row.predecessor,
                    successor: row.successor,
                    kind: row.kind,
                    effective_date: row.effective_date,
                },
                version: row.published_in,
            })
            .collect())
    }
}

fn decode_record(record: serde_json::Value) -> Result<SchoolRecord, SchoolsError> {
    serde_json::from_value(record).map_err(|e| {
        SchoolsError::Database(xueji_db::DbFailure::Corrupt(format!(
            "replica school record: {e}"
        )))
    })
}

async fn add_step(
    conn: &mut PgConnection,
    id: &str,
    action: &str,
    actor: &str,
    reason: &str,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "INSERT INTO schools_provincial.application_steps (application_id, action, actor, reason)
         VALUES ($1, $2, $3, $4)",
        id,
        action,
        actor,
        reason
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn fetch(conn: &mut PgConnection, id: &str) -> Result<Option<Application>, SchoolsError> {
    Ok(fetch_where(conn, Some(id), "", None, None, 1).await?.pop())
}

/// Applications with their steps, one or all from counties under `division_prefix`, optionally
/// of one status, in the order they were filed (at most 1000).
async fn fetch_where(
    conn: &mut PgConnection,
    id: Option<&str>,
    division_prefix: &str,
    status: Option<ApplicationStatus>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Application>, SchoolsError> {
    let rows = sqlx::query!(
        r#"SELECT a.id, a.county, a.profile, a.open_from, a.status, a.code, a.filed_by,
                  ARRAY(SELECT s.action FROM schools_provincial.application_steps s
                        WHERE s.application_id = a.id ORDER BY s.id) AS "actions!",
                  ARRAY(SELECT s.actor FROM schools_provincial.application_steps s
                        WHERE s.application_id = a.id ORDER BY s.id) AS "actors!",
                  ARRAY(SELECT s.reason FROM schools_provincial.application_steps s
                        WHERE s.application_id = a.id ORDER BY s.id) AS "reasons!",
                  ARRAY(SELECT s.at FROM schools_provincial.application_steps s
                        WHERE s.application_id = a.id ORDER BY s.id) AS "ats!"
           FROM schools_provincial.applications a
           WHERE ($1::text IS NULL OR a.id = $1) AND a.county LIKE $2 || '%'
             AND ($3::text IS NULL OR a.status = $3)
             AND ($4::text IS NULL OR (a.filed_at, a.id) >
                  (SELECT p.filed_at, p.id FROM schools_provincial.applications p WHERE p.id = $4))
           ORDER BY a.filed_at, a.id LIMIT $5"#,
        id,
        division_prefix,
        status.map(ApplicationStatus::as_str),
        after,
        limit,
    )
    .fetch_all(&mut *conn)
    .await?;
    let corrupt = |what: String| SchoolsError::Database(xueji_db::DbFailure::Corrupt(what));
    rows.into_iter()
        .map(|row| {
            let id = &row.id;
            let steps = row
                .actions
                .into_iter()
                .zip(row.actors)
                .zip(row.reasons)
                .zip(row.ats)
                .map(|(((action, actor), reason), at)| ApplicationStep {
                    action,
                    actor,
                    reason,
                    at,
                })
                .collect();
            Ok(Application {
                county: row
                    .county
                    .parse()
                    .map_err(|e| corrupt(format!("application {id}: county: {e}")))?,
                profile: serde_json::from_value(row.profile)
                    .map_err(|e| corrupt(format!("application {id}: profile: {e}")))?,
                status: ApplicationStatus::parse(&row.status)
                    .ok_or_else(|| corrupt(format!("application {id}: status {}", row.status)))?,
                open_from: row.open_from,
                code: row.code,
                filed_by: row.filed_by,
                steps,
                id: row.id,
            })
        })
        .collect()
}
