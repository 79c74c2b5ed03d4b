//! Synthetic enrollments for the annual cycle's benchmark and tests: many current, active
//! enrollments spread over given schools and grades, written by one statement each (no
//! students, numbers or audit: promotion reads enrollments and schools only).

use chrono::NaiveDate;

use super::Store;
use crate::IdentityError;

impl Store {
    /// Writes `count` active current enrollments, the i-th at `schools[i % len]` in grade
    /// `grades[i % len]`, for students numbered after the highest existing student id.
    /// Answers the range of enrollment ids written.
    pub async fn insert_synthetic_enrollments(
        &self,
        count: i64,
        schools: &[(String, String, i16)],
        entry_date: NaiveDate,
    ) -> Result<(i64, i64), IdentityError> {
        let codes: Vec<String> = schools.iter().map(|s| s.0.clone()).collect();
        let divisions: Vec<String> = schools.iter().map(|s| s.1.clone()).collect();
        let grades: Vec<i16> = schools.iter().map(|s| s.2).collect();
        let row = sqlx::query!(
            r#"WITH base AS (
                   SELECT coalesce(max(student_id), 0) AS student FROM identity.enrollments
               ), written AS (
                   INSERT INTO identity.enrollments
                       (student_id, school_code, school_division, grade, entry_date,
                        entry_route, status)
                   SELECT base.student + i, ($2::text[])[1 + i % cardinality($2)],
                          ($3::text[])[1 + i % cardinality($3)],
                          ($4::smallint[])[1 + i % cardinality($4)], $5, 'nearby_admission',
                          'active'
                   FROM base, generate_series(1, $1::bigint) AS i
                   RETURNING id
               )
               SELECT min(id) AS "first!", max(id) AS "last!" FROM written"#,
            count,
            &codes,
            &divisions,
            &grades,
            entry_date
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.first, row.last))
    }

    /// Grades of enrollments `(after, upto]` by grade: how many in each, for checks.
    pub async fn grade_counts(
        &self,
        after: i64,
        upto: i64,
    ) -> Result<Vec<(String, i16, i64)>, IdentityError> {
        let rows = sqlx::query!(
            r#"SELECT status AS "status!", grade AS "grade!", count(*) AS "count!"
               FROM identity.enrollments WHERE id > $1 AND id <= $2
               GROUP BY status, grade ORDER BY status, grade"#,
            after,
            upto
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.status, r.grade, r.count))
            .collect())
    }

    /// The baseline of the promotion benchmark: a bare update of the same batches, with no
    /// rule, no school, no watermark, no audit. Moves every enrollment of `(after, upto]`
    /// by `delta` grades. Answers the rows updated.
    pub async fn bare_grade_update(
        &self,
        after: i64,
        upto: i64,
        delta: i16,
    ) -> Result<u64, IdentityError> {
        Ok(sqlx::query!(
            "UPDATE identity.enrollments SET grade = grade + $3 WHERE id > $1 AND id <= $2",
            after,
            upto,
            delta
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The highest enrollment id (0 when there is none).
    pub async fn enrollment_ceiling(&self) -> Result<i64, IdentityError> {
        Ok(
            sqlx::query_scalar!("SELECT max(id) FROM identity.enrollments")
                .fetch_one(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    /// Vacuums and analyzes the enrollments: a benchmark pass starts without the dead rows of
    /// the one before. Needs a connection without a statement timeout on a large table.
    pub async fn vacuum_enrollments(&self) -> Result<(), IdentityError> {
        sqlx::query!("VACUUM ANALYZE identity.enrollments")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
