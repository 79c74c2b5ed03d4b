//! Applications the provinces hand over, and the codes the ministry's decisions issue.

use chrono::NaiveDate;
use sqlx::PgConnection;
use xueji_codes::SchoolCode;

use super::writes::{allocate_code, insert_school, load_school, record_change};
use super::*;
use crate::store::{Actor, audit};
use crate::{
    SchoolsError,
    domain::{Profile, SchoolRecord},
};

impl NationalStore {
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
                let code = application.code.ok_or_else(|| {
                    SchoolsError::Internal(format!("application {id} is approved without a code"))
                })?;
                return load_school(&mut tx, &code)
                    .await?
                    .ok_or_else(|| SchoolsError::NotFound(format!("school {code}")));
            }
            "rejected" => {
                return Err(SchoolsError::FailedPrecondition(format!(
                    "application {id} was rejected: {}",
                    application
                        .reason
                        .as_deref()
                        .unwrap_or("no reason was recorded")
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
                let code = application.code.ok_or_else(|| {
                    SchoolsError::Internal(format!("application {id} is approved without a code"))
                })?;
                return Err(SchoolsError::FailedPrecondition(format!(
                    "application {id} was approved (code {code}); close the school instead"
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
