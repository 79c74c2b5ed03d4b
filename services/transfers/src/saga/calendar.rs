//! The calendar deadlines are counted on: the policy's (the bundled years), with every year the
//! ministry loaded on the national node in its place. The province pulls new loads, keeps them
//! (so a restart counts on them at once) and swaps the calendar in; steps opened before keep
//! the deadline they were given (deadlines are computed once), flagged if it was estimated.

use std::{sync::Arc, time::Duration};

use xueji_calendar::WorkingCalendar;

use super::Saga;
use crate::{TransferError, domain::PublishedYear};

impl Saga {
    /// The calendar as it stands now.
    pub fn calendar(&self) -> Arc<WorkingCalendar> {
        self.calendar
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The national version of the latest load this province has (0: none).
    pub async fn calendar_version(&self) -> Result<i64, TransferError> {
        let kept = self.store.calendar_years().await?;
        Ok(kept.iter().map(|year| year.version).max().unwrap_or(0))
    }

    /// Counts on the years kept from earlier pulls (at start, before the national node is
    /// asked: it may be down).
    pub async fn use_kept_calendar(&self) -> Result<(), TransferError> {
        let kept = self.store.calendar_years().await?;
        self.use_years(&kept);
        Ok(())
    }

    /// Pulls years loaded since the last pull (when a national node is linked), keeps them,
    /// and counts on every year kept. Answers the years that were new.
    pub async fn sync_calendar(&self) -> Result<Vec<i32>, TransferError> {
        let mut kept = self.store.calendar_years().await?;
        let mut new_years = Vec::new();
        if let Some(source) = &self.calendar_source {
            let version = kept.iter().map(|year| year.version).max().unwrap_or(0);
            let pulled = source.years_after(version).await?;
            if !pulled.is_empty() {
                self.store.keep_calendar_years(&pulled).await?;
                new_years = pulled.iter().map(|year| year.year).collect();
                kept = self.store.calendar_years().await?;
            }
        }
        self.use_years(&kept);
        for year in &new_years {
            tracing::info!(year, "calendar year from the national node is in use");
        }
        Ok(new_years)
    }

    fn use_years(&self, years: &[PublishedYear]) {
        let mut calendar = self.policy.current().calendar.clone();
        for year in years {
            calendar.load_year(year.year, &year.days);
        }
        // A province's own days off apply whichever years are loaded.
        *self
            .calendar
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(calendar);
    }

    /// Keeps the calendar in step with the national node's, every `interval`.
    pub async fn run_calendar(self: Arc<Self>, interval: Duration) {
        loop {
            if let Err(error) = self.sync_calendar().await {
                tracing::warn!(%error, "calendar sync failed; deadlines count on the years held");
            }
            tokio::time::sleep(interval).await;
        }
    }
}
