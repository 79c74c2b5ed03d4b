//! Applying a province's delivery: every message of a batch in order, in one transaction, with
//! its outcome, the notices it raised and the index's own audit entries.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use xueji_codes::RegistryNumber;

use super::{
    Store,
    actor::{DeliveryActor, audit},
    indexing::{
        audit_run, claim_id_number, find_locked, first_time_index, foreign, index_new_students,
        index_student, numbers_of,
    },
};
use crate::{
    NationalError,
    domain::{Delivery, IndexStudent, Message, Outcome},
};

impl Store {
    /// Applies a province's batch in order and answers one outcome per message.
    ///
    /// Most of an intake batch is first-time index entries for numbers nobody has seen; runs of
    /// those are written with a few set-wide statements. Everything else (a replay, an update of
    /// a known student, a claim, a release, anything that will be refused) goes one by one, in
    /// order between the runs, so the effect is exactly that of applying the batch in order.
    pub async fn deliver(
        &self,
        province: &str,
        deliveries: &[Delivery],
        actor: &DeliveryActor,
    ) -> Result<Vec<Outcome>, NationalError> {
        let mut tx = self.pool.begin().await?;
        // Everything a delivery reads, it reads by key. During an intake the index grows by
        // thousands of rows a second and its statistics lag far behind: the planner, believing
        // the tables tiny, scanned the whole inbox and number list for every batch.
        #[allow(clippy::disallowed_methods)] // a setting of this transaction, no table read
        sqlx::query("SELECT set_config('enable_seqscan', 'off', true)")
            .execute(&mut *tx)
            .await?;
        let ids: Vec<uuid::Uuid> = deliveries.iter().map(|d| d.message_id).collect();
        let mut seen: HashMap<uuid::Uuid, (String, serde_json::Value)> = sqlx::query!(
            "SELECT message_id, province, outcome FROM national.inbox WHERE message_id = ANY($1)",
            &ids
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|row| (row.message_id, (row.province, row.outcome)))
        .collect();
        let fresh_numbers: Vec<String> = deliveries
            .iter()
            .filter_map(|delivery| first_time_index(delivery, province))
            .flat_map(|index| numbers_of(index).map(|n| n.as_str().to_owned()))
            .collect();
        // Numbers already indexed, with the province and the message that introduced each.
        let known: HashMap<String, (String, Option<uuid::Uuid>)> = sqlx::query!(
            "SELECT n.number, s.province, s.introduced_by
             FROM national.numbers n JOIN national.students s ON s.id = n.student_id
             WHERE n.number = ANY($1)",
            &fresh_numbers
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|row| (row.number, (row.province, row.introduced_by)))
        .collect();
        // ID numbers a migrated record would claim that someone holds already: such a record
        // goes one by one (granted over an ended holder, or refused with notices).
        let migrated_ids: Vec<String> = deliveries
            .iter()
            .filter_map(|delivery| first_time_index(delivery, province))
            .filter(|index| index.migrated)
            .filter_map(|index| index.id_digest.as_ref().map(|id| id.as_str().to_owned()))
            .collect();
        let claimed: HashSet<String> = sqlx::query_scalar!(
            "SELECT id_digest FROM national.id_claims WHERE id_digest = ANY($1)",
            &migrated_ids
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let applied = serde_json::to_value(Outcome::Applied).expect("outcomes serialize");
        // An introduction applied before: answered like an inbox hit.
        for delivery in deliveries {
            if let Some(index) = first_time_index(delivery, province)
                && let Some((owner, Some(introduced_by))) =
                    known.get(index.registry_number.as_str())
                && *introduced_by == delivery.message_id
            {
                seen.insert(delivery.message_id, (owner.clone(), applied.clone()));
            }
        }

        let mut outcomes = Vec::with_capacity(deliveries.len());
        let mut run: Vec<(uuid::Uuid, &IndexStudent)> = Vec::new();
        let mut run_numbers: HashSet<&str> = HashSet::new();
        let mut run_ids: HashSet<&str> = HashSet::new();
        // A message sent twice in one batch is applied once and answered twice.
        let mut in_batch: HashSet<uuid::Uuid> = HashSet::new();
        for delivery in deliveries {
            if !seen.contains_key(&delivery.message_id)
                && in_batch.insert(delivery.message_id)
                && let Some(index) = first_time_index(delivery, province)
                && numbers_of(index)
                    .all(|n| !known.contains_key(n.as_str()) && !run_numbers.contains(n.as_str()))
                && !(index.migrated
                    && index.id_digest.as_ref().is_some_and(|id| {
                        claimed.contains(id.as_str()) || run_ids.contains(id.as_str())
                    }))
            {
                run_numbers.extend(numbers_of(index).map(RegistryNumber::as_str));
                if index.migrated
                    && let Some(id) = &index.id_digest
                {
                    run_ids.insert(id.as_str());
                }
                run.push((delivery.message_id, index));
                continue;
            }
            index_new_students(&mut tx, province, &run).await?;
            audit_run(&mut tx, actor, province, &run).await?;
            for (message_id, _) in &run {
                seen.insert(*message_id, (province.to_owned(), applied.clone()));
                outcomes.push(Outcome::Applied);
            }
            run.clear();
            run_numbers.clear();
            run_ids.clear();

            if let Some((sender, outcome)) = seen.get(&delivery.message_id) {
                if sender != province {
                    return Err(NationalError::PermissionDenied(format!(
                        "message {} was delivered by another province",
                        delivery.message_id
                    )));
                }
                outcomes.push(serde_json::from_value(outcome.clone()).map_err(|e| {
                    NationalError::Unavailable(format!("stored outcome unreadable: {e}"))
                })?);
                continue;
            }
            let applied = match &delivery.message {
                Message::Index(index) => index_student(&mut tx, province, index).await,
                Message::Claim(claim) => claim_id_number(&mut tx, province, claim).await,
                Message::Release { registry_number } => {
                    release(&mut tx, province, registry_number).await
                }
                Message::Resolve {
                    registry_number,
                    kind,
                    other_registry_number,
                } => {
                    resolve_problem(
                        &mut tx,
                        province,
                        registry_number.as_str(),
                        kind,
                        other_registry_number.as_str(),
                    )
                    .await
                }
                Message::Malformed { reason } => Ok(Outcome::Rejected {
                    reason: format!("the message does not decode: {reason}"),
                }),
            };
            // A message that may never be applied is answered so, for good, and the rest of the
            // batch goes on: one bad message must not hold the province's outbox forever. The
            // checks refusing it run before anything of it is written.
            let outcome = match applied {
                Ok(outcome) => outcome,
                Err(NationalError::PermissionDenied(reason)) => {
                    tracing::warn!(%province, message_id = %delivery.message_id, %reason, "message rejected");
                    Outcome::Rejected { reason }
                }
                Err(other) => return Err(other),
            };
            audit(
                &mut tx,
                actor,
                &format!("national.{}", delivery.message.kind()),
                &format!("message:{}", delivery.message_id),
                serde_json::json!({
                    "province": province,
                    "number": delivery.message.number(),
                    "outcome": &outcome,
                }),
            )
            .await?;
            sqlx::query!(
                "INSERT INTO national.inbox (message_id, province, kind, outcome)
                 VALUES ($1, $2, $3, $4)",
                delivery.message_id,
                province,
                delivery.message.kind(),
                serde_json::to_value(&outcome).expect("outcomes serialize")
            )
            .execute(&mut *tx)
            .await?;
            let stored = serde_json::to_value(&outcome).expect("outcomes serialize");
            seen.insert(delivery.message_id, (province.to_owned(), stored));
            outcomes.push(outcome);
        }
        index_new_students(&mut tx, province, &run).await?;
        audit_run(&mut tx, actor, province, &run).await?;
        outcomes.extend(run.iter().map(|_| Outcome::Applied));
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// A province resolved the problem `kind` between its student and another province's: the
/// pair's notices go, and the other province is told to drop its flag.
async fn resolve_problem(
    conn: &mut PgConnection,
    province: &str,
    number: &str,
    kind: &str,
    other: &str,
) -> Result<Outcome, NationalError> {
    let Some((_, owner)) = find_locked(conn, number).await? else {
        return Ok(Outcome::Applied);
    };
    if owner != province {
        return Err(foreign(number, &owner, province));
    }
    let Some((_, other_province)) = find_locked(conn, other).await? else {
        return Ok(Outcome::Applied);
    };
    super::notices::clear(conn, province, number, kind, &other_province, other).await?;
    Ok(Outcome::Applied)
}

async fn release(
    conn: &mut PgConnection,
    province: &str,
    registry_number: &RegistryNumber,
) -> Result<Outcome, NationalError> {
    let number = registry_number.as_str();
    match find_locked(conn, number).await? {
        Some((_, owner)) if owner != province => Err(foreign(number, &owner, province)),
        Some((id, _)) => {
            sqlx::query!(
                "UPDATE national.students SET status = 'ended', updated_at = now() WHERE id = $1",
                id
            )
            .execute(&mut *conn)
            .await?;
            sqlx::query!("DELETE FROM national.id_claims WHERE student_id = $1", id)
                .execute(&mut *conn)
                .await?;
            Ok(Outcome::Applied)
        }
        // Never indexed: nothing to release.
        None => Ok(Outcome::Applied),
    }
}
