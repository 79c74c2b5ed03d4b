//! The stats service's wiring and links: identity's ChangeFeed inside its province and the
//! national node's NationalStats, over mutual TLS with the stats service's own certificate and
//! token.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use xueji_auth::{Authority, Level, TokenSigner};

use tonic::{Status, service::interceptor::InterceptedService, transport::Channel};
use xueji_proto::identity::v1::{self as ipb, change_feed_client::ChangeFeedClient};
use xueji_proto::stats::v1::{self as pb, national_stats_client::NationalStatsClient};
use xueji_rpc::{BearerToken, ExpectedServer};
use xueji_schools::links::PeerCredentials;
use xueji_stats::{
    StatsError,
    api::{StatsApi, Tier},
    feed::{AggregateSink, Consumer, FeedBatch, FeedSource, Reporter, decode_event},
    store::{ReportedRow, Store},
};

use crate::{config::NodeConfig, links::credentials};

/// The stats service of this node: its API, and on a provincial node the consumer of
/// identity's feed and (province tier) the reporter of aggregates to the national node.
pub(crate) fn stats_service(
    config: &NodeConfig,
    signer: &Arc<TokenSigner>,
    pool: sqlx::PgPool,
    identity_address: &str,
    national_address: &str,
) -> anyhow::Result<(StatsApi, Vec<JoinHandle<()>>)> {
    let province = config.province.as_str();
    let division = format!("{province}0000");
    let store = Store::new(pool);
    let tier = match config.tier {
        crate::config::Tier::Province => Tier::Province,
        crate::config::Tier::National => Tier::National,
        crate::config::Tier::Standalone => Tier::Standalone,
    };
    let mut tasks = Vec::new();
    if config.is_provincial() {
        // Figures come from identity's change feed, read with the stats service's own
        // certificate and token; a provincial node reports its aggregates upwards.
        let user = format!("service:stats-{province}");
        let own = vec![Authority::Province(province.to_owned())];
        let as_stats = credentials(
            config,
            signer,
            "stats",
            &user,
            Level::Province,
            &division,
            own,
        )?;
        let feed = IdentityFeed::new(identity_address, province, &as_stats)?;
        let consumer = Consumer::new(store.clone(), feed);
        tasks.push(tokio::spawn(
            consumer.run(Duration::from_millis(config.stats_feed_ms)),
        ));
        if config.tier == crate::config::Tier::Province {
            let national = vec![Authority::National];
            let to_national = credentials(
                config,
                signer,
                "stats",
                &user,
                Level::Province,
                &division,
                national,
            )?;
            let sink = NationalAggregates::new(national_address, &to_national)?;
            let reporter = Reporter::new(store.clone(), sink, province);
            tasks.push(tokio::spawn(
                reporter.run(Duration::from_millis(config.stats_report_ms)),
            ));
        }
    }
    let api = StatsApi::new(store, tier, province, config.clock.clone());
    Ok((api, tasks))
}

fn unavailable(what: &str, status: Status) -> StatsError {
    StatsError::Unavailable(format!("{what} did not answer: {}", status.message()))
}

/// Identity's change feed.
#[derive(Debug, Clone)]
pub struct IdentityFeed {
    client: ChangeFeedClient<InterceptedService<Channel, BearerToken>>,
}

impl IdentityFeed {
    pub fn new(
        address: &str,
        province: &str,
        credentials: &PeerCredentials,
    ) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            client: ChangeFeedClient::new(
                credentials.channel(address, ExpectedServer::province(province, "identity"))?,
            )
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES),
        }))
    }
}

#[tonic::async_trait]
impl FeedSource for IdentityFeed {
    async fn read(&self, after: u64, limit: u32) -> Result<FeedBatch, StatsError> {
        let answer = self
            .client
            .clone()
            .read_changes(ipb::ReadChangesRequest {
                after_position: after,
                limit,
            })
            .await
            .map_err(|s| unavailable("the identity change feed", s))?
            .into_inner();
        Ok(FeedBatch {
            events: answer
                .events
                .into_iter()
                .map(decode_event)
                .collect::<Result<_, _>>()?,
            read_through: answer.read_through,
            head: answer.head_position,
        })
    }
}

/// The national node's intake of aggregates.
#[derive(Debug, Clone)]
pub struct NationalAggregates {
    client: NationalStatsClient<InterceptedService<Channel, BearerToken>>,
}

impl NationalAggregates {
    pub fn new(address: &str, credentials: &PeerCredentials) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            client: NationalStatsClient::new(
                credentials.channel(address, ExpectedServer::national("national"))?,
            ),
        }))
    }
}

#[tonic::async_trait]
impl AggregateSink for NationalAggregates {
    async fn report(
        &self,
        province: &str,
        position: u64,
        rows: Vec<ReportedRow>,
    ) -> Result<bool, StatsError> {
        let rows = rows
            .into_iter()
            .map(|row| pb::AggregateRow {
                unit: row.unit,
                month: row.month.format("%Y-%m").to_string(),
                direction: row.direction,
                kind: row.kind,
                students: row.students,
            })
            .collect();
        let answer = self
            .client
            .clone()
            .report_aggregates(pb::ReportAggregatesRequest {
                province: province.to_owned(),
                feed_position: position,
                rows,
            })
            .await
            .map_err(|s| unavailable("the national node", s))?;
        Ok(answer.into_inner().accepted)
    }
}
