//! The registrar's desk: the queue of pending registrations and the search by what a parent
//! says on the phone. Both read inside a scope (county-level divisions, or one school) the
//! caller's jurisdiction allows.

use chrono::NaiveDate;

use super::{Store, reads::StudentRecord};
use crate::IdentityError;

/// What narrows the queue, beyond the scope.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub grade: Option<i16>,
    /// Registered on or after this day (China time).
    pub from: Option<NaiveDate>,
    /// Registered on or before this day (China time).
    pub until: Option<NaiveDate>,
}

/// How many wait at one school in one grade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCount {
    pub school_code: String,
    pub grade: i16,
    pub pending: i64,
}

/// What a search matches; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct SearchCriteria {
    pub name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    /// A guardian's name or phone number.
    pub guardian: Option<String>,
    /// Consecutive characters of the document number.
    pub document_part: Option<String>,
}

impl Store {
    /// One page of pending registrations in scope, oldest first, after student `after_id`.
    pub async fn pending_registrations(
        &self,
        counties: &[String],
        school: Option<&str>,
        filter: &QueueFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StudentRecord>, IdentityError> {
        let ids = sqlx::query_scalar!(
            "SELECT e.student_id FROM identity.enrollments e
             JOIN identity.students s ON s.id = e.student_id
             WHERE e.is_current AND e.status = 'pending'
               AND (e.school_division = ANY($1) OR e.school_code = $2)
               AND ($3::smallint IS NULL OR e.grade = $3)
               AND ($4::date IS NULL OR (s.registered_at AT TIME ZONE 'Asia/Shanghai')::date >= $4)
               AND ($5::date IS NULL OR (s.registered_at AT TIME ZONE 'Asia/Shanghai')::date <= $5)
               AND e.student_id > $6
             ORDER BY e.student_id LIMIT $7",
            counties,
            school,
            filter.grade,
            filter.from,
            filter.until,
            after_id,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        let mut records = self.students(&ids).await?;
        records.sort_by_key(|record| record.id);
        Ok(records)
    }

    /// How many registrations in scope wait, by school and grade, over the whole filter.
    pub async fn pending_counts(
        &self,
        counties: &[String],
        school: Option<&str>,
        filter: &QueueFilter,
    ) -> Result<Vec<PendingCount>, IdentityError> {
        let rows = sqlx::query!(
            r#"SELECT e.school_code AS "school_code!", e.grade AS "grade!",
                      count(*) AS "pending!"
               FROM identity.enrollments e
               JOIN identity.students s ON s.id = e.student_id
               WHERE e.is_current AND e.status = 'pending'
                 AND (e.school_division = ANY($1) OR e.school_code = $2)
                 AND ($3::smallint IS NULL OR e.grade = $3)
                 AND ($4::date IS NULL OR (s.registered_at AT TIME ZONE 'Asia/Shanghai')::date >= $4)
                 AND ($5::date IS NULL OR (s.registered_at AT TIME ZONE 'Asia/Shanghai')::date <= $5)
               GROUP BY e.school_code, e.grade
               ORDER BY e.school_code, e.grade"#,
            counties,
            school,
            filter.grade,
            filter.from,
            filter.until,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| PendingCount {
                school_code: row.school_code,
                grade: row.grade,
                pending: row.pending,
            })
            .collect())
    }

    /// One page of live students in scope matching every criterion given, by registry number,
    /// after `after` (a registry number).
    pub async fn search_students(
        &self,
        counties: &[String],
        school: Option<&str>,
        criteria: &SearchCriteria,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StudentRecord>, IdentityError> {
        let part = criteria
            .document_part
            .as_ref()
            .map(|part| format!("%{part}%"));
        let ids = sqlx::query_scalar!(
            "SELECT s.id FROM identity.students s
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE e.status NOT IN ('rejected', 'deleted')
               AND (e.school_division = ANY($1) OR e.school_code = $2)
               AND ($3::text IS NULL OR s.name = $3)
               AND ($4::date IS NULL OR s.birth_date = $4)
               AND ($5::text IS NULL OR s.guardian->>'name' = $5 OR s.guardian->>'phone' = $5)
               AND ($6::text IS NULL OR s.document_number LIKE $6)
               AND s.registry_number > $7
             ORDER BY s.registry_number LIMIT $8",
            counties,
            school,
            criteria.name.as_deref(),
            criteria.birth_date,
            criteria.guardian.as_deref(),
            part.as_deref(),
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        self.students(&ids).await
    }
}
