//! The witness log of audit chain heads: each node sends the head of its audit chain, signed
//! with its authority's token key, every few minutes; the national node keeps them, so that a
//! node's chain rewritten in its own database (every hash recomputed) still shows.

use chrono::{DateTime, Utc};
use xueji_auth::{Authority, TokenVerifier};
use xueji_pki::{SpiffeId, Tier};

use crate::{NationalError, store::Store};

/// What a node signs: its authority, the chain's length and last hash, and when.
pub fn statement(authority: &Authority, seq: i64, hash_hex: &str, signed_at: &str) -> String {
    format!("xueji-audit-head|{authority}|{seq}|{hash_hex}|{signed_at}")
}

/// A head as sent, before it is checked.
#[derive(Debug, Clone)]
pub struct SignedHead {
    pub seq: i64,
    pub hash_hex: String,
    pub signed_at: String,
    pub key_id: String,
    pub signature: String,
}

/// A head as witnessed.
#[derive(Debug, Clone)]
pub struct WitnessedHead {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub signed_at: DateTime<Utc>,
    pub witnessed_at: DateTime<Utc>,
}

/// Checks that `head` is signed by the authority of `peer` (its province's key for a province's
/// service, the national node's for the national node's).
pub fn check_signature(
    keys: &TokenVerifier,
    peer: &SpiffeId,
    head: &SignedHead,
) -> Result<(DateTime<Utc>, Vec<u8>), NationalError> {
    let authority = match &peer.tier {
        Tier::National => Authority::National,
        Tier::Province(code) => Authority::Province(code.clone()),
    };
    let hash = hex::decode(&head.hash_hex)
        .ok()
        .filter(|bytes| bytes.len() == 32)
        .ok_or_else(|| NationalError::invalid("hash", "must be 64 hex characters"))?;
    let signed_at = DateTime::parse_from_rfc3339(&head.signed_at)
        .map_err(|_| NationalError::invalid("signed_at", "must be an RFC 3339 time"))?
        .with_timezone(&Utc);
    let key = keys
        .key(&head.key_id)
        .filter(|key| key.issuer == authority)
        .ok_or_else(|| {
            NationalError::PermissionDenied(format!(
                "key {} is not a key of {authority}, whose head this is",
                head.key_id
            ))
        })?;
    let signed = statement(&authority, head.seq, &head.hash_hex, &head.signed_at);
    if !key.verifies_statement(signed.as_bytes(), &head.signature) {
        return Err(NationalError::PermissionDenied(
            "the head's signature does not verify".into(),
        ));
    }
    Ok((signed_at, hash))
}

impl Store {
    /// Records `node`'s head at `seq`; answers the longest chain witnessed for it. The same head
    /// again changes nothing; another hash at a witnessed position, or a chain shorter than one
    /// witnessed, is refused.
    pub async fn witness(
        &self,
        node: &str,
        head: &SignedHead,
        signed_at: DateTime<Utc>,
        hash: &[u8],
    ) -> Result<i64, NationalError> {
        let mut tx = self.pool().begin().await?;
        // One head of a node at a time.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended('audit_witness:' || $1, 0))",
            node
        )
        .execute(&mut *tx)
        .await?;
        let last = sqlx::query!(
            "SELECT seq, hash FROM national.audit_witness WHERE node = $1
             ORDER BY seq DESC LIMIT 1",
            node
        )
        .fetch_optional(&mut *tx)
        .await?;
        let same = sqlx::query_scalar!(
            "SELECT hash FROM national.audit_witness WHERE node = $1 AND seq = $2",
            node,
            head.seq
        )
        .fetch_optional(&mut *tx)
        .await?;
        match (same, last) {
            (Some(witnessed), Some(last)) if witnessed == hash => return Ok(last.seq),
            (Some(_), _) => {
                tracing::error!(%node, seq = head.seq, "ALARM: an audit chain was rewritten");
                return Err(NationalError::FailedPrecondition(format!(
                    "another hash was witnessed at position {} of this chain: it was rewritten",
                    head.seq
                )));
            }
            (None, Some(last)) if last.seq > head.seq => {
                tracing::error!(%node, seq = head.seq, witnessed = last.seq, "ALARM: an audit chain went back");
                return Err(NationalError::FailedPrecondition(format!(
                    "the chain was witnessed {} entries long; {} is shorter",
                    last.seq, head.seq
                )));
            }
            _ => {}
        }
        sqlx::query!(
            "INSERT INTO national.audit_witness (node, seq, hash, signed_at, key_id, signature)
             VALUES ($1, $2, $3, $4, $5, $6)",
            node,
            head.seq,
            hash,
            signed_at,
            head.key_id,
            head.signature
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(head.seq)
    }

    /// `node`'s witnessed heads after position `after`, oldest first.
    pub async fn witnessed(
        &self,
        node: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<WitnessedHead>, NationalError> {
        Ok(sqlx::query_as!(
            WitnessedHead,
            "SELECT seq, hash, signed_at, witnessed_at FROM national.audit_witness
             WHERE node = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            node,
            after,
            limit
        )
        .fetch_all(self.pool())
        .await?)
    }
}
