//! The national node's copy of each province's aggregates: its monthly rows for the province,
//! its cities and counties (figures only, never records), replaced whole at each report, so
//! a report delivered twice changes nothing and an older one never overwrites a newer. The
//! nation's rows are the sum of the provinces'.

use chrono::{DateTime, NaiveDate, Utc};

use super::Store;
use crate::StatsError;

/// One monthly row as a province reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedRow {
    pub unit: String,
    pub month: NaiveDate,
    /// addition or removal.
    pub direction: String,
    pub kind: String,
    pub students: i64,
}

/// When a province last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvinceReport {
    pub province: String,
    pub position: u64,
    pub reported_at: DateTime<Utc>,
    pub rows: i32,
}

impl Store {
    /// The province's rows to report: its own unit, its cities' and its counties'.
    pub async fn rows_to_report(&self, province: &str) -> Result<Vec<ReportedRow>, StatsError> {
        let rows = sqlx::query!(
            "SELECT unit, month, direction, kind, students FROM stats.monthly_changes
             WHERE unit = 'province:' || $1 OR unit LIKE 'city:' || $1 || '%'
                OR unit LIKE 'county:' || $1 || '%'
             ORDER BY unit, month, direction, kind",
            province
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReportedRow {
                unit: r.unit,
                month: r.month,
                direction: r.direction,
                kind: r.kind,
                students: r.students,
            })
            .collect())
    }

    /// Takes a province's report; answers false when a newer one is already held (nothing
    /// changes).
    pub async fn receive_report(
        &self,
        province: &str,
        position: u64,
        rows: &[ReportedRow],
        now: DateTime<Utc>,
    ) -> Result<bool, StatsError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "INSERT INTO stats.province_reports (province, position, reported_at, rows)
             VALUES ($1, 0, $2, 0) ON CONFLICT (province) DO NOTHING",
            province,
            now
        )
        .execute(&mut *tx)
        .await?;
        let held = sqlx::query_scalar!(
            "SELECT position FROM stats.province_reports WHERE province = $1 FOR UPDATE",
            province
        )
        .fetch_one(&mut *tx)
        .await?;
        if held as u64 > position {
            return Ok(false);
        }
        sqlx::query!(
            "DELETE FROM stats.monthly_changes
             WHERE unit = 'province:' || $1 OR unit LIKE 'city:' || $1 || '%'
                OR unit LIKE 'county:' || $1 || '%'",
            province
        )
        .execute(&mut *tx)
        .await?;
        let units: Vec<&str> = rows.iter().map(|r| r.unit.as_str()).collect();
        let months: Vec<NaiveDate> = rows.iter().map(|r| r.month).collect();
        let directions: Vec<&str> = rows.iter().map(|r| r.direction.as_str()).collect();
        let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
        let students: Vec<i64> = rows.iter().map(|r| r.students).collect();
        sqlx::query!(
            "INSERT INTO stats.monthly_changes (unit, month, direction, kind, students)
             SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[])",
            &units as &[&str],
            &months,
            &directions as &[&str],
            &kinds as &[&str],
            &students
        )
        .execute(&mut *tx)
        .await?;
        // The nation: the sum of the provinces, recomputed whole.
        sqlx::query!("DELETE FROM stats.monthly_changes WHERE unit = 'nation'")
            .execute(&mut *tx)
            .await?;
        sqlx::query!(
            "INSERT INTO stats.monthly_changes (unit, month, direction, kind, students)
             SELECT 'nation', month, direction, kind, sum(students)
             FROM stats.monthly_changes WHERE unit LIKE 'province:%'
             GROUP BY month, direction, kind"
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE stats.province_reports SET position = $2, reported_at = $3, rows = $4
             WHERE province = $1",
            province,
            position as i64,
            now,
            rows.len() as i32
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Each province's last report, in code order.
    pub async fn province_reports(&self) -> Result<Vec<ProvinceReport>, StatsError> {
        let rows = sqlx::query!(
            "SELECT province, position, reported_at, rows FROM stats.province_reports
             ORDER BY province"
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ProvinceReport {
                province: r.province,
                position: r.position as u64,
                reported_at: r.reported_at,
                rows: r.rows,
            })
            .collect())
    }
}
