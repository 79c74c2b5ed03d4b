//! The authority's watch lists: suspensions past their term, primary graduates not placed,
//! late registrations, problems open late. Each reads inside a scope (county-level divisions,
//! or one school), pages by student id, and counts the whole list on every page.

use chrono::NaiveDate;

use super::Store;
use crate::{IdentityError, domain::watch::WatchWindow};

/// One student on a list, before their record is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRow {
    pub student_id: i64,
    /// The day that put the record on the list.
    pub since: Option<NaiveDate>,
    /// For problems: their kinds, comma-separated; empty otherwise.
    pub kinds: String,
    /// How many the whole list holds.
    pub total: i64,
}

/// Where a list is read.
#[derive(Debug, Clone)]
pub struct WatchScope<'a> {
    pub counties: &'a [String],
    pub school: Option<&'a str>,
    /// Students after this id.
    pub after: i64,
    pub limit: i64,
}

impl Store {
    /// Current suspensions whose term ended before `window.deadline` (today), or is unknown.
    pub async fn suspensions_past_term(
        &self,
        scope: &WatchScope<'_>,
        window: &WatchWindow,
    ) -> Result<Vec<WatchRow>, IdentityError> {
        Ok(sqlx::query_as!(
            WatchRow,
            r#"SELECT w.student_id AS "student_id!", w.since, '' AS "kinds!", w.total AS "total!"
               FROM (SELECT e.student_id, e.suspended_until AS since, count(*) OVER () AS total
                     FROM identity.enrollments e
                     WHERE e.is_current AND e.status = 'suspended'
                       AND (e.school_division = ANY($1) OR e.school_code = $2)
                       AND (e.suspended_until IS NULL OR e.suspended_until < $3)) w
               WHERE w.student_id > $4 ORDER BY w.student_id LIMIT $5"#,
            scope.counties,
            scope.school,
            window.deadline,
            scope.after,
            scope.limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pupils who finished primary school (graduated or completed) between the window's school
    /// years and hold no later enrollment: none here (their finished record is still the
    /// current one) and none in another province (no notice that they continued elsewhere).
    pub async fn primary_graduates_unplaced(
        &self,
        scope: &WatchScope<'_>,
        window: &WatchWindow,
    ) -> Result<Vec<WatchRow>, IdentityError> {
        Ok(sqlx::query_as!(
            WatchRow,
            r#"SELECT w.student_id AS "student_id!", w.since, '' AS "kinds!", w.total AS "total!"
               FROM (SELECT e.student_id, e.closed_on AS since, count(*) OVER () AS total
                     FROM identity.enrollments e
                     JOIN identity.schools sc ON sc.code = e.school_code
                     WHERE e.is_current AND e.status IN ('graduated', 'completed')
                       AND (e.school_division = ANY($1) OR e.school_code = $2)
                       AND e.closed_on >= $3 AND e.closed_on < $4
                       AND EXISTS (SELECT 1 FROM jsonb_array_elements(sc.stages) st
                                   WHERE st->>'stage' = 'primary'
                                     AND (st->>'years')::int = e.grade)
                       AND NOT EXISTS (SELECT 1 FROM identity.continued_elsewhere c
                                       WHERE c.student_id = e.student_id)) w
               WHERE w.student_id > $5 ORDER BY w.student_id LIMIT $6"#,
            scope.counties,
            scope.school,
            window.year_starts,
            window.next_year_starts,
            scope.after,
            scope.limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Registrations of the window's school year made after its deadline, or made before it
    /// and still waiting for approval once it has passed; by the registering enrollment, where
    /// the student is now.
    pub async fn late_registrations(
        &self,
        scope: &WatchScope<'_>,
        window: &WatchWindow,
    ) -> Result<Vec<WatchRow>, IdentityError> {
        Ok(sqlx::query_as!(
            WatchRow,
            r#"SELECT w.student_id AS "student_id!", w.since, '' AS "kinds!", w.total AS "total!"
               FROM (SELECT e.student_id,
                            (e.registered_at AT TIME ZONE 'Asia/Shanghai')::date AS since,
                            count(*) OVER () AS total
                     FROM identity.enrollments e
                     WHERE e.is_current AND e.status NOT IN ('rejected', 'deleted')
                       AND (e.school_division = ANY($1) OR e.school_code = $2)
                       AND (e.registered_at AT TIME ZONE 'Asia/Shanghai')::date >= $3
                       AND ((e.registered_at AT TIME ZONE 'Asia/Shanghai')::date > $4
                            OR ($5 AND e.status IN ('pending', 'awaiting_national_check')))) w
               WHERE w.student_id > $6 ORDER BY w.student_id LIMIT $7"#,
            scope.counties,
            scope.school,
            window.year_starts,
            window.deadline,
            window.passed,
            scope.after,
            scope.limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Live students with a problem found on or before the window's deadline and still open:
    /// a namesake without an ID number not confirmed distinct, a problem the national index
    /// found, an invalid ID number a scan found. The earliest finding dates the entry.
    pub async fn problems_open_late(
        &self,
        scope: &WatchScope<'_>,
        window: &WatchWindow,
    ) -> Result<Vec<WatchRow>, IdentityError> {
        Ok(sqlx::query_as!(
            WatchRow,
            r#"SELECT w.student_id AS "student_id!", w.since, w.kinds AS "kinds!",
                      w.total AS "total!"
               FROM (SELECT p.student_id,
                            min((p.found_at AT TIME ZONE 'Asia/Shanghai')::date) AS since,
                            string_agg(DISTINCT p.kind, ',' ORDER BY p.kind) AS kinds,
                            count(*) OVER () AS total
                     FROM (SELECT s.id AS student_id, s.registered_at AS found_at,
                                  'duplicate_name' AS kind
                           FROM identity.duplicate_groups g
                           JOIN identity.students s ON s.name_key = g.key
                           WHERE g.registrations > 1 AND identity.has_namesake(s.id)
                             AND NOT EXISTS (SELECT 1 FROM identity.confirmed_records c
                                             WHERE c.student_id = s.id
                                               AND c.problem = 'duplicate_name')
                           UNION ALL
                           SELECT f.student_id, f.flagged_at, f.kind FROM identity.national_flags f
                           UNION ALL
                           SELECT i.student_id, i.found_at, 'invalid_id_number'
                           FROM identity.id_number_problems i) p
                     JOIN identity.enrollments e ON e.student_id = p.student_id AND e.is_current
                     WHERE e.status NOT IN ('rejected', 'deleted')
                       AND (e.school_division = ANY($1) OR e.school_code = $2)
                       AND (p.found_at AT TIME ZONE 'Asia/Shanghai')::date <= $3
                     GROUP BY p.student_id) w
               WHERE w.student_id > $4 ORDER BY w.student_id LIMIT $5"#,
            scope.counties,
            scope.school,
            window.deadline,
            scope.after,
            scope.limit
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
