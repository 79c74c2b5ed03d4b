//! The audit log: every change writes an entry in the same transaction as the change; a single
//! sealer chains committed entries into a SHA-256 hash chain moments later; [`verify`] walks the
//! chain and reports every edited, deleted or reordered entry.
//!
//! Why a sealer: chaining at write time would make every writer wait for the previous writer's
//! commit (the chain head is one row). Writers instead insert unsealed rows, which never
//! conflict, and the sealer, holding the head row's lock, appends them in commit-visible order.
//! Two sealers (two replicas of a service) queue on that lock, so the chain cannot fork.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

/// The schema this crate's migrations own.
pub const SCHEMA: &str = "audit";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or upgrades the audit schema.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    xueji_db::migrate_schema(pool, SCHEMA, &MIGRATOR).await
}

/// One change, as the audit log keeps it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Who: the caller's description, e.g. `county:350102/approver/alice`.
    pub actor: &'a str,
    /// The caller's jurisdiction code.
    pub jurisdiction: &'a str,
    /// What, as `service.verb`, e.g. `identity.approve_registration`.
    pub action: &'a str,
    /// Which object, e.g. `student:L350102201509010042`.
    pub object: &'a str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// The request (trace) id the change was made under.
    pub request_id: &'a str,
}

/// Writes an entry on the caller's connection, inside the caller's transaction.
pub async fn record(conn: &mut PgConnection, entry: &Entry<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT audit.record($1, $2, $3, $4, $5, $6, $7) AS "id!""#,
        entry.actor,
        entry.jurisdiction,
        entry.action,
        entry.object,
        entry.before,
        entry.after,
        entry.request_id,
    )
    .fetch_one(conn)
    .await
}

/// An entry as read back for sealing and verification.
struct StoredEntry {
    id: i64,
    at_micros: i64,
    actor: String,
    jurisdiction: String,
    action: String,
    object: String,
    before: Option<String>,
    after: Option<String>,
    request_id: String,
}

/// The chain hash of an entry at position `seq` after `prev_hash`. Every field is
/// length-prefixed so that no two different entries serialize alike.
fn chain_hash(prev_hash: &[u8], seq: i64, entry: &StoredEntry) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(seq.to_be_bytes());
    hasher.update(entry.id.to_be_bytes());
    hasher.update(entry.at_micros.to_be_bytes());
    for field in [
        Some(entry.actor.as_str()),
        Some(entry.jurisdiction.as_str()),
        Some(entry.action.as_str()),
        Some(entry.object.as_str()),
        entry.before.as_deref(),
        entry.after.as_deref(),
        Some(entry.request_id.as_str()),
    ] {
        match field {
            None => hasher.update([0u8]),
            Some(text) => {
                hasher.update([1u8]);
                hasher.update((text.len() as u64).to_be_bytes());
                hasher.update(text.as_bytes());
            }
        }
    }
    hasher.finalize().to_vec()
}

/// Seals up to `limit` committed entries. Returns how many it sealed.
pub async fn seal_batch(pool: &PgPool, limit: i64) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The sealer only ever touches a batch of entries by key. Statistics of a log growing by
    // thousands of rows a second lag behind it, and the planner would then hash-join the batch
    // against a scan of the whole log, slower with every entry.
    sqlx::query(
        "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
                set_config('enable_mergejoin', 'off', true)",
    )
        .execute(&mut *tx)
        .await?;
    let head = sqlx::query!("SELECT seq, hash FROM audit.chain_head FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    let entries = sqlx::query_as!(
        StoredEntry,
        r#"SELECT id, (extract(epoch FROM at) * 1000000)::bigint AS "at_micros!",
                  actor, jurisdiction, action, object,
                  before::text AS before, after::text AS after, request_id
           FROM audit.entries WHERE seq IS NULL ORDER BY id LIMIT $1"#,
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    if entries.is_empty() {
        return Ok(0);
    }
    let mut seq = head.seq;
    let mut hash = head.hash;
    let (mut ids, mut seqs, mut prevs, mut hashes) = (vec![], vec![], vec![], vec![]);
    for entry in &entries {
        seq += 1;
        let next = chain_hash(&hash, seq, entry);
        ids.push(entry.id);
        seqs.push(seq);
        prevs.push(std::mem::replace(&mut hash, next.clone()));
        hashes.push(next);
    }
    sqlx::query!(
        "UPDATE audit.entries AS e SET seq = s.seq, prev_hash = s.prev_hash, hash = s.hash
         FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])
              AS s(id, seq, prev_hash, hash)
         WHERE e.id = s.id",
        &ids,
        &seqs,
        &prevs,
        &hashes,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE audit.chain_head SET seq = $1, hash = $2",
        seq,
        &hash
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(entries.len() as u64)
}

/// Seals until nothing is left. Used by tests and before verification.
pub async fn seal_all(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let sealed = seal_batch(pool, 5_000).await?;
        if sealed == 0 {
            return Ok(total);
        }
        total += sealed;
    }
}

/// Runs the sealer until the task is dropped or aborted: a batch every `interval`, at once again
/// while batches come back full.
pub async fn run_sealer(pool: PgPool, interval: Duration) {
    const BATCH: i64 = 5_000;
    loop {
        match seal_batch(&pool, BATCH).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "audit sealer failed; retrying"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// Something wrong in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainProblem {
    /// Chain positions jump: entries between were deleted.
    Gap { expected_seq: i64, found_seq: i64 },
    /// The entry does not continue the chain: entries were reordered or replaced.
    BrokenLink { seq: i64, id: i64 },
    /// The entry's content no longer matches its hash: it was edited.
    Edited { seq: i64, id: i64 },
    /// The chain head does not match the last entry: entries were removed from the end.
    HeadMismatch { head_seq: i64, last_seq: i64 },
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap {
                expected_seq,
                found_seq,
            } => write!(
                f,
                "entries {expected_seq}..{} are missing (deleted)",
                found_seq - 1
            ),
            Self::BrokenLink { seq, id } => write!(
                f,
                "entry {seq} (id {id}) does not follow the entry before it (reordered or replaced)"
            ),
            Self::Edited { seq, id } => {
                write!(f, "entry {seq} (id {id}) was edited after it was sealed")
            }
            Self::HeadMismatch { head_seq, last_seq } => write!(
                f,
                "the chain head says {head_seq} entries but the last entry is {last_seq} \
                 (entries removed from the end, or the head was altered)"
            ),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub sealed: u64,
    pub unsealed: u64,
    pub head_hash: String,
    pub problems: Vec<ChainProblem>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks the whole chain in order and recomputes every link. `progress` is called with the
/// number of entries checked so far, every 10,000 entries.
pub async fn verify(
    pool: &PgPool,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, sqlx::Error> {
    use futures::TryStreamExt;

    let mut report = VerifyReport::default();
    let mut expected_seq = 1i64;
    let mut running = vec![0u8; 32];
    let mut conn = pool.acquire().await?;
    let mut rows = sqlx::query!(
        r#"SELECT id, seq AS "seq!", prev_hash AS "prev_hash!", hash AS "hash!",
                  (extract(epoch FROM at) * 1000000)::bigint AS "at_micros!",
                  actor, jurisdiction, action, object,
                  before::text AS before, after::text AS after, request_id
           FROM audit.entries WHERE seq IS NOT NULL ORDER BY seq"#
    )
    .fetch(&mut *conn);
    let mut last_seq = 0;
    while let Some(row) = rows.try_next().await? {
        if row.seq != expected_seq {
            report.problems.push(ChainProblem::Gap {
                expected_seq,
                found_seq: row.seq,
            });
        }
        if row.prev_hash != running {
            report.problems.push(ChainProblem::BrokenLink {
                seq: row.seq,
                id: row.id,
            });
        }
        let entry = StoredEntry {
            id: row.id,
            at_micros: row.at_micros,
            actor: row.actor,
            jurisdiction: row.jurisdiction,
            action: row.action,
            object: row.object,
            before: row.before,
            after: row.after,
            request_id: row.request_id,
        };
        if chain_hash(&row.prev_hash, row.seq, &entry) != row.hash {
            report.problems.push(ChainProblem::Edited {
                seq: row.seq,
                id: row.id,
            });
        }
        running = row.hash;
        expected_seq = row.seq + 1;
        last_seq = row.seq;
        report.sealed += 1;
        if report.sealed % 10_000 == 0 {
            progress(report.sealed);
        }
    }
    drop(rows);
    let head = sqlx::query!("SELECT seq, hash FROM audit.chain_head")
        .fetch_one(&mut *conn)
        .await?;
    if head.seq != last_seq || head.hash != running {
        report.problems.push(ChainProblem::HeadMismatch {
            head_seq: head.seq,
            last_seq,
        });
    }
    report.head_hash = hex::encode(&head.hash);
    report.unsealed =
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM audit.entries WHERE seq IS NULL"#)
            .fetch_one(&mut *conn)
            .await? as u64;
    Ok(report)
}
