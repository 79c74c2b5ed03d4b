//! Calendar years pulled from the national node: kept so that a restart counts deadlines on
//! them before the national node answers again.

use chrono::{DateTime, Utc};

use super::Store;
use crate::{TransferError, domain::PublishedYear};

struct YearRow {
    year: i32,
    days_csv: String,
    version: i64,
    loaded_by: String,
    loaded_at: DateTime<Utc>,
}

impl TryFrom<YearRow> for PublishedYear {
    type Error = TransferError;

    fn try_from(row: YearRow) -> Result<Self, TransferError> {
        PublishedYear::from_stored(
            row.year,
            &row.days_csv,
            row.version,
            row.loaded_by,
            row.loaded_at,
        )
        .map_err(|e| TransferError::Internal(format!("the stored calendar of {}: {e}", row.year)))
    }
}

impl Store {
    /// Keeps years pulled from the national node; a year already kept at a later version
    /// stays as it is (pulls may overlap).
    pub async fn keep_calendar_years(&self, years: &[PublishedYear]) -> Result<(), TransferError> {
        let mut tx = self.pool.begin().await?;
        for year in years {
            sqlx::query!(
                "INSERT INTO transfers.calendar_years (year, days_csv, version, loaded_by, loaded_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (year) DO UPDATE
                    SET days_csv = EXCLUDED.days_csv, version = EXCLUDED.version,
                        loaded_by = EXCLUDED.loaded_by, loaded_at = EXCLUDED.loaded_at,
                        received_at = now()
                  WHERE transfers.calendar_years.version < EXCLUDED.version",
                year.year,
                xueji_calendar::to_csv(&year.days),
                year.version,
                year.loaded_by,
                year.loaded_at,
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every year kept, by year.
    pub async fn calendar_years(&self) -> Result<Vec<PublishedYear>, TransferError> {
        sqlx::query_as!(
            YearRow,
            "SELECT year, days_csv, version, loaded_by, loaded_at
             FROM transfers.calendar_years ORDER BY year"
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(PublishedYear::try_from)
        .collect()
    }
}
