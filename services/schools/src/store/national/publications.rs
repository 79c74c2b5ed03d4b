//! Numbered, immutable publications of the code list, and the pages of their changes.

use super::*;
use crate::SchoolsError;
use crate::store::{Actor, audit};

impl NationalStore {
    /// Publishes every unpublished change as the next version; `None` when there is nothing to
    /// publish.
    pub async fn publish(
        &self,
        note: &str,
        actor: &Actor,
    ) -> Result<Option<Publication>, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        // One publisher at a time; versions are consecutive.
        sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('schools_national.publish'))")
            .execute(&mut *tx)
            .await?;
        let version = sqlx::query_scalar!(
            r#"SELECT coalesce(max(version), 0) + 1 AS "version!" FROM schools_national.publications"#
        )
        .fetch_one(&mut *tx)
        .await?;
        let taken = sqlx::query!(
            "UPDATE schools_national.changes SET version = $1 WHERE version IS NULL",
            version
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        sqlx::query!(
            "INSERT INTO schools_national.publications (version, note, changes) VALUES ($1, $2, $3)",
            version,
            note,
            taken as i32
        )
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            "schools.publish",
            &format!("publication:{version}"),
            None,
            Some(serde_json::json!({ "version": version, "changes": taken, "note": note })),
        )
        .await?;
        tx.commit().await?;
        // The answer carries the first page of a large publication (`complete` false); the rest
        // is read with ListPublications.
        Ok(self
            .publications(version - 1, 0, 1, CHANGES_PER_PAGE)
            .await?
            .into_iter()
            .next())
    }

    pub async fn latest_version(&self) -> Result<i64, SchoolsError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT coalesce(max(version), 0) AS "version!" FROM schools_national.publications"#
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Publications after `after_version`, oldest first, with their changes: at most
    /// `limit` publications and `max_changes` changes in all, the first continuing after change
    /// `after_change` (0: from its start). A publication cut short comes last, not complete.
    pub async fn publications(
        &self,
        after_version: i64,
        after_change: i64,
        limit: i64,
        max_changes: i64,
    ) -> Result<Vec<Publication>, SchoolsError> {
        let heads = sqlx::query!(
            "SELECT version, published_at, note FROM schools_national.publications
             WHERE version > $1 ORDER BY version LIMIT $2",
            after_version,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        let Some(last) = heads.last() else {
            return Ok(Vec::new());
        };
        let mut changes = self
            .changes_page(after_version, last.version, after_change, max_changes + 1)
            .await?;
        let cut = changes.len() as i64 > max_changes;
        changes.truncate(max_changes as usize);
        let cut_version = cut.then(|| changes.last().map(|c| c.version)).flatten();
        let mut publications = Vec::new();
        for head in heads {
            if cut_version.is_some_and(|version| head.version > version) {
                break;
            }
            let split = changes
                .iter()
                .position(|c| c.version != head.version)
                .unwrap_or(changes.len());
            let rest = changes.split_off(split);
            publications.push(Publication {
                version: head.version,
                published_at: head.published_at,
                note: head.note,
                changes: std::mem::replace(&mut changes, rest),
                complete: cut_version != Some(head.version),
            });
        }
        Ok(publications)
    }

    /// The changes of versions `from + 1 ..= to`, in order, after change `after_change` (0:
    /// all), at most `limit`. Change ids grow with versions (a publication takes every change
    /// recorded before it), so one id is a cursor across versions.
    pub async fn changes_page(
        &self,
        from: i64,
        to: i64,
        after_change: i64,
        limit: i64,
    ) -> Result<Vec<Change>, SchoolsError> {
        let rows = sqlx::query!(
            r#"SELECT id, version AS "version!", kind, code, school, predecessors, effective_date,
                      reason
               FROM schools_national.changes
               WHERE version > $1 AND version <= $2 AND id > $3
               ORDER BY version, id
               LIMIT $4"#,
            from,
            to,
            after_change,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Change {
                    id: row.id,
                    version: row.version,
                    kind: row.kind,
                    school: serde_json::from_value(row.school).map_err(|e| {
                        sqlx::Error::Decode(format!("change of {}: {e}", row.code).into())
                    })?,
                    code: row.code,
                    predecessors: row.predecessors,
                    effective_date: row.effective_date,
                    reason: row.reason,
                })
            })
            .collect()
    }
}
