//! Writing the index for a delivery: students introduced (one by one, or a run of first-time
//! entries in a few set-wide statements), numbers added, claims on ID numbers, and the
//! index's audit entries for each. Called by `delivery.rs` inside the delivery's transaction.

use sqlx::PgConnection;
use xueji_codes::{RegistryKind, RegistryNumber};

use super::{
    actor::{DeliveryActor, audit},
    entries::{ClaimOwner, add_number},
    notices::{flag_duplicate_names, notice},
};
use crate::{
    NationalError,
    domain::{Claim, Delivery, IndexStatus, IndexStudent, Message, Outcome, may_introduce},
};

/// The index row holding `number`, locked, with its province.
pub(super) async fn find_locked(
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

pub(super) fn foreign(number: &str, owner: &str, province: &str) -> NationalError {
    NationalError::PermissionDenied(format!(
        "registry number {number} belongs to province {owner}; province {province} may not \
         change it"
    ))
}

/// The index entry a message introduces, if it is a first-time entry of a live student whose
/// number this province may introduce, or a migrated record (numbers of the previous system,
/// its ID number claimed with it): the kind a set-wide run can write.
pub(super) fn first_time_index<'a>(
    delivery: &'a Delivery,
    province: &str,
) -> Option<&'a IndexStudent> {
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

pub(super) fn numbers_of(index: &IndexStudent) -> impl Iterator<Item = &RegistryNumber> {
    std::iter::once(&index.registry_number).chain(&index.aliases)
}

/// Writes a run of first-time index entries (numbers checked unknown, distinct within the run)
/// with their numbers, each entry naming the message that introduced it, then flags
/// cross-province name duplicates as [`index_student`] does. A number indexed meanwhile by
/// another province's delivery fails the statement, and the whole delivery is retried (then that
/// message goes one by one and is refused properly).
pub(super) async fn index_new_students(
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

pub(super) async fn index_student(
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

/// One audit entry for a set-wide run of first-time index entries: the numbers it introduced.
pub(super) async fn audit_run(
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

pub(super) async fn claim_id_number(
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
    // 升学 across provinces: a record that finished its stage in another province continues
    // here, with its number (籍随人走、终身不变).
    if owner.student_id != id
        && owner.province != province
        && IndexStatus::parse(&owner.status) == Some(IndexStatus::Finished)
        && let Some(granted) =
            super::continuation::continue_here(conn, province, (id, number), &owner, claim).await?
    {
        return Ok(granted);
    }
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
