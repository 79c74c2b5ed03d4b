//! The national authority's tables (schema `schools_national`): issued codes, their lifecycle,
//! applications from the provinces, and the publications.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use xueji_codes::{SchoolCategory, SchoolCode};

use super::{Actor, SchoolFilter, SchoolRow, audit};
use crate::{
    SchoolsError,
    domain::{self, Profile, SchoolRecord, SchoolStatus, StageOffered, Step},
};

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

    /// Records an application a province submitted; a retry with the same id returns what is
    /// held, and a different application under a known id is refused.
    pub async fn submit(
        &self,
        application: &NationalApplication,
        actor: &Actor,
    ) -> Result<NationalApplication, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let profile = serde_json::to_value(&application.profile).expect("serializable");
        let inserted = sqlx::query_scalar!(
            "INSERT INTO schools_national.applications (id, province, profile, open_from, filed_by, status)
             VALUES ($1, $2, $3, $4, $5, 'submitted')
             ON CONFLICT (id) DO NOTHING
             RETURNING id",
            application.id,
            application.province,
            profile,
            application.open_from,
            application.filed_by,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_some() {
            audit(
                &mut tx,
                actor,
                "schools.submit_application",
                &format!("application:{}", application.id),
                None,
                Some(serde_json::json!({ "profile": profile, "open_from": application.open_from })),
            )
            .await?;
        }
        let held = fetch_application(&mut tx, &application.id)
            .await?
            .expect("inserted or already there");
        tx.commit().await?;
        if held.profile != application.profile || held.open_from != application.open_from {
            return Err(SchoolsError::AlreadyExists {
                field: "application.id",
                message: format!(
                    "application {} was submitted before with different content",
                    application.id
                ),
            });
        }
        Ok(held)
    }

    pub async fn application(&self, id: &str) -> Result<Option<NationalApplication>, SchoolsError> {
        let mut conn = self.pool.acquire().await?;
        fetch_application(&mut conn, id).await
    }

    /// Applications waiting for a decision, oldest first, after the one with id `after`, at
    /// most `limit`.
    pub async fn submitted_applications(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<NationalApplication>, SchoolsError> {
        let mut conn = self.pool.acquire().await?;
        fetch_applications(&mut conn, None, Some("submitted"), after, limit).await
    }

    /// Approves an application and issues the next code of its (category, province). Approving
    /// an approved application returns its school.
    pub async fn approve(&self, id: &str, actor: &Actor) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let application = lock_application(&mut tx, id).await?;
        match application.status.as_str() {
            "approved" => {
                let code = application.code.unwrap_or_default();
                return load_school(&mut tx, &code)
                    .await?
                    .ok_or_else(|| SchoolsError::NotFound(format!("school {code}")));
            }
            "rejected" => {
                return Err(SchoolsError::FailedPrecondition(format!(
                    "application {id} was rejected: {}",
                    application.reason.unwrap_or_default()
                )));
            }
            _ => {}
        }
        let code = allocate_code(
            &mut tx,
            application.profile.category,
            application.profile.province(),
        )
        .await?;
        insert_school(
            &mut tx,
            &code,
            &application.profile,
            application.open_from,
            Some(id),
        )
        .await?;
        let school = record_change(
            &mut tx,
            "added",
            &code,
            &[],
            application.open_from,
            &format!("application {id} approved"),
        )
        .await?;
        sqlx::query!(
            "UPDATE schools_national.applications
             SET status = 'approved', code = $2, decided_by = $3, decided_at = now(),
                 decision_cursor = nextval('schools_national.decision_cursor')
             WHERE id = $1",
            id,
            code.as_str(),
            actor.caller.describe(),
        )
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            "schools.approve_application",
            &format!("school:{code}"),
            Some(serde_json::json!({ "application": id, "status": "submitted" })),
            Some(serde_json::to_value(&school).expect("serializable")),
        )
        .await?;
        tx.commit().await?;
        Ok(school)
    }

    pub async fn reject(
        &self,
        id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<NationalApplication, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let application = lock_application(&mut tx, id).await?;
        match application.status.as_str() {
            "rejected" => return Ok(application),
            "approved" => {
                return Err(SchoolsError::FailedPrecondition(format!(
                    "application {id} was approved (code {}); close the school instead",
                    application.code.unwrap_or_default()
                )));
            }
            _ => {}
        }
        sqlx::query!(
            "UPDATE schools_national.applications
             SET status = 'rejected', reason = $2, decided_by = $3, decided_at = now(),
                 decision_cursor = nextval('schools_national.decision_cursor')
             WHERE id = $1",
            id,
            reason,
            actor.caller.describe(),
        )
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            "schools.reject_application",
            &format!("application:{id}"),
            Some(serde_json::json!({ "status": "submitted" })),
            Some(serde_json::json!({ "status": "rejected", "reason": reason })),
        )
        .await?;
        let rejected = fetch_application(&mut tx, id).await?.expect("locked above");
        tx.commit().await?;
        Ok(rejected)
    }

    pub async fn decisions(
        &self,
        province: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Decision>, SchoolsError> {
        Ok(sqlx::query_as!(
            Decision,
            r#"SELECT decision_cursor AS "cursor!", id AS application_id, status, code, reason
               FROM schools_national.applications
               WHERE province = $1 AND decision_cursor > $2
               ORDER BY decision_cursor LIMIT $3"#,
            province,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    // ---- lifecycle ----

    /// Loads existing schools (the seed, a migration from an older registry). A school that
    /// already has a code keeps it, and its (category, province) sequence moves past it; the
    /// others get the next code, as an approval would give it.
    pub async fn import_existing(
        &self,
        schools: &[(Option<SchoolCode>, Profile, NaiveDate)],
        actor: &Actor,
    ) -> Result<Vec<SchoolRecord>, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let mut imported = Vec::new();
        for (existing, profile, open_from) in schools {
            let code = match existing {
                Some(code) => {
                    if code.category() != profile.category
                        || code.province_digits() != profile.province()
                    {
                        return Err(SchoolsError::invalid(
                            "code",
                            format!(
                                "{code} does not match category {} in province {}",
                                profile.category.digits(),
                                profile.province()
                            ),
                        ));
                    }
                    sqlx::query!(
                        "INSERT INTO schools_national.code_sequences (category, province, last_value)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (category, province) DO UPDATE
                             SET last_value = greatest(schools_national.code_sequences.last_value,
                                                       excluded.last_value)",
                        profile.category.digits(),
                        profile.province(),
                        code.sequence() as i32,
                    )
                    .execute(&mut *tx)
                    .await?;
                    code.clone()
                }
                None => allocate_code(&mut tx, profile.category, profile.province()).await?,
            };
            insert_school(&mut tx, &code, profile, *open_from, None).await?;
            let school =
                record_change(&mut tx, "added", &code, &[], *open_from, "existing school").await?;
            audit(
                &mut tx,
                actor,
                "schools.import_school",
                &format!("school:{code}"),
                None,
                Some(serde_json::to_value(&school).expect("serializable")),
            )
            .await?;
            imported.push(school);
        }
        tx.commit().await?;
        Ok(imported)
    }

    /// How many codes were ever issued.
    pub async fn issued_codes(&self) -> Result<i64, SchoolsError> {
        Ok(
            sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM schools_national.schools"#)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn rename(
        &self,
        code: &SchoolCode,
        new_name: &str,
        effective_date: NaiveDate,
        reason: &str,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_school(&mut tx, code).await?;
        if domain::rename(&before, new_name)? == Step::AlreadyDone {
            return Ok(before);
        }
        keep_former_name(&mut tx, code, &before.profile.name, effective_date).await?;
        sqlx::query!(
            "UPDATE schools_national.schools SET name = $2 WHERE code = $1",
            code.as_str(),
            new_name
        )
        .execute(&mut *tx)
        .await?;
        let after = record_change(&mut tx, "renamed", code, &[], effective_date, reason).await?;
        audit_lifecycle(&mut tx, actor, "schools.rename_school", &before, &after).await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn merge(
        &self,
        merger: &Merger,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let mut codes: Vec<&SchoolCode> = merger.predecessors.iter().collect();
        codes.sort();
        codes.dedup();
        let mut predecessors = Vec::new();
        for code in codes {
            predecessors.push(lock_school(&mut tx, code).await?);
        }
        if let Some(done) = earlier_merger(&mut tx, &predecessors).await? {
            return Ok(done);
        }
        let kept = domain::merged_code(&predecessors, &merger.merged, merger.keep.as_ref())?;
        let successor = match &kept {
            Some(code) => {
                let before = predecessors
                    .iter()
                    .find(|p| &p.code == code)
                    .expect("kept code is a predecessor");
                if before.profile.name != merger.merged.name {
                    keep_former_name(&mut tx, code, &before.profile.name, merger.effective_date)
                        .await?;
                }
                update_profile(&mut tx, code, &merger.merged).await?;
                code.clone()
            }
            None => {
                let code = allocate_code(&mut tx, merger.merged.category, merger.merged.province())
                    .await?;
                insert_school(&mut tx, &code, &merger.merged, merger.effective_date, None).await?;
                record_change(
                    &mut tx,
                    "added",
                    &code,
                    &[],
                    merger.effective_date,
                    &merger.reason,
                )
                .await?;
                code
            }
        };
        for predecessor in predecessors.iter().filter(|p| p.code != successor) {
            void(
                &mut tx,
                &predecessor.code,
                &successor,
                LineageKind::Merge,
                merger.effective_date,
                &merger.reason,
            )
            .await?;
        }
        let names: Vec<String> = predecessors.iter().map(|p| p.code.to_string()).collect();
        let merged = record_change(
            &mut tx,
            "merged",
            &successor,
            &names,
            merger.effective_date,
            &merger.reason,
        )
        .await?;
        audit(
            &mut tx,
            actor,
            "schools.merge_schools",
            &format!("school:{successor}"),
            Some(serde_json::to_value(&predecessors).expect("serializable")),
            Some(serde_json::to_value(&merged).expect("serializable")),
        )
        .await?;
        tx.commit().await?;
        Ok(merged)
    }

    pub async fn change_category(
        &self,
        code: &SchoolCode,
        category: SchoolCategory,
        stages: &[StageOffered],
        effective_date: NaiveDate,
        reason: &str,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_school(&mut tx, code).await?;
        if domain::change_category(&before, category)? == Step::AlreadyDone {
            let successor = before
                .successors
                .iter()
                .find(|s| s.category() == category)
                .expect("checked by the domain");
            return load_school(&mut tx, successor.as_str())
                .await?
                .ok_or_else(|| SchoolsError::NotFound(format!("school {successor}")));
        }
        let profile = Profile {
            category,
            stages: stages.to_vec(),
            ..before.profile.clone()
        };
        let new_code = allocate_code(&mut tx, category, profile.province()).await?;
        insert_school(&mut tx, &new_code, &profile, effective_date, None).await?;
        let after = record_change(&mut tx, "added", &new_code, &[], effective_date, reason).await?;
        void(
            &mut tx,
            code,
            &new_code,
            LineageKind::CategoryChange,
            effective_date,
            reason,
        )
        .await?;
        audit_lifecycle(&mut tx, actor, "schools.change_category", &before, &after).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Closes a school whose workload the caller has checked. `check` runs on the locked
    /// record, so a retry on a closed school answers without asking anyone.
    pub async fn close(
        &self,
        code: &SchoolCode,
        effective_date: NaiveDate,
        reason: &str,
        workload: Option<domain::Workload>,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_school(&mut tx, code).await?;
        if domain::close(&before, workload)? == Step::AlreadyDone {
            return Ok(before);
        }
        if effective_date < before.open_from {
            return Err(SchoolsError::invalid(
                "effective_date",
                format!("is before the school opened ({})", before.open_from),
            ));
        }
        sqlx::query!(
            "UPDATE schools_national.schools SET status = 'closed', open_until = $2 WHERE code = $1",
            code.as_str(),
            effective_date
        )
        .execute(&mut *tx)
        .await?;
        let after = record_change(&mut tx, "voided", code, &[], effective_date, reason).await?;
        audit_lifecycle(&mut tx, actor, "schools.close_school", &before, &after).await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn reopen(
        &self,
        code: &SchoolCode,
        effective_date: NaiveDate,
        reason: &str,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_school(&mut tx, code).await?;
        if domain::reopen(&before)? == Step::AlreadyDone {
            return Ok(before);
        }
        sqlx::query!(
            "UPDATE schools_national.schools SET status = 'open', open_until = NULL WHERE code = $1",
            code.as_str()
        )
        .execute(&mut *tx)
        .await?;
        let after = record_change(&mut tx, "reopened", code, &[], effective_date, reason).await?;
        audit_lifecycle(&mut tx, actor, "schools.reopen_school", &before, &after).await?;
        tx.commit().await?;
        Ok(after)
    }

    // ---- publications ----

    /// Publishes every unpublished change as the next version; `None` when there is nothing to
    /// publish.
    pub async fn publish(
        &self,
        note: &str,
        actor: &Actor,
    ) -> Result<Option<Publication>, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        // One publisher at a time; versions are consecutive.
        sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('schools_national.publish'))")
            .execute(&mut *tx)
            .await?;
        let version = sqlx::query_scalar!(
            r#"SELECT coalesce(max(version), 0) + 1 AS "version!" FROM schools_national.publications"#
        )
        .fetch_one(&mut *tx)
        .await?;
        let taken = sqlx::query!(
            "UPDATE schools_national.changes SET version = $1 WHERE version IS NULL",
            version
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        sqlx::query!(
            "INSERT INTO schools_national.publications (version, note, changes) VALUES ($1, $2, $3)",
            version,
            note,
            taken as i32
        )
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            "schools.publish",
            &format!("publication:{version}"),
            None,
            Some(serde_json::json!({ "version": version, "changes": taken, "note": note })),
        )
        .await?;
        tx.commit().await?;
        // The answer carries the first page of a large publication (`complete` false); the rest
        // is read with ListPublications.
        Ok(self
            .publications(version - 1, 0, 1, CHANGES_PER_PAGE)
            .await?
            .into_iter()
            .next())
    }

    pub async fn latest_version(&self) -> Result<i64, SchoolsError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT coalesce(max(version), 0) AS "version!" FROM schools_national.publications"#
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Publications after `after_version`, oldest first, with their changes: at most
    /// `limit` publications and `max_changes` changes in all, the first continuing after change
    /// `after_change` (0: from its start). A publication cut short comes last, not complete.
    pub async fn publications(
        &self,
        after_version: i64,
        after_change: i64,
        limit: i64,
        max_changes: i64,
    ) -> Result<Vec<Publication>, SchoolsError> {
        let heads = sqlx::query!(
            "SELECT version, published_at, note FROM schools_national.publications
             WHERE version > $1 ORDER BY version LIMIT $2",
            after_version,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        let Some(last) = heads.last() else {
            return Ok(Vec::new());
        };
        let mut changes = self
            .changes_page(after_version, last.version, after_change, max_changes + 1)
            .await?;
        let cut = changes.len() as i64 > max_changes;
        changes.truncate(max_changes as usize);
        let cut_version = cut.then(|| changes.last().map(|c| c.version)).flatten();
        let mut publications = Vec::new();
        for head in heads {
            if cut_version.is_some_and(|version| head.version > version) {
                break;
            }
            let split = changes
                .iter()
                .position(|c| c.version != head.version)
                .unwrap_or(changes.len());
            let rest = changes.split_off(split);
            publications.push(Publication {
                version: head.version,
                published_at: head.published_at,
                note: head.note,
                changes: std::mem::replace(&mut changes, rest),
                complete: cut_version != Some(head.version),
            });
        }
        Ok(publications)
    }

    /// The changes of versions `from + 1 ..= to`, in order, after change `after_change` (0:
    /// all), at most `limit`. Change ids grow with versions (a publication takes every change
    /// recorded before it), so one id is a cursor across versions.
    pub async fn changes_page(
        &self,
        from: i64,
        to: i64,
        after_change: i64,
        limit: i64,
    ) -> Result<Vec<Change>, SchoolsError> {
        let rows = sqlx::query!(
            r#"SELECT id, version AS "version!", kind, code, school, predecessors, effective_date,
                      reason
               FROM schools_national.changes
               WHERE version > $1 AND version <= $2 AND id > $3
               ORDER BY version, id
               LIMIT $4"#,
            from,
            to,
            after_change,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Change {
                    id: row.id,
                    version: row.version,
                    kind: row.kind,
                    school: serde_json::from_value(row.school).map_err(|e| {
                        sqlx::Error::Decode(format!("change of {}: {e}", row.code).into())
                    })?,
                    code: row.code,
                    predecessors: row.predecessors,
                    effective_date: row.effective_date,
                    reason: row.reason,
                })
            })
            .collect()
    }
}

async fn load_school(
    conn: &mut PgConnection,
    code: &str,
) -> Result<Option<SchoolRecord>, SchoolsError> {
    let row = sqlx::query_as!(
        SchoolRow,
        r#"SELECT s.code, profile AS "profile!", status, open_from, open_until,
                  former_names AS "former_names!", replaced_on AS "replaced_on!",
                  successors AS "successors!"
           FROM schools_national.schools s
           CROSS JOIN LATERAL schools_national.school_extras(s) AS x
           WHERE s.code = $1"#,
        code
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(SchoolRow::into_record).transpose()?)
}

/// Locks a school for a lifecycle step; unknown codes are NOT_FOUND.
async fn lock_school(
    conn: &mut PgConnection,
    code: &SchoolCode,
) -> Result<SchoolRecord, SchoolsError> {
    let locked = sqlx::query_scalar!(
        "SELECT code FROM schools_national.schools WHERE code = $1 FOR UPDATE",
        code.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    if locked.is_none() {
        return Err(SchoolsError::NotFound(format!("school {code}")));
    }
    load_school(conn, code.as_str())
        .await?
        .ok_or_else(|| SchoolsError::NotFound(format!("school {code}")))
}

/// The school an earlier, identical merger produced, when these predecessors were already
/// merged (a retry).
async fn earlier_merger(
    conn: &mut PgConnection,
    predecessors: &[SchoolRecord],
) -> Result<Option<SchoolRecord>, SchoolsError> {
    let voided: Vec<&SchoolRecord> = predecessors
        .iter()
        .filter(|p| p.status == SchoolStatus::Voided)
        .collect();
    let Some(first) = voided.first() else {
        return Ok(None);
    };
    let Some(successor) = first.successors.first() else {
        return Ok(None);
    };
    let all_into_successor = predecessors
        .iter()
        .all(|p| &p.code == successor || p.successors.contains(successor));
    if !all_into_successor {
        return Ok(None);
    }
    load_school(conn, successor.as_str()).await
}

async fn allocate_code(
    conn: &mut PgConnection,
    category: SchoolCategory,
    province: &str,
) -> Result<SchoolCode, SchoolsError> {
    let sequence = sqlx::query_scalar!(
        "INSERT INTO schools_national.code_sequences (category, province, last_value)
         VALUES ($1, $2, 1)
         ON CONFLICT (category, province)
             DO UPDATE SET last_value = schools_national.code_sequences.last_value + 1
         RETURNING last_value",
        category.digits(),
        province
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.is_check_violation() => {
            SchoolsError::FailedPrecondition(format!(
                "all 999999 codes of category {} in province {province} are issued",
                category.digits()
            ))
        }
        _ => SchoolsError::Database(error),
    })?;
    Ok(domain::make_code(category, province, sequence as u32))
}

async fn insert_school(
    conn: &mut PgConnection,
    code: &SchoolCode,
    profile: &Profile,
    open_from: NaiveDate,
    application_id: Option<&str>,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "INSERT INTO schools_national.schools
             (code, name, category, province, stages, division, registry_authority, operator_type,
              address, township, status, open_from, application_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12)",
        code.as_str(),
        profile.name,
        profile.category.digits(),
        profile.province(),
        serde_json::to_value(&profile.stages).expect("serializable"),
        profile.division.as_str(),
        profile.registry_authority.as_str(),
        profile.operator_type.as_str(),
        profile.address,
        profile.township,
        open_from,
        application_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Remembers the name a school had until `replaced_on`.
async fn keep_former_name(
    conn: &mut PgConnection,
    code: &SchoolCode,
    name: &str,
    replaced_on: NaiveDate,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "INSERT INTO schools_national.former_names (code, name, replaced_on) VALUES ($1, $2, $3)",
        code.as_str(),
        name,
        replaced_on,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn update_profile(
    conn: &mut PgConnection,
    code: &SchoolCode,
    profile: &Profile,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "UPDATE schools_national.schools
         SET name = $2, stages = $3, division = $4, registry_authority = $5, operator_type = $6,
             address = $7, township = $8
         WHERE code = $1",
        code.as_str(),
        profile.name,
        serde_json::to_value(&profile.stages).expect("serializable"),
        profile.division.as_str(),
        profile.registry_authority.as_str(),
        profile.operator_type.as_str(),
        profile.address,
        profile.township,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Voids a code for ever and links it to the school that carries on.
async fn void(
    conn: &mut PgConnection,
    code: &SchoolCode,
    successor: &SchoolCode,
    kind: LineageKind,
    effective_date: NaiveDate,
    reason: &str,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "UPDATE schools_national.schools SET status = 'voided', open_until = $2 WHERE code = $1",
        code.as_str(),
        effective_date
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO schools_national.lineage (predecessor, successor, kind, effective_date)
         VALUES ($1, $2, $3, $4)",
        code.as_str(),
        successor.as_str(),
        kind.as_str(),
        effective_date
    )
    .execute(&mut *conn)
    .await?;
    record_change(conn, "voided", code, &[], effective_date, reason).await?;
    Ok(())
}

/// Appends a change carrying the school as it now stands, and returns that school.
async fn record_change(
    conn: &mut PgConnection,
    kind: &str,
    code: &SchoolCode,
    predecessors: &[String],
    effective_date: NaiveDate,
    reason: &str,
) -> Result<SchoolRecord, SchoolsError> {
    let school = load_school(conn, code.as_str())
        .await?
        .ok_or_else(|| SchoolsError::NotFound(format!("school {code}")))?;
    sqlx::query!(
        "INSERT INTO schools_national.changes (kind, code, school, predecessors, effective_date, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
        kind,
        code.as_str(),
        serde_json::to_value(&school).expect("serializable"),
        predecessors,
        effective_date,
        reason,
    )
    .execute(&mut *conn)
    .await?;
    Ok(school)
}

async fn audit_lifecycle(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    before: &SchoolRecord,
    after: &SchoolRecord,
) -> Result<(), SchoolsError> {
    audit(
        conn,
        actor,
        action,
        &format!("school:{}", before.code),
        Some(serde_json::to_value(before).expect("serializable")),
        Some(serde_json::to_value(after).expect("serializable")),
    )
    .await?;
    Ok(())
}

async fn fetch_application(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<NationalApplication>, SchoolsError> {
    Ok(fetch_applications(conn, Some(id), None, None, 1)
        .await?
        .pop())
}

/// Applications, one or all, optionally of one status, in the order they arrived.
async fn fetch_applications(
    conn: &mut PgConnection,
    id: Option<&str>,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<NationalApplication>, SchoolsError> {
    let rows = sqlx::query!(
        "SELECT id, province, profile, open_from, filed_by, status, code, reason
         FROM schools_national.applications a
         WHERE ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR (a.submitted_at, a.id) >
                (SELECT p.submitted_at, p.id FROM schools_national.applications p WHERE p.id = $3))
         ORDER BY submitted_at, id
         LIMIT $4",
        id,
        status,
        after,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(NationalApplication {
                profile: serde_json::from_value(row.profile).map_err(|e| {
                    sqlx::Error::Decode(
                        format!("application {}: stored profile: {e}", row.id).into(),
                    )
                })?,
                id: row.id,
                province: row.province,
                open_from: row.open_from,
                filed_by: row.filed_by,
                status: row.status,
                code: row.code,
                reason: row.reason,
            })
        })
        .collect()
}

async fn lock_application(
    conn: &mut PgConnection,
    id: &str,
) -> Result<NationalApplication, SchoolsError> {
    let locked = sqlx::query_scalar!(
        "SELECT id FROM schools_national.applications WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if locked.is_none() {
        return Err(SchoolsError::NotFound(format!("application {id}")));
    }
    Ok(fetch_application(conn, id).await?.expect("locked"))
}
