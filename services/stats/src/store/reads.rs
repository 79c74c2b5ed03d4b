//! What figures read: counts at a date by breakdown cell, the schools of an area, the
//! closings and openings every unit's reconciliation compares, the students left unplaced.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::Store;
use crate::{
    StatsError,
    domain::{Cell, Month, Unit},
};

/// A student whose enrollment ended without another school taking them (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropout {
    pub registry_number: String,
    pub name: String,
    pub left_on: NaiveDate,
    /// dropout or departure.
    pub kind: String,
    pub school: String,
    pub county: String,
    /// The day a school placed them again, and that school (劝返); none while unplaced.
    pub returned: Option<(NaiveDate, String)>,
}

/// A LIKE pattern of the division codes inside `unit` (its code, then anything).
fn codes_inside(unit: &Unit) -> String {
    format!("{}%", xueji_validation::like_literal(unit.code()))
}

/// How a query of students picks those of `unit`: a school by its code, an area by its
/// counties' codes (`school = $1 OR ($1 IS NULL AND county LIKE $2)`).
fn area_filter(unit: &Unit) -> (Option<String>, String) {
    match unit {
        Unit::School(code) => (Some(code.clone()), String::new()),
        other => (None, codes_inside(other)),
    }
}

/// The stored-key pattern of the units inside `unit` at `level` (a LIKE pattern).
fn inside(unit: &Unit, level: &str) -> String {
    format!("{level}:{}%", xueji_validation::like_literal(unit.code()))
}

impl Store {
    /// The unit's count at the end of `day`, by breakdown cell (cells at zero left out).
    pub async fn cells(&self, unit: &Unit, day: NaiveDate) -> Result<Vec<Cell>, StatsError> {
        let rows = sqlx::query!(
            r#"SELECT dimension, value, sum(students)::bigint AS "students!"
               FROM stats.daily_cells WHERE unit = $1 AND day <= $2
               GROUP BY dimension, value HAVING sum(students) <> 0
               ORDER BY dimension, value"#,
            unit.key(),
            day
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Cell {
                dimension: row.dimension,
                value: row.value,
                students: row.students,
            })
            .collect())
    }

    /// Every school's cells at the end of `day`, for the schools inside `unit`.
    pub async fn school_cells(
        &self,
        unit: &Unit,
        day: NaiveDate,
    ) -> Result<Vec<(String, Vec<Cell>)>, StatsError> {
        let schools = self.schools_inside(unit).await?;
        let keys: Vec<String> = schools.iter().map(|(s, _)| format!("school:{s}")).collect();
        let rows = sqlx::query!(
            r#"SELECT unit, dimension, value, sum(students)::bigint AS "students!"
               FROM stats.daily_cells WHERE unit = ANY($1) AND day <= $2
               GROUP BY unit, dimension, value HAVING sum(students) <> 0
               ORDER BY unit, dimension, value"#,
            &keys,
            day
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_school: HashMap<String, Vec<Cell>> = HashMap::new();
        for row in rows {
            let school = row.unit.trim_start_matches("school:").to_owned();
            by_school.entry(school).or_default().push(Cell {
                dimension: row.dimension,
                value: row.value,
                students: row.students,
            });
        }
        Ok(schools
            .into_iter()
            .map(|(school, _)| {
                let cells = by_school.remove(&school).unwrap_or_default();
                (school, cells)
            })
            .collect())
    }

    /// The schools the feed has placed students at inside `unit`, with their counties, in
    /// code order.
    pub async fn schools_inside(&self, unit: &Unit) -> Result<Vec<(String, String)>, StatsError> {
        let rows = match unit {
            Unit::School(code) => sqlx::query!(
                "SELECT school, county FROM stats.schools WHERE school = $1",
                code
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| (r.school, r.county))
            .collect(),
            _ => sqlx::query!(
                "SELECT school, county FROM stats.schools WHERE county LIKE $1 ORDER BY school",
                codes_inside(unit)
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| (r.school, r.county))
            .collect(),
        };
        Ok(rows)
    }

    /// The county of a school the feed has seen.
    pub async fn county_of(&self, school: &str) -> Result<Option<String>, StatsError> {
        Ok(
            sqlx::query_scalar!("SELECT county FROM stats.schools WHERE school = $1", school)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Per unit inside `unit` (itself included): (opening, closing) of `month` from the
    /// monthly rows.
    pub async fn unit_balances(
        &self,
        unit: &Unit,
        month: Month,
    ) -> Result<HashMap<String, (i64, i64)>, StatsError> {
        let rows = sqlx::query!(
            r#"SELECT unit,
                      coalesce(sum(CASE WHEN direction = 'addition' THEN students ELSE -students END)
                          FILTER (WHERE month < $2), 0)::bigint AS "opening!",
                      sum(CASE WHEN direction = 'addition' THEN students ELSE -students END)::bigint
                          AS "closing!"
               FROM stats.monthly_changes
               WHERE month <= $2
                 AND (unit = $1 OR unit LIKE $3 OR unit LIKE $4 OR unit LIKE $5 OR $6
                      OR unit IN (SELECT 'school:' || school FROM stats.schools
                                  WHERE county LIKE $7))
               GROUP BY unit"#,
            unit.key(),
            month.first_day(),
            inside(unit, "province"),
            inside(unit, "city"),
            inside(unit, "county"),
            matches!(unit, Unit::Nation),
            codes_inside(unit)
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.unit, (r.opening, r.closing)))
            .collect())
    }

    /// Per unit, the count at the end of `day` from the breakdown cells (an aggregate kept
    /// apart from the monthly rows: reconciliation compares the two).
    pub async fn unit_counts(
        &self,
        units: &[String],
        day: NaiveDate,
    ) -> Result<HashMap<String, i64>, StatsError> {
        let rows = sqlx::query!(
            r#"SELECT unit, sum(students)::bigint AS "students!"
               FROM stats.daily_cells
               WHERE unit = ANY($1) AND dimension = 'gender' AND day <= $2
               GROUP BY unit"#,
            units,
            day
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.unit, r.students)).collect())
    }

    /// Does this node keep breakdown cells (a provincial node does; the national node holds
    /// the provinces' monthly rows only)?
    pub async fn keeps_cells(&self) -> Result<bool, StatsError> {
        Ok(
            sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM stats.daily_cells) AS "any!""#)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Students who left schools inside `unit` unplaced, oldest first: those still out, and
    /// those a school has taken back since (with the day and the school).
    pub async fn left_unplaced(&self, unit: &Unit) -> Result<Vec<Dropout>, StatsError> {
        let (school, prefix) = area_filter(unit);
        let rows = sqlx::query!(
            r#"SELECT registry_number, name, left_on AS "left_on!", left_kind AS "left_kind!",
                      left_school AS "left_school!", left_county AS "left_county!",
                      returned_on, returned_to
               FROM stats.students
               WHERE left_on IS NOT NULL
                 AND (left_school = $1 OR ($1 IS NULL AND left_county LIKE $2))
               ORDER BY left_on, registry_number"#,
            school,
            prefix
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Dropout {
                registry_number: r.registry_number,
                name: r.name,
                left_on: r.left_on,
                kind: r.left_kind,
                school: r.left_school,
                county: r.left_county,
                returned: r.returned_on.zip(r.returned_to),
            })
            .collect())
    }

    /// Counted students inside `unit` whose age on `on` is more than `tolerance` years off
    /// the usual age for their grade (grade + 5 on the day), and those lacking key fields.
    pub async fn quality_lists(
        &self,
        unit: &Unit,
        on: NaiveDate,
        tolerance: i32,
    ) -> Result<QualityLists, StatsError> {
        let (school, prefix) = area_filter(unit);
        let outliers = sqlx::query!(
            r#"SELECT registry_number, name, school AS "school!", grade AS "grade!",
                      birth_date AS "birth_date!"
               FROM stats.students
               WHERE counted AND birth_date IS NOT NULL AND grade IS NOT NULL
                 AND (school = $1 OR ($1 IS NULL AND county LIKE $2))
                 AND abs(extract(year FROM age($3::date, birth_date))::int - (grade + 5)) > $4
               ORDER BY school, registry_number LIMIT 10000"#,
            school,
            prefix,
            on,
            tolerance
        )
        .fetch_all(&self.pool)
        .await?;
        let missing = sqlx::query!(
            r#"SELECT registry_number, name, school AS "school!", missing
               FROM stats.students
               WHERE counted AND missing <> ''
                 AND (school = $1 OR ($1 IS NULL AND county LIKE $2))
               ORDER BY school, registry_number LIMIT 10000"#,
            school,
            prefix
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(QualityLists {
            age_grade_outliers: outliers
                .into_iter()
                .map(|r| ListedStudent {
                    registry_number: r.registry_number,
                    name: r.name,
                    school: r.school,
                    grade: r.grade,
                    birth_date: Some(r.birth_date),
                    missing: Vec::new(),
                })
                .collect(),
            missing_key_fields: missing
                .into_iter()
                .map(|r| ListedStudent {
                    registry_number: r.registry_number,
                    name: r.name,
                    school: r.school,
                    grade: 0,
                    birth_date: None,
                    missing: r.missing.split(',').map(str::to_owned).collect(),
                })
                .collect(),
        })
    }
}

/// A student on a data-quality list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedStudent {
    pub registry_number: String,
    pub name: String,
    pub school: String,
    pub grade: i16,
    pub birth_date: Option<NaiveDate>,
    pub missing: Vec<String>,
}

/// The data-quality lists the stats service keeps (at most 10,000 students each).
#[derive(Debug, Clone, Default)]
pub struct QualityLists {
    pub age_grade_outliers: Vec<ListedStudent>,
    pub missing_key_fields: Vec<ListedStudent>,
}
