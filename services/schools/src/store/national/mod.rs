//! The national authority's tables (schema `schools_national`): issued codes, their lifecycle,
//! applications from the provinces, and the publications.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use xueji_codes::SchoolCode;

use super::{SchoolFilter, SchoolRow};
use crate::{
    SchoolsError,
    domain::{Profile, SchoolRecord},
};

use writes::load_school;
mod applications;
mod lifecycle;
mod publications;
mod writes;

pub const SCHEMA: &str = "schools_national";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/national");

/// Creates or upgrades the national schema and the audit schema it writes to.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    xueji_audit::migrate(pool).await?;
    xueji_db::migrate_schema(pool, SCHEMA, &MIGRATOR).await
}

/// An application as the national authority holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct NationalApplication {
    pub id: String,
    pub province: String,
    pub profile: Profile,
    pub open_from: NaiveDate,
    pub filed_by: String,
    /// submitted, approved or rejected.
    pub status: String,
    pub code: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub cursor: i64,
    pub application_id: String,
    pub status: String,
    pub code: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineageKind {
    Merge,
    CategoryChange,
}

impl LineageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineageKind::Merge => "merge",
            LineageKind::CategoryChange => "category_change",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineageLink {
    pub predecessor: String,
    pub successor: String,
    pub kind: String,
    pub effective_date: NaiveDate,
}

/// One change of the code list, as publications carry it.
/// Changes read at most in one page (a publication of the whole nation's schools has hundreds
/// of thousands; 2000 changes, about a megabyte, stay well inside a 4 MiB message).
pub const CHANGES_PER_PAGE: i64 = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The change's place in the registry's history (a cursor for paged reads).
    pub id: i64,
    pub version: i64,
    pub kind: String,
    pub code: String,
    pub school: SchoolRecord,
    pub predecessors: Vec<String>,
    pub effective_date: NaiveDate,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub version: i64,
    pub published_at: DateTime<Utc>,
    pub note: String,
    pub changes: Vec<Change>,
    /// Whether `changes` ends with the publication's last change (a large publication is read
    /// in pages).
    pub complete: bool,
}

/// A merger as asked for, checked.
#[derive(Debug, Clone)]
pub struct Merger {
    pub predecessors: Vec<SchoolCode>,
    pub merged: Profile,
    pub keep: Option<SchoolCode>,
    pub effective_date: NaiveDate,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct NationalStore {
    pool: PgPool,
}

super::school_lookups!(NationalStore);

impl NationalStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    // ---- reads ----

    pub async fn school(&self, code: &str) -> Result<Option<SchoolRecord>, SchoolsError> {
        let mut conn = self.pool.acquire().await?;
        load_school(&mut conn, code).await
    }

    pub async fn schools(&self, filter: &SchoolFilter) -> Result<Vec<SchoolRecord>, SchoolsError> {
        let rows = sqlx::query_as!(
            SchoolRow,
            r#"SELECT s.code, profile AS "profile!", status, open_from, open_until,
                      former_names AS "former_names!", replaced_on AS "replaced_on!",
                      successors AS "successors!"
               FROM schools_national.schools s
               CROSS JOIN LATERAL schools_national.school_extras(s) AS x
               WHERE s.division LIKE $1 || '%'
                 AND ($2::text IS NULL OR s.code = $2)
                 AND ($3 = '' OR s.name LIKE '%' || $3 || '%')
                 AND ($4::text IS NULL OR s.category = $4)
                 AND ($5 OR s.status = 'open')
                 AND s.code > $6
               ORDER BY s.code
               LIMIT $7"#,
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
        rows.into_iter()
            .map(|row| row.into_record().map_err(SchoolsError::from))
            .collect()
    }

    /// Every lineage link of `code`'s family: its predecessors, successors and their other
    /// predecessors and successors, transitively.
    pub async fn lineage(&self, code: &str) -> Result<Vec<LineageLink>, SchoolsError> {
        Ok(sqlx::query_as!(
            LineageLink,
            r#"WITH RECURSIVE family(code) AS (
                   SELECT $1::text
                   UNION
                   SELECT CASE WHEN l.predecessor = f.code THEN l.successor ELSE l.predecessor END
                   FROM schools_national.lineage l
                   JOIN family f ON l.predecessor = f.code OR l.successor = f.code
               )
               SELECT predecessor, successor, kind, effective_date
               FROM schools_national.lineage
               WHERE predecessor IN (SELECT code FROM family)
               ORDER BY effective_date, predecessor, successor"#,
            code
        )
        .fetch_all(&self.pool)
        .await?)
    }

    // ---- applications ----

    // ---- lifecycle ----

    // ---- publications ----
}
