//! Applying a province's delivery: every message of a batch in order, in one transaction, with
//! its outcome, the notices it raised and the index's own audit entries.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use xueji_codes::{RegistryKind, RegistryNumber};

use super::{
    Store,
    notices::{flag_duplicate_names, notice},
};
use crate::{
    NationalError,
    domain::{Claim, Delivery, IndexStatus, IndexStudent, Message, Outcome, may_introduce},
};

/// Who a delivery's audit entries name: the delivering province's service and its request.
#[derive(Debug, Clone)]
pub struct DeliveryActor {
    pub describe: String,
    pub jurisdiction: String,
    pub request_id: String,
}

impl DeliveryActor {
    /// A province's delivery with no request behind it (tests, tools).
    pub fn province(province: &str) -> Self {
        Self {
            describe: format!("service:identity-{province}"),
            jurisdiction: format!("{province}0000"),
            request_id: String::new(),
        }
    }
}

/// Writes one audit entry in the delivery's transaction.
pub(super) async fn audit(
    conn: &mut PgConnection,
    actor: &DeliveryActor,
    action: &str,
    object: &str,
    after: serde_json::Value,
) -> Result<(), NationalError> {
    xueji_audit::record(
        conn,
        &xueji_audit::Entry {
            actor: &actor.describe,
            jurisdiction: &actor.jurisdiction,
            action,
            object,
            before: None,
            after: Some(after),
            request_id: &actor.request_id,
        },
    )
    .await?;
    Ok(())
}

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

/// The index row holding `number`, locked, with its province.
async fn find_locked(
    conn: &mut PgConnection,
    number: &str,
) -> Result<Option<(i64, String)>, NationalError> {
    Ok(sqlx::query!(
        "SELECT s.id, s.province FROM national.numbers n
         JOIN national.students s ON s.id = n.student_id
         WHERE n.number = $1 FOR UPDATE OF s",
        number
    )
    .fetch_optional(conn)
    .await?
    .map(|row| (row.id, row.province)))
}

fn foreign(number: &str, owner: &str, province: &str) -> NationalError {
    NationalError::PermissionDenied(format!(
        "registry number {number} belongs to province {owner}; province {province} may not \
         change it"
    ))
}

/// The index entry a message introduces, if it is a first-time entry of a live student whose
/// number this province may introduce, or a migrated record (numbers of the previous system,
/// its ID number claimed with it): the kind a set-wide run can write.
fn first_time_index<'a>(delivery: &'a Delivery, province: &str) -> Option<&'a IndexStudent> {
    match &delivery.message {
        Message::Index(index)
            if index.status != IndexStatus::Ended
                && (index.migrated
                    || (index.aliases.is_empty()
                        && may_introduce(&index.registry_number, province))) =>
        {
            Some(index)
        }
        _ => None,
    }
}

fn numbers_of(index: &IndexStudent) -> impl Iterator<Item = &RegistryNumber> {
    std::iter::once(&index.registry_number).chain(&index.aliases)
}

/// Writes a run of first-time index entries (numbers checked unknown, distinct within the run)
/// with their numbers, each entry naming the message that introduced it, then flags
/// cross-province name duplicates as [`index_student`] does. A number indexed meanwhile by
/// another province's delivery fails the statement, and the whole delivery is retried (then that
/// message goes one by one and is refused properly).
async fn index_new_students(
    conn: &mut PgConnection,
    province: &str,
    run: &[(uuid::Uuid, &IndexStudent)],
) -> Result<(), NationalError> {
    if run.is_empty() {
        return Ok(());
    }
    let mut message_ids = Vec::with_capacity(run.len());
    let mut numbers = Vec::with_capacity(run.len());
    let mut id_digests = Vec::with_capacity(run.len());
    let mut digests = Vec::with_capacity(run.len());
    let mut statuses = Vec::with_capacity(run.len());
    let (mut alias_owners, mut aliases) = (Vec::new(), Vec::new());
    let (mut claim_owners, mut claims) = (Vec::new(), Vec::new());
    for (message_id, index) in run {
        for alias in &index.aliases {
            alias_owners.push(index.registry_number.as_str().to_owned());
            aliases.push(alias.as_str().to_owned());
        }
        if index.migrated
            && let Some(id) = &index.id_digest
        {
            claim_owners.push(index.registry_number.as_str().to_owned());
            claims.push(id.as_str().to_owned());
        }
        message_ids.push(*message_id);
        numbers.push(index.registry_number.as_str().to_owned());
        id_digests.push(index.id_digest.as_ref().map(|id| id.as_str().to_owned()));
        digests.push(index.duplicate_digest.clone());
        statuses.push(index.status.as_str().to_owned());
    }
    sqlx::query!(
        r#"WITH student AS (
               INSERT INTO national.students
                   (province, registry_number, id_digest, duplicate_digest, status, introduced_by)
               SELECT $1, registry_number, id_digest, decode(duplicate_digest, 'hex'), status,
                      message_id
               FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[])
                   AS u(registry_number, id_digest, duplicate_digest, status, message_id)
               RETURNING id, registry_number
           ), number AS (
               INSERT INTO national.numbers (number, student_id)
               SELECT registry_number, id FROM student
               UNION ALL
               SELECT a.alias, s.id FROM unnest($7::text[], $8::text[]) AS a(owner, alias)
               JOIN student s ON s.registry_number = a.owner
               RETURNING number
           ), claim AS (
               -- A migrated record's ID number, claimed with it (checked unclaimed before the
               -- run; a claim taken meanwhile fails the statement and the delivery is retried).
               INSERT INTO national.id_claims (id_digest, student_id)
               SELECT c.id_digest, s.id FROM unnest($9::text[], $10::text[]) AS c(owner, id_digest)
               JOIN student s ON s.registry_number = c.owner
               RETURNING id_digest
           )
           SELECT (SELECT count(*) FROM number) + (SELECT count(*) FROM claim) AS "written!""#,
        province,
        &numbers,
        &id_digests as &[Option<String>],
        &digests,
        &statuses,
        &message_ids,
        &alias_owners,
        &aliases,
        &claim_owners,
        &claims,
    )
    .fetch_one(&mut *conn)
    .await?;
    flag_duplicate_names(conn, province, &numbers, &digests).await
}

async fn index_student(
    conn: &mut PgConnection,
    province: &str,
    index: &IndexStudent,
) -> Result<Outcome, NationalError> {
    if index.migrated {
        return index_migrated(conn, province, index).await;
    }
    let mut existing = None;
    for number in std::iter::once(&index.registry_number).chain(&index.aliases) {
        if let Some((id, owner)) = find_locked(conn, number.as_str()).await? {
            if owner != province {
                return Err(foreign(number.as_str(), &owner, province));
            }
            existing = Some(id);
            break;
        }
    }
    // A `G` is issued only after the national check granted its ID number to this very
    // student: no province promotes itself past the check.
    if index.registry_number.kind() == RegistryKind::G {
        let claimed = index
            .number_id_digest
            .as_ref()
            .map(|digest| digest.as_str())
            .unwrap_or_default();
        let granted = match existing {
            Some(id) => {
                sqlx::query_scalar!(
                    r#"SELECT EXISTS (SELECT 1 FROM national.id_claims
                                  WHERE student_id = $1 AND id_digest = $2) AS "granted!""#,
                    id,
                    claimed
                )
                .fetch_one(&mut *conn)
                .await?
            }
            None => false,
        };
        if !granted {
            return Err(NationalError::PermissionDenied(format!(
                "{} enters the national index only through a granted claim on ID number \
                 {claimed}, and none was granted to this student",
                index.registry_number
            )));
        }
    }
    if existing.is_none() && !may_introduce(&index.registry_number, province) {
        return Err(NationalError::PermissionDenied(format!(
            "registry number {} was not issued in province {province}",
            index.registry_number
        )));
    }
    let id = write_entry(conn, province, index, existing).await?;
    if index.status == IndexStatus::Ended {
        sqlx::query!("DELETE FROM national.id_claims WHERE student_id = $1", id)
            .execute(&mut *conn)
            .await?;
    } else {
        flag_duplicate_names(
            conn,
            province,
            &[index.registry_number.as_str().to_owned()],
            std::slice::from_ref(&index.duplicate_digest),
        )
        .await?;
    }
    Ok(Outcome::Applied)
}

/// Writes the index entry of `index` (over `existing`, or new) with every number it carries;
/// answers the entry's id.
async fn write_entry(
    conn: &mut PgConnection,
    province: &str,
    index: &IndexStudent,
    existing: Option<i64>,
) -> Result<i64, NationalError> {
    let id_digest = index.id_digest.as_ref().map(|id| id.as_str());
    let id = match existing {
        Some(id) => {
            sqlx::query!(
                "UPDATE national.students
                 SET registry_number = $2, id_digest = $3, duplicate_digest = decode($4, 'hex'),
                     status = $5,
                     updated_at = now()
                 WHERE id = $1",
                id,
                index.registry_number.as_str(),
                id_digest,
                index.duplicate_digest,
                index.status.as_str()
            )
            .execute(&mut *conn)
            .await?;
            id
        }
        None => {
            sqlx::query_scalar!(
                "INSERT INTO national.students
                     (province, registry_number, id_digest, duplicate_digest, status)
                 VALUES ($1, $2, $3, decode($4, 'hex'), $5) RETURNING id",
                province,
                index.registry_number.as_str(),
                id_digest,
                index.duplicate_digest,
                index.status.as_str()
            )
            .fetch_one(&mut *conn)
            .await?
        }
    };
    for number in numbers_of(index) {
        add_number(conn, id, number.as_str(), province).await?;
    }
    Ok(id)
}

/// A record migrated from the province's previous system: indexed with its numbers (a `G`
/// included: the previous system issued it) and its ID number claimed with it. Nothing another
/// province holds is overwritten: a number or a live claim of another province answers
/// `Refused`, with a `duplicate_id_number` notice to each side (a problem record in both).
async fn index_migrated(
    conn: &mut PgConnection,
    province: &str,
    index: &IndexStudent,
) -> Result<Outcome, NationalError> {
    let mut existing = None;
    for number in numbers_of(index) {
        if let Some((id, owner)) = find_locked(conn, number.as_str()).await? {
            if owner != province {
                let holder = sqlx::query_scalar!(
                    "SELECT registry_number FROM national.students WHERE id = $1",
                    id
                )
                .fetch_one(&mut *conn)
                .await?;
                return refuse_both(conn, province, index, &owner, &holder).await;
            }
            existing = Some(id);
            break;
        }
    }
    let id = write_entry(conn, province, index, existing).await?;
    let id_digest = index.id_digest.as_ref().map(|id| id.as_str());
    if index.status == IndexStatus::Ended {
        return Ok(Outcome::Applied);
    }
    if let Some(id_digest) = id_digest {
        let owner = claim_and_find_owner(conn, id_digest, id).await?;
        if owner.student_id != id && IndexStatus::parse(&owner.status) != Some(IndexStatus::Ended) {
            return refuse_both(
                conn,
                province,
                index,
                &owner.province,
                &owner.registry_number,
            )
            .await;
        }
        if owner.student_id != id {
            sqlx::query!(
                "UPDATE national.id_claims SET student_id = $2, claimed_at = now()
                 WHERE id_digest = $1",
                id_digest,
                id
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    flag_duplicate_names(
        conn,
        province,
        &[index.registry_number.as_str().to_owned()],
        std::slice::from_ref(&index.duplicate_digest),
    )
    .await?;
    Ok(Outcome::Applied)
}

/// A migrated record that another province's record contests (a number or a resident ID
/// number): a `duplicate_id_number` notice to each side, and the message refused.
async fn refuse_both(
    conn: &mut PgConnection,
    province: &str,
    index: &IndexStudent,
    owner_province: &str,
    owner_number: &str,
) -> Result<Outcome, NationalError> {
    let number = index.registry_number.as_str();
    let detail = format!(
        "a record migrated by province {province} and a record of province {owner_province} \
         hold the same resident ID number or registry number"
    );
    notice(
        conn,
        province,
        number,
        "duplicate_id_number",
        owner_province,
        owner_number,
        &detail,
    )
    .await?;
    notice(
        conn,
        owner_province,
        owner_number,
        "duplicate_id_number",
        province,
        number,
        &detail,
    )
    .await?;
    Ok(Outcome::Refused {
        owner_province: owner_province.to_owned(),
        owner_registry_number: owner_number.to_owned(),
    })
}

/// Records `number` for student `id`; a number held by another student is refused.
async fn add_number(
    conn: &mut PgConnection,
    id: i64,
    number: &str,
    province: &str,
) -> Result<(), NationalError> {
    let holder = sqlx::query_scalar!(
        "WITH added AS (
             INSERT INTO national.numbers (number, student_id) VALUES ($1, $2)
             ON CONFLICT (number) DO NOTHING RETURNING student_id
         )
         SELECT student_id FROM added
         UNION ALL SELECT student_id FROM national.numbers WHERE number = $1",
        number,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    if holder.iter().any(|holder| *holder != Some(id)) {
        return Err(NationalError::PermissionDenied(format!(
            "registry number {number} is already indexed for another student; province \
             {province} may not reuse it"
        )));
    }
    Ok(())
}

/// One audit entry for a set-wide run of first-time index entries: the numbers it introduced.
async fn audit_run(
    conn: &mut PgConnection,
    actor: &DeliveryActor,
    province: &str,
    run: &[(uuid::Uuid, &IndexStudent)],
) -> Result<(), NationalError> {
    if run.is_empty() {
        return Ok(());
    }
    let numbers: Vec<&str> = run
        .iter()
        .map(|(_, index)| index.registry_number.as_str())
        .collect();
    audit(
        conn,
        actor,
        "national.index_students",
        &format!("province:{province}"),
        serde_json::json!({ "province": province, "introduced": numbers }),
    )
    .await
}

async fn claim_id_number(
    conn: &mut PgConnection,
    province: &str,
    claim: &Claim,
) -> Result<Outcome, NationalError> {
    let number = claim.registry_number.as_str();
    let id = match find_locked(conn, number).await? {
        Some((_, owner)) if owner != province => return Err(foreign(number, &owner, province)),
        Some((id, _)) => id,
        None => {
            // The index message normally arrives first; a claim alone still indexes its student.
            if !may_introduce(&claim.registry_number, province) {
                return Err(NationalError::PermissionDenied(format!(
                    "registry number {number} was not issued in province {province}"
                )));
            }
            let id = sqlx::query_scalar!(
                "INSERT INTO national.students
                     (province, registry_number, id_digest, duplicate_digest, status)
                 VALUES ($1, $2, $3, '', 'pending') RETURNING id",
                province,
                number,
                claim.id_digest.as_str()
            )
            .fetch_one(&mut *conn)
            .await?;
            add_number(conn, id, number, province).await?;
            id
        }
    };
    let id_digest = claim.id_digest.as_str();
    let owner = claim_and_find_owner(conn, id_digest, id).await?;
    let granted =
        owner.student_id == id || IndexStatus::parse(&owner.status) == Some(IndexStatus::Ended);
    if !granted {
        let detail = "the resident ID number is claimed by two provinces".to_owned();
        notice(
            conn,
            province,
            number,
            "duplicate_id_number",
            &owner.province,
            &owner.registry_number,
            &detail,
        )
        .await?;
        notice(
            conn,
            &owner.province,
            &owner.registry_number,
            "duplicate_id_number",
            province,
            number,
            &detail,
        )
        .await?;
        return Ok(Outcome::Refused {
            owner_province: owner.province,
            owner_registry_number: owner.registry_number,
        });
    }
    let promoted = RegistryNumber::g(&claim.id_number);
    // A corrected ID number replaces the old one: the student gives up its older claims.
    sqlx::query!(
        "DELETE FROM national.id_claims WHERE student_id = $1 AND id_digest <> $2",
        id,
        id_digest
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE national.id_claims SET student_id = $2, claimed_at = now() WHERE id_digest = $1",
        id_digest,
        id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE national.students
         SET registry_number = $2, id_digest = $3, status = 'active', updated_at = now()
         WHERE id = $1",
        id,
        promoted.as_str(),
        id_digest
    )
    .execute(&mut *conn)
    .await?;
    add_number(conn, id, promoted.as_str(), province).await?;
    Ok(Outcome::Granted)
}

/// Who holds an ID number's claim once student `id` claimed it (itself, or an earlier holder),
/// locked. The primary key decides between concurrent claims: a second inserter waits for the
/// first to commit, then finds its row.
async fn claim_and_find_owner(
    conn: &mut PgConnection,
    id_digest: &str,
    id: i64,
) -> Result<ClaimOwner, NationalError> {
    sqlx::query!(
        "INSERT INTO national.id_claims (id_digest, student_id) VALUES ($1, $2)
         ON CONFLICT (id_digest) DO NOTHING",
        id_digest,
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_as!(
        ClaimOwner,
        "SELECT c.student_id, s.province, s.registry_number, s.status
         FROM national.id_claims c JOIN national.students s ON s.id = c.student_id
         WHERE c.id_digest = $1 FOR UPDATE OF c",
        id_digest
    )
    .fetch_one(&mut *conn)
    .await?)
}

struct ClaimOwner {
    student_id: i64,
    province: String,
    registry_number: String,
    status: String,
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
