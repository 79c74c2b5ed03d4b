//! Resident ID numbers checked after they were stored: the records whose number fails the
//! rules registration applies become `invalid_id_number` problems (`id_number_problems`).

use chrono::{DateTime, Utc};
use xueji_audit::Entry;

use super::{Actor, Store};
use crate::IdentityError;

/// A stored resident ID number, to be checked.
#[derive(Debug, Clone)]
pub struct StoredIdNumber {
    pub student_id: i64,
    pub id_number: String,
}

/// An open invalid-ID problem, as the problem list shows it.
#[derive(Debug, Clone)]
pub struct InvalidIdProblem {
    pub student_id: i64,
    pub registry_number: String,
    pub name: String,
    pub school_code: String,
    pub detail: String,
    pub found_at: DateTime<Utc>,
}

impl Store {
    /// Up to `limit` live records holding a resident ID number, after student `after`.
    pub async fn stored_id_numbers(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredIdNumber>, IdentityError> {
        let rows = sqlx::query!(
            r#"SELECT s.id, s.document_number AS "document_number!"
               FROM identity.students s
               JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
               WHERE s.id > $1 AND s.document_type = 'resident_id_card'
                 AND s.document_number IS NOT NULL
                 AND e.status NOT IN ('rejected', 'deleted')
               ORDER BY s.id LIMIT $2"#,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredIdNumber {
                student_id: row.id,
                id_number: row.document_number,
            })
            .collect())
    }

    /// Records the invalid ID numbers found (student, why); answers how many were new.
    pub async fn add_id_number_problems(
        &self,
        found: &[(i64, String)],
    ) -> Result<u64, IdentityError> {
        let (students, details): (Vec<i64>, Vec<String>) = found.iter().cloned().unzip();
        Ok(sqlx::query!(
            "INSERT INTO identity.id_number_problems (student_id, detail)
             SELECT * FROM unnest($1::bigint[], $2::text[])
             ON CONFLICT (student_id) DO NOTHING",
            &students,
            &details
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Audits a finished scan and answers the problems open after it.
    pub async fn finish_id_number_scan(
        &self,
        checked: u64,
        found: u64,
        actor: Actor<'_>,
    ) -> Result<u64, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let open =
            sqlx::query_scalar!(r#"SELECT count(*) AS "open!" FROM identity.id_number_problems"#)
                .fetch_one(&mut *tx)
                .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.scan_id_numbers",
                object: "id_numbers",
                before: None,
                after: Some(serde_json::json!({
                    "checked": checked, "found": found, "open": open
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(open as u64)
    }

    /// Open invalid-ID problems in the counties or at the school, after student `after`.
    pub async fn invalid_id_problems(
        &self,
        counties: &[String],
        school: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<InvalidIdProblem>, IdentityError> {
        Ok(sqlx::query_as!(
            InvalidIdProblem,
            "SELECT p.student_id, s.registry_number, s.name, e.school_code, p.detail, p.found_at
             FROM identity.id_number_problems p
             JOIN identity.students s ON s.id = p.student_id
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE (e.school_division = ANY($1) OR e.school_code = $2) AND p.student_id > $3
               AND e.status <> 'deleted'
             ORDER BY p.student_id LIMIT $4",
            counties,
            school,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
