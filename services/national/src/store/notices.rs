//! Notices the index raises for provinces: the same student (by ID number or by name, gender
//! and birth date) held in two provinces.

use sqlx::PgConnection;

use super::actor::{DeliveryActor, audit};
use crate::NationalError;

/// Same name, gender and birth date as a live record in another province, one of the two
/// without an ID number, for each of `registry_numbers` (just written by `province`) with its
/// digest: a notice to each side.
pub(super) async fn flag_duplicate_names(
    conn: &mut PgConnection,
    province: &str,
    registry_numbers: &[String],
    digests: &[String],
) -> Result<(), NationalError> {
    // Two provinces indexing the same digest at once would each miss the other's uncommitted
    // row: the second waits here for the first to commit, then sees it. Locks are taken in one
    // order, so that two deliveries with overlapping digests cannot deadlock.
    let mut lock_order = digests.to_vec();
    lock_order.sort();
    lock_order.dedup();
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended(d, 0)) FROM unnest($1::text[]) AS d",
        &lock_order
    )
    .execute(&mut *conn)
    .await?;
    // Each digest is probed through its index: the planner cannot turn the fenced lateral
    // subquery into a hash join over the whole index table. The written records are found by
    // number through `national.numbers` (students have no index on the number).
    let others = sqlx::query!(
        r#"SELECT u.registry_number AS "mine!", o.province AS "province!",
                  o.registry_number AS "registry_number!"
           FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(registry_number, digest, n)
           JOIN national.numbers k ON k.number = u.registry_number
           JOIN national.students m ON m.id = k.student_id
           CROSS JOIN LATERAL (
               SELECT s.id, s.province, s.registry_number FROM national.students s
               WHERE s.duplicate_digest = decode(u.digest, 'hex') AND s.province <> $1
                     AND s.status <> 'ended'
                     -- Namesakes with two ID numbers are two children (DESIGN §4 (3)).
                     AND (s.id_digest IS NULL OR m.id_digest IS NULL)
               OFFSET 0
           ) AS o
           ORDER BY u.n, o.id"#,
        province,
        registry_numbers,
        digests
    )
    .fetch_all(&mut *conn)
    .await?;
    for other in others {
        flag_pair(
            conn,
            province,
            &other.mine,
            &other.province,
            &other.registry_number,
        )
        .await?;
    }
    Ok(())
}

/// A name duplicate between two provinces' records: a notice to each side.
async fn flag_pair(
    conn: &mut PgConnection,
    province: &str,
    registry_number: &str,
    other_province: &str,
    other_registry_number: &str,
) -> Result<(), NationalError> {
    let detail = "same name, gender and birth date as a live record in another province";
    notice(
        conn,
        province,
        registry_number,
        "duplicate_name",
        other_province,
        other_registry_number,
        detail,
    )
    .await?;
    notice(
        conn,
        other_province,
        other_registry_number,
        "duplicate_name",
        province,
        registry_number,
        detail,
    )
    .await
}

/// Queues a notice for `province` unless the same one is queued already.
pub(super) async fn notice(
    conn: &mut PgConnection,
    province: &str,
    registry_number: &str,
    kind: &str,
    other_province: &str,
    other_registry_number: &str,
    detail: &str,
) -> Result<(), NationalError> {
    let known = sqlx::query_scalar!(
        "SELECT 1 AS \"one!\" FROM national.notices
         WHERE province = $1 AND registry_number = $2 AND kind = $3 AND other_registry_number = $4",
        province,
        registry_number,
        kind,
        other_registry_number
    )
    .fetch_optional(&mut *conn)
    .await?;
    if known.is_some() {
        return Ok(());
    }
    sqlx::query!(
        "WITH counter AS (
             INSERT INTO national.notice_counters (province, last) VALUES ($1, 1)
             ON CONFLICT (province) DO UPDATE SET last = notice_counters.last + 1
             RETURNING last
         )
         INSERT INTO national.notices
             (province, sequence, registry_number, kind, other_province, other_registry_number,
              detail)
         SELECT $1, last, $2, $3, $4, $5, $6 FROM counter",
        province,
        registry_number,
        kind,
        other_province,
        other_registry_number,
        detail
    )
    .execute(&mut *conn)
    .await?;
    // The index raises notices itself, as a consequence of the delivery that found them.
    let index = DeliveryActor {
        describe: "service:national-index".into(),
        jurisdiction: format!("{province}0000"),
        request_id: String::new(),
    };
    audit(
        conn,
        &index,
        "national.notice",
        &format!("number:{registry_number}"),
        serde_json::json!({
            "province": province,
            "kind": kind,
            "other_province": other_province,
            "other_registry_number": other_registry_number,
        }),
    )
    .await
}

/// `province` resolved the problem `kind` between its student `registry_number` and
/// `other_registry_number` of `other_province`: the other province is told to drop its flag on
/// the pair. The pair's original notices stay, so that the same pair is never flagged again.
pub(super) async fn clear(
    conn: &mut PgConnection,
    province: &str,
    registry_number: &str,
    kind: &str,
    other_province: &str,
    other_registry_number: &str,
) -> Result<(), NationalError> {
    let cleared = format!("cleared_{kind}");
    notice(
        conn,
        other_province,
        other_registry_number,
        &cleared,
        province,
        registry_number,
        &format!("resolved in province {province}"),
    )
    .await
}
