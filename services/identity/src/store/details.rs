//! Updates of a record's non-key fields: the record locked, checked against the values it
//! holds now, written with the update's row (each field before and after) and its audit entry
//! in one transaction. The change feed's triggers turn a changed flag or entry route into the
//! statistics' correction event.

use sqlx::types::Json;
use uuid::Uuid;
use xueji_audit::Entry;

use super::{Actor, Store, unknown};
use crate::{
    IdentityError,
    domain::{EntryRoute, Guardian, correction::FieldChange, details::Details},
};

/// The province's own fields of a record, by name.
type ProvincialValues = std::collections::BTreeMap<String, String>;

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailOutcome {
    /// Written now: what changed.
    Updated(Vec<FieldChange>),
    /// The same request came before: what it changed then.
    Replayed(Vec<FieldChange>),
    /// The key was used for another request.
    KeyReused,
}

/// One update of a student's non-key fields, as the history reads it.
#[derive(Debug, Clone)]
pub struct DetailUpdateRecord {
    pub id: Uuid,
    pub changes: Vec<FieldChange>,
    pub reason: String,
    pub updated_by: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Store {
    /// Applies an update of `student_id`'s non-key fields: `check` gets the values the locked
    /// record holds and answers the values after and what changed (or refuses).
    pub async fn update_details(
        &self,
        student_id: i64,
        registry_number: &str,
        (key, hash, reason): (&str, &[u8], &str),
        actor: Actor<'_>,
        check: impl FnOnce(&Details) -> Result<(Details, Vec<FieldChange>), IdentityError>,
    ) -> Result<DetailOutcome, IdentityError> {
        if let Some(replay) = self.detail_replay(key, hash).await? {
            return Ok(replay);
        }
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query!(
            r#"SELECT s.guardian AS "guardian: Json<Guardian>", s.ethnicity, s.migrant_child,
                      s.left_behind_child,
                      s.provincial_fields AS "provincial_fields: Json<ProvincialValues>",
                      e.entry_route
               FROM identity.students s
               JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
               WHERE s.id = $1 FOR UPDATE OF s, e"#,
            student_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| IdentityError::NotFound(format!("student {registry_number}")))?;
        let current = Details {
            guardian: row.guardian.0,
            ethnicity: row.ethnicity,
            entry_route: EntryRoute::parse(&row.entry_route)
                .ok_or_else(|| unknown("entry route", &row.entry_route))?,
            migrant_child: row.migrant_child,
            left_behind_child: row.left_behind_child,
            provincial: row.provincial_fields.0,
        };
        let (after, changes) = check(&current)?;
        sqlx::query!(
            "UPDATE identity.students
             SET guardian = $2, ethnicity = $3, migrant_child = $4, left_behind_child = $5,
                 provincial_fields = $6
             WHERE id = $1",
            student_id,
            Json(&after.guardian) as _,
            after.ethnicity,
            after.migrant_child,
            after.left_behind_child,
            Json(&after.provincial) as _,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE identity.enrollments SET entry_route = $2
             WHERE student_id = $1 AND is_current AND entry_route <> $2",
            student_id,
            after.entry_route.as_str(),
        )
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query_scalar!(
            "INSERT INTO identity.detail_updates
                 (id, student_id, idempotency_key, request_hash, changes, reason, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING id",
            Uuid::new_v4(),
            student_id,
            key,
            hash,
            Json(&changes) as _,
            reason,
            actor.caller.describe(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            // The same key committed meanwhile: that request's answer is this one's.
            tx.rollback().await?;
            return self
                .detail_replay(key, hash)
                .await?
                .ok_or_else(|| IdentityError::Internal("a kept update vanished".into()));
        }
        let side = |pick: fn(&FieldChange) -> &String| {
            serde_json::Value::Object(
                changes
                    .iter()
                    .map(|c| (c.field.clone(), serde_json::Value::String(pick(c).clone())))
                    .collect(),
            )
        };
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.update_student_details",
                object: &format!("student:{registry_number}"),
                before: Some(side(|c| &c.from)),
                after: Some(serde_json::json!({ "values": side(|c| &c.to), "reason": reason })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(DetailOutcome::Updated(changes))
    }

    async fn detail_replay(
        &self,
        key: &str,
        hash: &[u8],
    ) -> Result<Option<DetailOutcome>, IdentityError> {
        let kept = sqlx::query!(
            r#"SELECT request_hash, changes AS "changes: Json<Vec<FieldChange>>"
               FROM identity.detail_updates WHERE idempotency_key = $1"#,
            key
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(kept.map(|kept| {
            if kept.request_hash == hash {
                DetailOutcome::Replayed(kept.changes.0)
            } else {
                DetailOutcome::KeyReused
            }
        }))
    }

    /// Every update of a student's non-key fields, oldest first.
    pub async fn detail_updates(
        &self,
        student_id: i64,
    ) -> Result<Vec<DetailUpdateRecord>, IdentityError> {
        let rows = sqlx::query!(
            r#"SELECT id, changes AS "changes: Json<Vec<FieldChange>>", reason, updated_by,
                      updated_at
               FROM identity.detail_updates WHERE student_id = $1
               ORDER BY updated_at, id"#,
            student_id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| DetailUpdateRecord {
                id: row.id,
                changes: row.changes.0,
                reason: row.reason,
                updated_by: row.updated_by,
                updated_at: row.updated_at,
            })
            .collect())
    }
}
