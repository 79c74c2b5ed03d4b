//! The consumer of identity's change feed and the reporter of the province's aggregates to the
//! national node. Both run in the node's background, behind links the node wires (gRPC with
//! the stats service's own certificate and token): stats never reads another service's
//! tables.

use std::{sync::Arc, time::Duration};

use chrono::NaiveDate;
use xueji_proto::identity::v1 as ipb;

use crate::{
    StatsError,
    domain::{ChangeKind, Event, Gender, Person, Placement, Profile},
    store::{ReportedRow, Store},
};

/// The feed's name in `stats.feed_positions`.
pub const IDENTITY_FEED: &str = "identity";
/// Events asked for per read.
const READ_LIMIT: u32 = 5000;

/// One read of the feed.
#[derive(Debug, Clone)]
pub struct FeedBatch {
    pub events: Vec<Event>,
    /// The last position read (events or not).
    pub read_through: u64,
    /// The feed's head.
    pub head: u64,
}

/// Where events come from: identity's ChangeFeed.
#[tonic::async_trait]
pub trait FeedSource: Send + Sync {
    async fn read(&self, after: u64, limit: u32) -> Result<FeedBatch, StatsError>;
}

/// Where a province's aggregates go: the national node's NationalStats.
#[tonic::async_trait]
pub trait AggregateSink: Send + Sync {
    async fn report(
        &self,
        province: &str,
        position: u64,
        rows: Vec<ReportedRow>,
    ) -> Result<bool, StatsError>;
}

/// Reads the feed from the stored position and applies it, batch by batch.
pub struct Consumer {
    store: Store,
    source: Arc<dyn FeedSource>,
}

impl Consumer {
    pub fn new(store: Store, source: Arc<dyn FeedSource>) -> Self {
        Self { store, source }
    }

    /// Applies one batch; answers whether the feed was caught up.
    pub async fn step(&self) -> Result<bool, StatsError> {
        let position = self.store.position(IDENTITY_FEED).await?;
        let batch = self.source.read(position, READ_LIMIT).await?;
        if batch.read_through <= position {
            return Ok(true);
        }
        self.store
            .apply_read(IDENTITY_FEED, &batch.events, batch.read_through)
            .await?;
        Ok(batch.read_through >= batch.head)
    }

    /// Until the feed is caught up.
    pub async fn catch_up(&self) -> Result<(), StatsError> {
        while !self.step().await? {}
        Ok(())
    }

    /// Forever: batches back to back while behind, then every `idle`.
    pub async fn run(self, idle: Duration) {
        loop {
            match self.step().await {
                Ok(false) => continue,
                Ok(true) => {}
                Err(error) => tracing::warn!(%error, "the stats feed consumer will retry"),
            }
            tokio::time::sleep(idle).await;
        }
    }
}

/// Reports the province's aggregates whenever the feed position moved.
pub struct Reporter {
    store: Store,
    sink: Arc<dyn AggregateSink>,
    province: String,
}

impl Reporter {
    pub fn new(store: Store, sink: Arc<dyn AggregateSink>, province: &str) -> Self {
        Self {
            store,
            sink,
            province: province.to_owned(),
        }
    }

    /// Reports now when the position moved past `last`; answers the position reported.
    pub async fn report_if_moved(&self, last: Option<u64>) -> Result<Option<u64>, StatsError> {
        let position = self.store.position(IDENTITY_FEED).await?;
        if last == Some(position) {
            return Ok(last);
        }
        let rows = self.store.rows_to_report(&self.province).await?;
        self.sink.report(&self.province, position, rows).await?;
        Ok(Some(position))
    }

    pub async fn run(self, every: Duration) {
        let mut last = None;
        loop {
            match self.report_if_moved(last).await {
                Ok(reported) => last = reported,
                Err(error) => tracing::warn!(%error, "reporting aggregates will be retried"),
            }
            tokio::time::sleep(every).await;
        }
    }
}

fn bad(field: &str, value: &str) -> StatsError {
    StatsError::Internal(format!("the feed sent an unknown {field}: {value:?}"))
}

fn date(field: &str, text: &str) -> Result<NaiveDate, StatsError> {
    text.parse().map_err(|_| bad(field, text))
}

fn placement(wire: ipb::Placement) -> Result<Placement, StatsError> {
    let gender = match wire.gender.as_str() {
        "male" => Gender::Male,
        "female" => Gender::Female,
        other => return Err(bad("gender", other)),
    };
    let grade = u8::try_from(wire.grade)
        .ok()
        .filter(|g| (1..=12).contains(g))
        .ok_or_else(|| bad("grade", &wire.grade.to_string()))?;
    Ok(Placement {
        school: wire.school_code,
        county: wire.county,
        grade,
        gender,
        profile: Profile {
            ethnicity: wire.ethnicity,
            migrant_child: wire.migrant_child,
            left_behind_child: wire.left_behind_child,
            entry_route: wire.entry_route,
            birth_date: Some(date("birth_date", &wire.birth_date)?),
            missing: wire.missing_fields,
        },
    })
}

/// A feed event as the domain counts it; an unknown value is an error, never a default.
pub fn decode_event(wire: ipb::ChangeEvent) -> Result<Event, StatsError> {
    let kind = ChangeKind::parse(&wire.kind).ok_or_else(|| bad("kind", &wire.kind))?;
    let person = wire
        .to
        .as_ref()
        .or(wire.from.as_ref())
        .map(|p| Person {
            registry_number: p.registry_number.clone(),
            name: p.name.clone(),
        })
        .unwrap_or_default();
    Ok(Event {
        position: wire.position,
        student: wire.student_id.to_string(),
        on: date("on", &wire.on)?,
        kind,
        from: wire.from.map(placement).transpose()?,
        to: wire.to.map(placement).transpose()?,
        person,
    })
}
