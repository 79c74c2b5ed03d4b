//! Applying a publication to the province's replica, page by page: a publication of the whole
//! nation's schools has hundreds of thousands of changes, more than one message (or one
//! process's memory) should hold, and the replica must still move to it all at once.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sqlx::{PgPool, Postgres, Transaction};

use super::{Actor, audit, national::Change};
use crate::SchoolsError;

/// A publication being applied: one transaction, holding the replica's state row, that takes
/// its changes a page at a time and commits when the last page is in.
pub struct PublicationApplier {
    tx: Transaction<'static, Postgres>,
    previous: i64,
    version: i64,
    changes: usize,
    /// Codes merged into another school in this publication (their lineage is a merge).
    merged_away: HashSet<String>,
    /// (predecessor, successor, effective date) of every voided code, written at the end, when
    /// the whole publication tells a merge from a category change.
    successions: Vec<(String, String, NaiveDate)>,
}

impl std::fmt::Debug for PublicationApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicationApplier")
            .field("version", &self.version)
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

impl PublicationApplier {
    pub(super) async fn begin(pool: &PgPool, version: i64) -> Result<Option<Self>, SchoolsError> {
        let mut tx = pool.begin().await?;
        let current =
            sqlx::query_scalar!("SELECT version FROM schools_provincial.replica_state FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        if version <= current {
            return Ok(None);
        }
        if version != current + 1 {
            return Err(SchoolsError::FailedPrecondition(format!(
                "publication {version} cannot follow version {current}; versions are applied in \
                 order"
            )));
        }
        Ok(Some(Self {
            tx,
            previous: current,
            version,
            changes: 0,
            merged_away: HashSet::new(),
            successions: Vec::new(),
        }))
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    /// Applies one page of the publication's changes, in order: one statement for the page.
    pub async fn apply(&mut self, changes: &[Change]) -> Result<(), SchoolsError> {
        // Each change carries the whole school as it stands afterwards: the last change of a
        // code in the page is the one that counts (and one statement may touch a row once).
        let mut last_of: HashMap<&str, &Change> = HashMap::new();
        for change in changes {
            if change.version != self.version {
                return Err(SchoolsError::Unavailable(format!(
                    "a change of version {} arrived while applying version {}",
                    change.version, self.version
                )));
            }
            if change.kind == "merged" {
                self.merged_away.extend(change.predecessors.iter().cloned());
            }
            for successor in &change.school.successors {
                self.successions.push((
                    change.code.clone(),
                    successor.to_string(),
                    change.effective_date,
                ));
            }
            last_of.insert(change.code.as_str(), change);
        }
        let mut columns = Columns::default();
        for change in last_of.into_values() {
            let school = &change.school;
            columns.code.push(school.code.to_string());
            columns.name.push(school.profile.name.clone());
            columns
                .category
                .push(school.profile.category.digits().to_owned());
            columns.division.push(school.profile.division.to_string());
            columns.status.push(school.status.as_str().to_owned());
            columns
                .record
                .push(serde_json::to_value(school).expect("serializable"));
        }
        sqlx::query!(
            "INSERT INTO schools_provincial.schools
                 (code, name, category, division, status, record, published_in)
             SELECT code, name, category, division, status, record, $7
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
                 AS page (code, name, category, division, status, record)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, category = excluded.category,
                 division = excluded.division, status = excluded.status, record = excluded.record,
                 published_in = excluded.published_in",
            &columns.code,
            &columns.name,
            &columns.category,
            &columns.division,
            &columns.status,
            &columns.record,
            self.version,
        )
        .execute(&mut *self.tx)
        .await?;
        self.changes += changes.len();
        Ok(())
    }

    /// Writes the lineage, moves the replica to the publication's version, audits, commits.
    pub async fn finish(mut self, actor: &Actor) -> Result<(), SchoolsError> {
        let (mut predecessors, mut successors, mut kinds, mut dates) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (predecessor, successor, date) in &self.successions {
            kinds.push(if self.merged_away.contains(predecessor) {
                "merge".to_owned()
            } else {
                "category_change".to_owned()
            });
            predecessors.push(predecessor.clone());
            successors.push(successor.clone());
            dates.push(*date);
        }
        sqlx::query!(
            "INSERT INTO schools_provincial.lineage (predecessor, successor, kind, effective_date)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[])
             ON CONFLICT DO NOTHING",
            &predecessors,
            &successors,
            &kinds,
            &dates
        )
        .execute(&mut *self.tx)
        .await?;
        sqlx::query!(
            "UPDATE schools_provincial.replica_state SET version = $1",
            self.version
        )
        .execute(&mut *self.tx)
        .await?;
        audit(
            &mut self.tx,
            actor,
            "schools.replicate_publication",
            &format!("publication:{}", self.version),
            Some(serde_json::json!({ "version": self.previous })),
            Some(serde_json::json!({
                "version": self.version,
                "changes": self.changes,
            })),
        )
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

#[derive(Default)]
struct Columns {
    code: Vec<String>,
    name: Vec<String>,
    category: Vec<String>,
    division: Vec<String>,
    status: Vec<String>,
    record: Vec<serde_json::Value>,
}
