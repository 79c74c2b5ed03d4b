//! Keying the index: on start, an index not yet keyed has its stored ID numbers and name digests
//! replaced by their keyed digests, in one transaction that also records the key's fingerprint;
//! an index keyed with another key refuses the node.

use sqlx::PgPool;

use crate::{NationalError, index_key::IndexKey};

/// Rows re-keyed per statement.
const BATCH: i64 = 10_000;

/// What keying found: how many entries and claims it re-keyed now (0 when the index was keyed
/// before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyed {
    pub rekeyed_now: u64,
}

/// Keys the index with `key` if it is not keyed yet; checks the key otherwise.
pub async fn key_index(pool: &PgPool, key: &IndexKey) -> Result<Keyed, NationalError> {
    let mut tx = pool.begin().await?;
    // Two nodes starting at once: the second waits, then finds the index keyed.
    sqlx::query!("LOCK TABLE national.index_keying IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let stored = sqlx::query_scalar!("SELECT fingerprint FROM national.index_keying")
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(fingerprint) = stored {
        if fingerprint != key.fingerprint() {
            return Err(NationalError::Internal(format!(
                "the national index was keyed with another index key (fingerprint {fingerprint}, \
                 this node's is {}): start the node with the key it was keyed with",
                key.fingerprint()
            )));
        }
        return Ok(Keyed { rekeyed_now: 0 });
    }
    let mut rekeyed: u64 = 0;
    let mut after = 0i64;
    loop {
        let rows = sqlx::query!(
            "SELECT id, id_digest, duplicate_digest FROM national.students
             WHERE id > $1 ORDER BY id LIMIT $2",
            after,
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let id_digests: Vec<Option<String>> = rows
            .iter()
            .map(|row| {
                row.id_digest
                    .as_deref()
                    .map(|id| key.id_digest_of_text(id).as_str().to_owned())
            })
            .collect();
        let name_digests: Vec<Vec<u8>> = rows
            .iter()
            .map(|row| key.name_digest_of_bytes(&row.duplicate_digest))
            .collect();
        sqlx::query!(
            "UPDATE national.students s SET id_digest = k.id_digest, duplicate_digest = k.name
             FROM unnest($1::bigint[], $2::text[], $3::bytea[]) AS k(id, id_digest, name)
             WHERE s.id = k.id",
            &ids,
            &id_digests as &[Option<String>],
            &name_digests
        )
        .execute(&mut *tx)
        .await?;
        rekeyed += rows.len() as u64;
        tracing::info!(rekeyed, "keying the national index: entries");
    }
    loop {
        // A clear ID number has 18 characters, a keyed digest 64: each batch re-keyed leaves
        // the set the next one is read from.
        let clear: Vec<String> = sqlx::query_scalar!(
            "SELECT id_digest FROM national.id_claims WHERE length(id_digest) < 64 LIMIT $1",
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        if clear.is_empty() {
            break;
        }
        let keyed: Vec<String> = clear
            .iter()
            .map(|id| key.id_digest_of_text(id).as_str().to_owned())
            .collect();
        sqlx::query!(
            "UPDATE national.id_claims c SET id_digest = k.keyed
             FROM unnest($1::text[], $2::text[]) AS k(clear, keyed)
             WHERE c.id_digest = k.clear",
            &clear,
            &keyed
        )
        .execute(&mut *tx)
        .await?;
        rekeyed += clear.len() as u64;
        tracing::info!(rekeyed, "keying the national index: claims");
    }
    sqlx::query!(
        "INSERT INTO national.index_keying (fingerprint, rekeyed) VALUES ($1, $2)",
        key.fingerprint(),
        rekeyed as i64
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if rekeyed > 0 {
        tracing::info!(
            rekeyed,
            "the national index is keyed: it holds no ID number or name digest in clear"
        );
    }
    Ok(Keyed {
        rekeyed_now: rekeyed,
    })
}
