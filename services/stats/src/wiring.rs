//! The statistics service wires itself: its API (and, on a national node, the intake of the
//! provinces' aggregates), and on a provincial node the consumer of identity's change feed and,
//! in a federation, the reporter of aggregates to the national node.

use std::time::Duration;

use anyhow::Context;
use xueji_auth::{Authority, Clock, Level};
use xueji_db::PgPool;
use xueji_rpc::{CredentialMint, Mount};

use crate::{
    adapters::{IdentityFeed, NationalAggregates},
    api::{StatsApi, Tier},
    feed::{Consumer, Reporter},
    store::Store,
};

/// What the statistics service needs of the node.
#[derive(Debug, Clone)]
pub struct StatsSettings {
    /// The node's tier: which figures it keeps and answers.
    pub tier: Tier,
    /// The province (2 digits) of a provincial or standalone node.
    pub province: String,
    /// Identity's change feed, on a node that keeps a province.
    pub identity_address: String,
    /// The national node the aggregates go to, on a provincial node of a federation.
    pub national_address: String,
    pub clock: Clock,
    /// How often the change feed is read.
    pub feed_interval: Duration,
    /// How often aggregates are reported.
    pub report_interval: Duration,
}

/// Mounts the statistics service and starts its loops.
pub fn mount(
    settings: StatsSettings,
    pool: PgPool,
    credentials: &CredentialMint,
    mount: &mut Mount,
) -> anyhow::Result<()> {
    let province = settings.province.as_str();
    let store = Store::new(pool);
    let provincial = matches!(settings.tier, Tier::Province | Tier::Standalone);
    let national = matches!(settings.tier, Tier::National | Tier::Standalone);
    if provincial {
        // Figures come from identity's change feed, read with the stats service's own
        // certificate and token; a provincial node reports its aggregates upwards.
        let as_stats = |audience| {
            credentials.for_service(
                "stats",
                &format!("service:stats-{province}"),
                Level::Province,
                &format!("{province}0000"),
                audience,
            )
        };
        let feed = IdentityFeed::new(
            &settings.identity_address,
            province,
            &as_stats(vec![Authority::Province(province.to_owned())])?,
        )?;
        mount.spawn(Consumer::new(store.clone(), feed).run(settings.feed_interval));
        if settings.tier == Tier::Province {
            let sink = NationalAggregates::new(
                &settings.national_address,
                &as_stats(vec![Authority::National])?,
            )?;
            mount.spawn(Reporter::new(store.clone(), sink, province).run(settings.report_interval));
        }
    }
    let api = StatsApi::new(store, settings.tier, province, settings.clock);
    if national {
        mount.serve(api.clone().national_service());
    }
    mount.serve(api.into_service());
    Ok(())
}

/// Runs the stats schema's migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    crate::store::migrate(pool)
        .await
        .context("migrating the stats schema")
}
