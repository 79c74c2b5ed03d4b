//! Students following their school's code when a merger or a category change voids it: one
//! transaction and one audit entry per voided code.

use xueji_audit::Entry;

use super::{Actor, Store};
use crate::{
    IdentityError,
    domain::succession::{Succession, SuccessionCursor},
};

impl Store {
    /// Where following the replica's successions resumes: the last voided code moved.
    pub async fn succession_cursor(&self) -> Result<SuccessionCursor, IdentityError> {
        let last = sqlx::query!(
            "SELECT version, predecessor FROM identity.school_successions
             ORDER BY version DESC, predecessor DESC LIMIT 1"
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(last
            .map(|row| SuccessionCursor {
                version: row.version,
                predecessor: row.predecessor,
            })
            .unwrap_or_default())
    }

    /// Moves every current enrollment of the voided code to its successor, as one audited
    /// batch. `None` when the code was moved before (a retry, or another follower won).
    pub async fn move_school_students(
        &self,
        succession: &Succession,
        actor: Actor<'_>,
    ) -> Result<Option<u64>, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query!(
            "INSERT INTO identity.school_successions
                 (predecessor, successor, kind, effective_date, version, students_moved)
             VALUES ($1, $2, $3, $4, $5, 0)
             ON CONFLICT (predecessor) DO NOTHING",
            succession.predecessor.as_str(),
            succession.successor.as_str(),
            succession.kind.as_str(),
            succession.effective_date,
            succession.version
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(None);
        }
        // Current enrollments in any state move (a suspended pupil comes back to the merged
        // school); archived ones (a transfer's sending copy, a finished stage) stay where they
        // were, as history.
        let moved = sqlx::query!(
            "UPDATE identity.enrollments SET school_code = $2
             WHERE school_code = $1 AND is_current",
            succession.predecessor.as_str(),
            succession.successor.as_str()
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query!(
            "UPDATE identity.school_successions SET students_moved = $2 WHERE predecessor = $1",
            succession.predecessor.as_str(),
            moved as i64
        )
        .execute(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.move_school_students",
                object: &format!("school:{}", succession.predecessor),
                before: Some(serde_json::json!({
                    "school": succession.predecessor.as_str(),
                    "students": moved,
                })),
                after: Some(serde_json::json!({
                    "school": succession.successor.as_str(),
                    "students": moved,
                    "kind": succession.kind.as_str(),
                    "effective_date": succession.effective_date,
                    "publication": succession.version,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(moved))
    }
}
