//! The change feed's reader (its rows are written by triggers: migration 0015). Reading first
//! stamps every row committed since the last read with the next positions, under a lock, in
//! transaction order: a row committed later always gets a larger position than one already
//! read, so a reader that resumes after its last position misses nothing.

use sqlx::types::Json;

use super::Store;
use crate::{
    IdentityError,
    domain::feed::{FeedPlace, FeedRow},
};

/// The lock that makes stamping one round at a time (pg_advisory_xact_lock's key).
const STAMP_LOCK: i64 = 0x7875_656a_6966_6565; // "xuejifee"
/// Rows one round stamps at most, in whole transactions (at least one): a backlog (after a
/// bulk migration) is stamped in rounds that each finish well inside a request's time.
const STAMP_ROUND: i64 = 50_000;

impl Store {
    /// Gives positions to rows committed since the last round (whole transactions, about
    /// [`STAMP_ROUND`] rows at most); answers the head position.
    pub async fn stamp_feed(&self) -> Result<u64, IdentityError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SELECT pg_advisory_xact_lock($1)", STAMP_LOCK)
            .execute(&mut *tx)
            .await?;
        let head = sqlx::query_scalar!(
            r#"WITH head AS (
                   SELECT coalesce(max(position), 0) AS position FROM identity.change_feed
               ), cutoff AS (
                   -- The transaction of the round's last row (none: the backlog is smaller
                   -- than a round); its rows are all taken. One walk of the unstamped rows'
                   -- index as far as the round, however long the backlog.
                   SELECT xid FROM identity.change_feed WHERE position IS NULL
                   ORDER BY xid, id OFFSET $1::bigint - 1 LIMIT 1
               ), todo AS (
                   SELECT id, row_number() OVER (ORDER BY xid, id) AS n
                   FROM identity.change_feed
                   WHERE position IS NULL
                     AND (NOT EXISTS (SELECT 1 FROM cutoff) OR xid <= (SELECT xid FROM cutoff))
               ), stamped AS (
                   UPDATE identity.change_feed f SET position = head.position + todo.n
                   FROM todo, head WHERE f.id = todo.id
                   RETURNING f.position
               )
               SELECT greatest((SELECT max(position) FROM stamped), (SELECT position FROM head))
                   AS "head!""#,
            STAMP_ROUND
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(head as u64)
    }

    /// Up to about `limit` rows after `after`, in position order; does not end inside a
    /// transaction's rows (the reader joins them) unless the transaction is larger than a
    /// thousand rows more (a bulk migration): then its events are read in pieces.
    pub async fn feed_rows(&self, after: u64, limit: u32) -> Result<Vec<FeedRow>, IdentityError> {
        let rows = sqlx::query!(
            r#"WITH first AS (
                   SELECT position, xid FROM identity.change_feed
                   WHERE position > $1 ORDER BY position LIMIT $2
               ), last AS (
                   SELECT position, xid FROM first ORDER BY position DESC LIMIT 1
               )
               -- A transaction's rows have consecutive positions: the rest of the last one
               -- follows the first rows directly, so one range of the index holds them all.
               SELECT f.position AS "position!", f.xid::text AS "xid!", f.student_id,
                      f.happened_on, f.kind,
                      f.from_place AS "from_place: Json<FeedPlace>",
                      f.to_place AS "to_place: Json<FeedPlace>"
               FROM identity.change_feed f, last
               WHERE f.position > $1 AND f.position <= last.position + 1000
                 AND (f.position <= last.position OR f.xid = last.xid)
               ORDER BY f.position"#,
            after as i64,
            i64::from(limit)
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let transaction = row.xid.parse::<u64>().map_err(|_| {
                    IdentityError::Internal(format!("unreadable xid {:?} in the feed", row.xid))
                })?;
                Ok(FeedRow {
                    position: row.position as u64,
                    transaction,
                    student: row.student_id,
                    on: row.happened_on,
                    kind: row.kind,
                    from: row.from_place.map(|p| p.0),
                    to: row.to_place.map(|p| p.0),
                })
            })
            .collect()
    }
}
