//! The audit log: every change writes an entry in the same transaction as the change; a single
//! sealer chains committed entries into a SHA-256 hash chain moments later; [`verify`] walks the
//! chain and reports every edited, deleted or reordered entry.
//!
//! Why a sealer: chaining at write time would make every writer wait for the previous writer's
//! commit (the chain head is one row). Writers instead insert entries, which never conflict and
//! are never updated, and the sealer, holding the head row's lock, chains those of finished
//! transactions in (transaction id, entry id) order and appends one seal row per round naming
//! them with their hashes. Two sealers (two replicas of a service) queue on that lock, so the
//! chain cannot fork.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

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
    /// The writing transaction's id: the entry's place in sealing order, not part of its hash.
    xid: String,
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

/// Seals up to `limit` committed entries, the oldest transactions' first. Returns how many it
/// sealed.
pub async fn seal_batch(pool: &PgPool, limit: i64) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let head = sqlx::query!(
        r#"SELECT seq, hash, last_xid::text AS "last_xid!", last_id
           FROM audit.chain_head FOR UPDATE"#
    )
    .fetch_one(&mut *tx)
    .await?;
    // Only transactions older than every running one: they are finished, and no entry can
    // appear behind the watermark later (see migration 0002).
    let entries = sqlx::query_as!(
        StoredEntry,
        r#"SELECT id, xid::text AS "xid!", (extract(epoch FROM at) * 1000000)::bigint AS "at_micros!",
                  actor, jurisdiction, action, object,
                  before::text AS before, after::text AS after, request_id
           FROM audit.entries
           WHERE (xid, id) > ($1::text::xid8, $2)
             AND xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
           ORDER BY xid, id LIMIT $3"#,
        head.last_xid,
        head.last_id,
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = entries.last() else {
        return Ok(0);
    };
    let mut seq = head.seq;
    let mut hash = head.hash.clone();
    let (mut ids, mut hashes) = (vec![], vec![]);
    for entry in &entries {
        seq += 1;
        hash = chain_hash(&hash, seq, entry);
        ids.push(entry.id);
        hashes.push(hash.clone());
    }
    sqlx::query!(
        "INSERT INTO audit.seals (first_seq, prev_hash, entry_ids, hashes) VALUES ($1, $2, $3, $4)",
        head.seq + 1,
        head.hash,
        &ids,
        &hashes,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE audit.chain_head SET seq = $1, hash = $2, last_xid = $3::text::xid8, last_id = $4",
        seq,
        &hash,
        last.xid,
        last.id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(entries.len() as u64)
}

/// Seals every entry committed before the call. Used by tests and before verification.
///
/// An entry waits while an older transaction anywhere in the cluster is still running (see
/// [`seal_batch`]); this waits with it, up to `SEAL_ALL_PATIENCE`, and then returns what it
/// could seal: a transaction left open for that long is an operator's problem, and
/// [`verify`] reports the entries still unsealed.
pub async fn seal_all(pool: &PgPool) -> Result<u64, sqlx::Error> {
    const SEAL_ALL_PATIENCE: Duration = Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + SEAL_ALL_PATIENCE;
    let mut total = 0;
    loop {
        let sealed = seal_batch(pool, 5_000).await?;
        total += sealed;
        if sealed > 0 {
            continue;
        }
        // The newest entry in chain order is one step down the index, compared with the head
        // in the same statement.
        let waiting = sqlx::query_scalar!(
            r#"SELECT (e.xid, e.id) > (h.last_xid, h.last_id) AS "waiting!"
               FROM (SELECT xid, id FROM audit.entries ORDER BY xid DESC, id DESC LIMIT 1) AS e,
                    audit.chain_head h"#
        )
        .fetch_optional(pool)
        .await?
        .unwrap_or(false);
        if !waiting || tokio::time::Instant::now() >= deadline {
            return Ok(total);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
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
    /// Chain positions jump between two seals: a whole sealing round was deleted.
    Gap { expected_seq: i64, found_seq: i64 },
    /// A seal does not continue from the one before it: seals were replaced or reordered.
    BrokenLink { seq: i64 },
    /// The entry sealed at this position is gone.
    Deleted { seq: i64, id: i64 },
    /// The entry no longer matches the hash sealed for its position: it was edited, or moved
    /// here from another position.
    Edited { seq: i64, id: i64 },
    /// An entry behind the sealer's watermark that no seal names: slipped in afterwards.
    Unchained { id: i64 },
    /// The chain head does not match the last seal: seals were removed from the end.
    HeadMismatch { head_seq: i64, last_seq: i64 },
    /// The national node witnessed another hash at this position: the chain was rewritten
    /// from here on, even if every hash after it was recomputed.
    Rewritten { seq: i64 },
    /// The national node witnessed the chain this long, and it is shorter now.
    RolledBack { witnessed_seq: i64, last_seq: i64 },
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap {
                expected_seq,
                found_seq,
            } => write!(
                f,
                "chain positions {expected_seq}..{} are missing (a sealing round was deleted)",
                found_seq - 1
            ),
            Self::BrokenLink { seq } => write!(
                f,
                "the seal starting at entry {seq} does not follow the one before it \
                 (seals replaced or reordered)"
            ),
            Self::Deleted { seq, id } => {
                write!(f, "entry {seq} (id {id}) was deleted after it was sealed")
            }
            Self::Edited { seq, id } => write!(
                f,
                "entry {seq} (id {id}) does not match its seal (edited, or moved from another \
                 position)"
            ),
            Self::Unchained { id } => write!(
                f,
                "entry id {id} sits among sealed entries but no seal names it (added afterwards)"
            ),
            Self::HeadMismatch { head_seq, last_seq } => write!(
                f,
                "the chain head says {head_seq} entries but the last seal ends at {last_seq} \
                 (seals removed from the end, or the head was altered)"
            ),
            Self::Rewritten { seq } => write!(
                f,
                "entry {seq} does not carry the hash the national node witnessed for it: the \
                 chain was rewritten from there (its hashes recomputed)"
            ),
            Self::RolledBack {
                witnessed_seq,
                last_seq,
            } => write!(
                f,
                "the national node witnessed {witnessed_seq} entries, but the chain ends at \
                 {last_seq} (entries removed and the chain rebuilt)"
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

/// The sealed end of the chain: its length and last hash, what a node has the national node
/// witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: Vec<u8>,
}

pub async fn head(pool: &PgPool) -> Result<Head, sqlx::Error> {
    let row = sqlx::query!("SELECT seq, hash FROM audit.chain_head")
        .fetch_one(pool)
        .await?;
    Ok(Head {
        seq: row.seq,
        hash: row.hash,
    })
}

/// Walks the whole chain in order and recomputes every link. `progress` is called with the
/// number of entries checked so far, about every 10,000 entries.
pub async fn verify(pool: &PgPool, progress: impl FnMut(u64)) -> Result<VerifyReport, sqlx::Error> {
    verify_witnessed(pool, &BTreeMap::new(), progress).await
}

/// Like [`verify`], and also against heads a witness (the national node) recorded: position →
/// hash. A chain rewritten with every hash recomputed passes [`verify`], but not this.
pub async fn verify_witnessed(
    pool: &PgPool,
    witnessed: &BTreeMap<i64, Vec<u8>>,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, sqlx::Error> {
    use futures::TryStreamExt;

    let mut report = VerifyReport::default();
    let mut expected_seq = 1i64;
    let mut running = vec![0u8; 32];
    let mut last_progress = 0;
    // One connection streams the seals while the other reads each seal's entries.
    let mut seal_conn = pool.acquire().await?;
    let mut entry_conn = pool.acquire().await?;
    let mut seals = sqlx::query!(
        "SELECT first_seq, prev_hash, entry_ids, hashes FROM audit.seals ORDER BY first_seq"
    )
    .fetch(&mut *seal_conn);
    while let Some(seal) = seals.try_next().await? {
        if seal.first_seq != expected_seq {
            report.problems.push(ChainProblem::Gap {
                expected_seq,
                found_seq: seal.first_seq,
            });
        }
        if seal.prev_hash != running {
            report.problems.push(ChainProblem::BrokenLink {
                seq: seal.first_seq,
            });
        }
        let entries: HashMap<i64, StoredEntry> = sqlx::query_as!(
            StoredEntry,
            r#"SELECT id, xid::text AS "xid!",
                      (extract(epoch FROM at) * 1000000)::bigint AS "at_micros!",
                      actor, jurisdiction, action, object,
                      before::text AS before, after::text AS after, request_id
               FROM audit.entries WHERE id = ANY($1)"#,
            &seal.entry_ids
        )
        .fetch_all(&mut *entry_conn)
        .await?
        .into_iter()
        .map(|entry| (entry.id, entry))
        .collect();
        let mut prev = seal.prev_hash;
        for (offset, (id, hash)) in seal.entry_ids.iter().zip(seal.hashes).enumerate() {
            let seq = seal.first_seq + offset as i64;
            if witnessed.get(&seq).is_some_and(|seen| *seen != hash) {
                report.problems.push(ChainProblem::Rewritten { seq });
            }
            match entries.get(id) {
                None => report.problems.push(ChainProblem::Deleted { seq, id: *id }),
                Some(entry) if chain_hash(&prev, seq, entry) != hash => {
                    report.problems.push(ChainProblem::Edited { seq, id: *id })
                }
                Some(_) => {}
            }
            prev = hash;
        }
        report.sealed += seal.entry_ids.len() as u64;
        expected_seq = seal.first_seq + seal.entry_ids.len() as i64;
        running = prev;
        if report.sealed - last_progress >= 10_000 {
            last_progress = report.sealed;
            progress(report.sealed);
        }
    }
    drop(seals);
    let head = sqlx::query!(
        r#"SELECT seq, hash, last_xid::text AS "last_xid!", last_id FROM audit.chain_head"#
    )
    .fetch_one(&mut *seal_conn)
    .await?;
    if head.seq != expected_seq - 1 || head.hash != running {
        report.problems.push(ChainProblem::HeadMismatch {
            head_seq: head.seq,
            last_seq: expected_seq - 1,
        });
    }
    report.head_hash = hex::encode(&head.hash);
    if let Some((&witnessed_seq, _)) = witnessed.last_key_value()
        && witnessed_seq > expected_seq - 1
    {
        report.problems.push(ChainProblem::RolledBack {
            witnessed_seq,
            last_seq: expected_seq - 1,
        });
    }
    let unchained = sqlx::query_scalar!(
        r#"SELECT e.id AS "id!" FROM audit.entries e
           WHERE (e.xid, e.id) <= ($1::text::xid8, $2)
             AND NOT EXISTS (SELECT 1 FROM audit.chain c WHERE c.entry_id = e.id)
           ORDER BY e.id"#,
        head.last_xid,
        head.last_id
    )
    .fetch_all(&mut *seal_conn)
    .await?;
    report.problems.extend(
        unchained
            .into_iter()
            .map(|id| ChainProblem::Unchained { id }),
    );
    report.unsealed = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM audit.entries WHERE (xid, id) > ($1::text::xid8, $2)"#,
        head.last_xid,
        head.last_id
    )
    .fetch_one(&mut *seal_conn)
    .await? as u64;
    Ok(report)
}
