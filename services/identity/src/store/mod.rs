//! All SQL of the identity service, one room per use: `registration` (the group-committed
//! insert), `decisions` (approval, rejection, issuing numbers), `reads` (students, problems),
//! `transfers`/`moves` (the enrollment side of transfers), `outbox` (messages to the national
//! node). Every query is checked against the schema at compile time (offline data in the
//! workspace's `.sqlx/`).

use sqlx::PgPool;
use sqlx::types::Json;
use xueji_auth::Caller;
use xueji_codes::{SchoolCode, StageOffered};

mod certificates;
mod classes;
mod corrections;
mod cycle;
mod decisions;
mod details;
mod feed;
mod history;
mod id_number_scan;
pub mod imports;
pub mod migration;
pub mod moves;
pub mod outbox;
mod progression;
mod promotion;
pub mod queue;
mod reads;
mod registration;
mod resolutions;
mod status_changes;
mod successions;
mod synthetic;
pub mod transfers;
pub mod watch;

pub use certificates::CertificateRecord;
pub use classes::{CarryPlan, ClassRecord, NewClass, Seat};
pub use corrections::{Collision, CorrectionCheck};
pub use cycle::{BatchDone, CyclePreview, CycleStepRun};
pub use decisions::Approval;
pub use details::{DetailOutcome, DetailUpdateRecord};
pub use history::HistorySources;
pub use progression::ContinueOutcome;
pub(crate) use reads::unknown;
pub use reads::{NationalFlag, PartnerRecord, StudentRecord};
pub use registration::{BatchRegistration, RegisterOutcome};
pub(crate) use status_changes::hex;
pub use status_changes::{ChangeRecord, EvidenceFile, NewChange, OpenOutcome};

use crate::{
    IdentityError,
    domain::{School, SchoolWorkload, school_year},
};

fn grades(grades: Vec<u32>) -> Vec<i16> {
    grades.into_iter().map(|g| g as i16).collect()
}

pub const SCHEMA: &str = "identity";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or upgrades the identity schema and the audit schema it writes to.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    xueji_audit::migrate(pool).await?;
    xueji_db::migrate_schema(pool, SCHEMA, &MIGRATOR).await
}

/// Who changes something and under which request, for the audit entry.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub caller: &'a Caller,
    pub request_id: &'a str,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Adds or updates a school in this node's directory.
    pub async fn upsert_school(&self, school: &School) -> Result<(), IdentityError> {
        sqlx::query!(
            "INSERT INTO identity.schools
                 (code, name, division, registry_authority, open_from, open_until, stages,
                  graduating_grades, confirmed_grades)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, division = excluded.division,
                 registry_authority = excluded.registry_authority,
                 open_from = excluded.open_from, open_until = excluded.open_until,
                 stages = excluded.stages, graduating_grades = excluded.graduating_grades,
                 confirmed_grades = excluded.confirmed_grades",
            school.code.as_str(),
            school.name,
            school.division.as_str(),
            school.registry_authority.as_str(),
            school.open_from,
            school.open_until,
            Json(&school.stages) as _,
            &grades(school_year::graduating_grades(&school.stages)),
            &grades(school_year::confirmed_grades(&school.stages)),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What still ties a school to students: its current enrollments by state and the
    /// unfinished tasks of those students.
    pub async fn school_workload(
        &self,
        code: &SchoolCode,
    ) -> Result<SchoolWorkload, IdentityError> {
        let row = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE e.status = 'active') AS "active!",
                      count(*) FILTER (WHERE e.status IN ('pending', 'awaiting_national_check'))
                          AS "pending!",
                      count(*) FILTER (WHERE e.status = 'suspended') AS "suspended!",
                      count(t.task_id) AS "tasks!"
               FROM identity.enrollments e
               LEFT JOIN identity.pending_tasks t ON t.student_id = e.student_id
               WHERE e.school_code = $1 AND e.is_current"#,
            code.as_str()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(SchoolWorkload {
            active_enrollments: row.active as u64,
            pending_registrations: row.pending as u64,
            suspended_enrollments: row.suspended as u64,
            pending_tasks: row.tasks as u64,
        })
    }

    pub async fn school(&self, code: &SchoolCode) -> Result<Option<School>, IdentityError> {
        let row = sqlx::query!(
            r#"SELECT code, name, division, registry_authority, open_from, open_until,
                      stages AS "stages: Json<Vec<StageOffered>>"
               FROM identity.schools WHERE code = $1"#,
            code.as_str()
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(School {
            code: row
                .code
                .parse()
                .map_err(|_| unknown("school code", &row.code))?,
            name: row.name,
            division: row
                .division
                .parse()
                .map_err(|_| unknown("division", &row.division))?,
            registry_authority: row
                .registry_authority
                .parse()
                .map_err(|_| unknown("registry authority", &row.registry_authority))?,
            open_from: row.open_from,
            open_until: row.open_until,
            stages: row.stages.0,
        }))
    }

    /// Row counts of the service's tables, for tests and operators.
    pub async fn counts(&self) -> Result<(i64, i64, i64), IdentityError> {
        let row = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM identity.students) AS "students!",
                      (SELECT count(*) FROM identity.enrollments) AS "enrollments!",
                      (SELECT count(*) FROM audit.entries) AS "audit!""#
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.students, row.enrollments, row.audit))
    }
}
