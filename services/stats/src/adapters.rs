//! The statistics service's ports wired to gRPC: identity's ChangeFeed inside its province and
//! the national node's NationalStats, over mutual TLS with the stats service's own certificate
//! and token.

use std::sync::Arc;

use tonic::Status;
use xueji_proto::identity::v1::{self as ipb, change_feed_client::ChangeFeedClient};
use xueji_proto::stats::v1::{self as pb, national_stats_client::NationalStatsClient};
use xueji_rpc::{ExpectedServer, PeerChannel, PeerCredentials};

use crate::{
    StatsError,
    feed::{AggregateSink, FeedBatch, FeedSource, decode_event},
    store::ReportedRow,
};

fn unavailable(what: &str, status: Status) -> StatsError {
    StatsError::Unavailable(format!(
        "{what} did not answer ({}); retry later",
        status.message()
    ))
}

/// Identity's change feed.
#[derive(Debug, Clone)]
pub struct IdentityFeed {
    client: ChangeFeedClient<PeerChannel>,
}

impl IdentityFeed {
    pub fn new(
        address: &str,
        province: &str,
        credentials: &PeerCredentials,
    ) -> Result<Arc<Self>, StatsError> {
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
    client: NationalStatsClient<PeerChannel>,
}

impl NationalAggregates {
    pub fn new(address: &str, credentials: &PeerCredentials) -> Result<Arc<Self>, StatsError> {
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

/// Where a school lies, for a school the statistics have no pupil of yet (an empty school's
/// report is zeros, not "not found"): the province's school replica (`SchoolIntake.GetSchool`).
pub trait SchoolPlaces: Send + Sync + std::fmt::Debug {
    /// The school under `code` as the list gives it; `None` when the list does not hold it.
    fn place<'a>(
        &'a self,
        code: &'a xueji_codes::SchoolCode,
    ) -> futures::future::BoxFuture<'a, Result<Option<SchoolPlace>, StatsError>>;
}

/// Where a school lies and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolPlace {
    /// The county-level division.
    pub county: String,
    pub name: String,
}

/// The replica, as the statistics read it.
#[derive(Debug, Clone)]
pub struct ReplicaPlaces {
    client: xueji_client::replica::ReplicaClient,
}

impl ReplicaPlaces {
    pub fn new(
        address: &str,
        province: &str,
        credentials: &PeerCredentials,
    ) -> Result<Arc<Self>, StatsError> {
        Ok(Arc::new(Self {
            client: xueji_client::replica::replica_client(credentials, address, province)?,
        }))
    }
}

impl SchoolPlaces for ReplicaPlaces {
    fn place<'a>(
        &'a self,
        code: &'a xueji_codes::SchoolCode,
    ) -> futures::future::BoxFuture<'a, Result<Option<SchoolPlace>, StatsError>> {
        Box::pin(async move {
            let school = xueji_client::replica::published_school(&self.client, code)
                .await
                .map_err(StatsError::Unavailable)?;
            Ok(school
                .and_then(|school| school.profile)
                .map(|profile| SchoolPlace {
                    county: profile.division,
                    name: profile.name,
                }))
        })
    }
}
