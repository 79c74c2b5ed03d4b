//! The official calendar as the ministry loads it: one row a year, replaced whole, each change
//! with a new version and an audit entry in the same transaction.

use chrono::{DateTime, Utc};
use xueji_audit::Entry;
use xueji_calendar::{CalendarDay, PublishedYear};

use super::Store;
use crate::NationalError;

/// Who loads a year, as the audit log names them.
#[derive(Debug, Clone, Copy)]
pub struct Loader<'a> {
    pub description: &'a str,
    pub jurisdiction: &'a str,
    pub request_id: &'a str,
}

struct YearRow {
    year: i32,
    days_csv: String,
    version: i64,
    loaded_by: String,
    loaded_at: DateTime<Utc>,
}

impl TryFrom<YearRow> for PublishedYear {
    type Error = NationalError;

    fn try_from(row: YearRow) -> Result<Self, NationalError> {
        PublishedYear::from_stored(
            row.year,
            &row.days_csv,
            row.version,
            row.loaded_by,
            row.loaded_at,
        )
        .map_err(|e| NationalError::Internal(format!("the stored calendar of {}: {e}", row.year)))
    }
}

impl Store {
    /// Loads `year`'s schedule (already checked), replacing what was loaded before. Answers
    /// the year as stored and whether anything changed: the same schedule again writes nothing.
    pub async fn load_calendar_year(
        &self,
        year: i32,
        days: &[CalendarDay],
        loader: Loader<'_>,
    ) -> Result<(PublishedYear, bool), NationalError> {
        let days_csv = xueji_calendar::to_csv(days);
        let mut tx = self.pool.begin().await?;
        // One loader of a year at a time, so that "the same again" is judged on the latest.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended('calendar_year:' || $1::int, 0))",
            year
        )
        .execute(&mut *tx)
        .await?;
        let before = sqlx::query_as!(
            YearRow,
            "SELECT year, days_csv, version, loaded_by, loaded_at
             FROM national.calendar_years WHERE year = $1",
            year
        )
        .fetch_optional(&mut *tx)
        .await?;
        let previous = before
            .as_ref()
            .map(|b| serde_json::json!({ "version": b.version, "days": b.days_csv }));
        if let Some(before) = before
            && before.days_csv == days_csv
        {
            tx.commit().await?;
            return Ok((before.try_into()?, false));
        }
        let row = sqlx::query_as!(
            YearRow,
            "INSERT INTO national.calendar_years (year, days_csv, version, loaded_by)
             VALUES ($1, $2, nextval('national.calendar_version'), $3)
             ON CONFLICT (year) DO UPDATE
                SET days_csv = EXCLUDED.days_csv, version = EXCLUDED.version,
                    loaded_by = EXCLUDED.loaded_by, loaded_at = now()
             RETURNING year, days_csv, version, loaded_by, loaded_at",
            year,
            days_csv,
            loader.description,
        )
        .fetch_one(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: loader.description,
                jurisdiction: loader.jurisdiction,
                action: "national.load_calendar_year",
                object: &format!("calendar:{year}"),
                before: previous,
                after: Some(serde_json::json!({ "version": row.version, "days": days_csv })),
                request_id: loader.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok((row.try_into()?, true))
    }

    /// The years changed after `version`, by version.
    pub async fn calendar_years_after(
        &self,
        version: i64,
    ) -> Result<Vec<PublishedYear>, NationalError> {
        sqlx::query_as!(
            YearRow,
            "SELECT year, days_csv, version, loaded_by, loaded_at
             FROM national.calendar_years WHERE version > $1 ORDER BY version",
            version
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(PublishedYear::try_from)
        .collect()
    }
}
