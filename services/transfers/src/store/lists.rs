//! Lists: a party's inbox, a jurisdiction's transfers, overdue counts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, TransferRecord, load_many};
use crate::TransferError;

/// Whose transfers: a school (by code) or a division (by the prefix of the division codes it
/// covers: 2 digits a province, 4 a city, 6 a county; empty the nation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    School(String),
    DivisionPrefix(String),
}

/// One page of a list, and where the next starts.
#[derive(Debug, Clone)]
pub struct InboxPage {
    pub transfers: Vec<TransferRecord>,
    pub next: Option<String>,
}

fn like_prefix(prefix: &str) -> String {
    format!("{}%", xueji_validation::like_literal(prefix))
}

impl Store {
    async fn records(&self, ids: Vec<Uuid>) -> Result<Vec<TransferRecord>, TransferError> {
        let mut conn = self.pool.acquire().await?;
        load_many(&mut conn, &ids).await
    }

    /// The open steps `jurisdiction` decides, soonest deadline first, after `after`
    /// (due_at, transfer id).
    pub async fn inbox(
        &self,
        jurisdiction: &str,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<InboxPage, TransferError> {
        let (after_due, after_id) = after.unzip();
        let rows = sqlx::query!(
            r#"SELECT transfer_id, due_at AS "due_at!" FROM transfers.steps
               WHERE state = 'open' AND jurisdiction = $1
                 AND ($2::timestamptz IS NULL OR (due_at, transfer_id) > ($2, $3))
               ORDER BY due_at, transfer_id
               LIMIT $4"#,
            jurisdiction,
            after_due,
            after_id,
            limit + 1
        )
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() as i64 > limit;
        let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
        let next = more
            .then(|| {
                rows.last()
                    .map(|r| format!("{}/{}", r.due_at.timestamp_micros(), r.transfer_id))
            })
            .flatten();
        Ok(InboxPage {
            transfers: self
                .records(rows.into_iter().map(|r| r.transfer_id).collect())
                .await?,
            next,
        })
    }

    /// Transfers touching `scope` (incoming, outgoing or both), newest first, in `states`
    /// (all when empty); `overdue` keeps those whose open step is past its deadline at `now`.
    #[allow(clippy::too_many_arguments)]
    pub async fn in_scope(
        &self,
        scope: &ListScope,
        incoming: bool,
        outgoing: bool,
        states: &[&str],
        overdue_at: Option<DateTime<Utc>>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<InboxPage, TransferError> {
        let (school, prefix) = match scope {
            ListScope::School(code) => (Some(code.as_str()), None),
            ListScope::DivisionPrefix(prefix) => (None, Some(like_prefix(prefix))),
        };
        let states: Vec<String> = states.iter().map(|s| (*s).to_owned()).collect();
        let (after_at, after_id) = after.unzip();
        let rows = sqlx::query!(
            r#"SELECT t.id, t.started_at FROM transfers.transfers t
               WHERE ((($1::text IS NOT NULL AND t.receiving_school = $1)
                       OR ($2::text IS NOT NULL AND t.receiving_division LIKE $2)) AND $3
                   OR (($1::text IS NOT NULL AND t.sending_school = $1)
                       OR ($2::text IS NOT NULL AND t.sending_division LIKE $2)) AND $4)
                 AND (cardinality($5::text[]) = 0 OR t.state = ANY($5))
                 AND ($6::timestamptz IS NULL OR EXISTS (
                       SELECT 1 FROM transfers.steps s
                       WHERE s.transfer_id = t.id AND s.state = 'open' AND s.due_at <= $6))
                 AND ($7::timestamptz IS NULL OR (t.started_at, t.id) < ($7, $8))
               ORDER BY t.started_at DESC, t.id DESC
               LIMIT $9"#,
            school,
            prefix,
            incoming,
            outgoing,
            &states,
            overdue_at,
            after_at,
            after_id,
            limit + 1
        )
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() as i64 > limit;
        let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
        let next = more
            .then(|| {
                rows.last()
                    .map(|r| format!("{}/{}", r.started_at.timestamp_micros(), r.id))
            })
            .flatten();
        Ok(InboxPage {
            transfers: self
                .records(rows.into_iter().map(|r| r.id).collect())
                .await?,
            next,
        })
    }

    /// Open steps past their deadline at `now`, per deciding jurisdiction, for the parties
    /// inside `scope`.
    pub async fn overdue_counts(
        &self,
        scope: &ListScope,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, TransferError> {
        // A division prefix matches division codes only (a senior high school's code, 34…,
        // would otherwise match Anhui's prefix).
        let (pattern, length) = match scope {
            ListScope::School(code) => (xueji_validation::like_literal(code), 10),
            ListScope::DivisionPrefix(prefix) => (like_prefix(prefix), 6),
        };
        let rows = sqlx::query!(
            r#"SELECT jurisdiction, count(*) AS "overdue!" FROM transfers.steps
               WHERE state = 'open' AND due_at <= $1 AND jurisdiction LIKE $2
                 AND length(jurisdiction) = $3
               GROUP BY jurisdiction
               ORDER BY 2 DESC, 1"#,
            now,
            pattern,
            length
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.jurisdiction, r.overdue))
            .collect())
    }
}
