//! The node's side of the audit witness: every few minutes the head of the node's audit chain,
//! signed with its authority's token key, goes to the national node, which keeps it; `xueji
//! audit verify` reads the witnessed heads back and checks the chain against them, so that a
//! chain rewritten in the node's own database (every hash recomputed) still shows.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use xueji_auth::{Authority, Level, TokenSigner};
use xueji_db::PgPool;
use xueji_proto::national::v1::{self as pb, national_index_client::NationalIndexClient};
use xueji_rpc::ExpectedServer;

use crate::config::NodeConfig;

/// A node's link to the witness.
#[derive(Debug, Clone)]
pub struct AuditWitness {
    client: NationalIndexClient<xueji_rpc::PeerChannel>,
    signer: Arc<TokenSigner>,
    pool: PgPool,
    /// Heads witnessed, and attempts that failed (metrics).
    witnessed: Counter,
    failures: Counter,
}

impl AuditWitness {
    /// The witness at `national_address`, reached as the service that keeps the node's chain:
    /// identity on a provincial node, the school registry on the national node.
    pub fn new(
        config: &NodeConfig,
        national_address: &str,
        signer: Arc<TokenSigner>,
        pool: PgPool,
    ) -> anyhow::Result<Self> {
        let province_division = format!("{}0000", config.province);
        let (service, user, level, jurisdiction) = if config.is_provincial() {
            (
                "identity",
                format!("service:audit-{}", config.province),
                Level::Province,
                province_division.as_str(),
            )
        } else {
            (
                "schools",
                "service:audit-national".into(),
                Level::Ministry,
                "",
            )
        };
        let credentials = config.credential_mint(signer.clone()).for_service(
            service,
            &user,
            level,
            jurisdiction,
            vec![Authority::National],
        )?;
        let channel =
            credentials.channel(national_address, ExpectedServer::national("national"))?;
        Ok(Self {
            client: NationalIndexClient::new(channel),
            signer,
            pool,
            witnessed: Counter::default(),
            failures: Counter::default(),
        })
    }

    /// Counts heads witnessed and failed attempts on these counters.
    pub fn counting(mut self, witnessed: Counter, failures: Counter) -> Self {
        self.witnessed = witnessed;
        self.failures = failures;
        self
    }

    /// Sends the chain's head now; answers its position (`None` for an empty chain).
    pub async fn send(&self) -> anyhow::Result<Option<i64>> {
        let head = xueji_audit::head(&self.pool).await?;
        if head.seq == 0 {
            return Ok(None);
        }
        let hash = hex::encode(&head.hash);
        let signed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let statement =
            xueji_national::witness::statement(self.signer.issuer(), head.seq, &hash, &signed_at);
        self.client
            .clone()
            .witness_audit_head(pb::WitnessAuditHeadRequest {
                seq: u64::try_from(head.seq).unwrap_or_default(),
                hash,
                signed_at,
                key_id: self.signer.kid(),
                signature: self.signer.sign_statement(statement.as_bytes()),
            })
            .await
            .map_err(|status| {
                anyhow::anyhow!(
                    "the national node did not witness the audit head: {}",
                    status.message()
                )
            })?;
        Ok(Some(head.seq))
    }

    /// Sends the head every `interval` while it moves, until the task is dropped.
    pub async fn run(self, interval: Duration) {
        let mut last_sent = None;
        loop {
            tokio::time::sleep(interval).await;
            let head = match xueji_audit::head(&self.pool).await {
                Ok(head) => head.seq,
                Err(error) => {
                    tracing::warn!(%error, "reading the audit head failed");
                    continue;
                }
            };
            if Some(head) == last_sent {
                continue;
            }
            match self.send().await {
                Ok(sent) => {
                    self.witnessed.inc();
                    last_sent = sent;
                }
                Err(error) => {
                    self.failures.inc();
                    tracing::warn!(%error, "audit head not witnessed; retrying");
                }
            }
        }
    }

    /// Every head witnessed for this node: position → hash.
    pub async fn witnessed(&self) -> anyhow::Result<BTreeMap<i64, Vec<u8>>> {
        let mut heads = BTreeMap::new();
        let mut after = 0;
        loop {
            let page = self
                .client
                .clone()
                .list_witnessed_heads(pb::ListWitnessedHeadsRequest {
                    after_seq: after,
                    page_size: 0,
                })
                .await
                .map_err(|status| {
                    anyhow::anyhow!(
                        "the national node did not answer the witnessed heads: {}",
                        status.message()
                    )
                })?
                .into_inner()
                .heads;
            let Some(last) = page.last().map(|head| head.seq) else {
                return Ok(heads);
            };
            for head in page {
                let hash = hex::decode(&head.hash).context("a witnessed hash is not hex")?;
                heads.insert(i64::try_from(head.seq).unwrap_or(i64::MAX), hash);
            }
            after = last;
        }
    }
}
