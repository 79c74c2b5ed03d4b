//! The statistics service wires itself: its API (and, on a national node, the intake of the
//! provinces' aggregates), and on a provincial node the consumer of identity's change feed and,
//! in a federation, the reporter of aggregates to the national node.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use xueji_auth::{Authority, Clock, Level};
use xueji_db::PgPool;
use xueji_policy::{Live, PolicyDir, PolicyError, PolicyHook, Prepared};
use xueji_rpc::{CredentialMint, Mount};

use crate::{
    adapters::{IdentityFeed, NationalAggregates, ReplicaPlaces},
    api::{StatsApi, Tier},
    domain::dropouts::{BUNDLED_DROPOUTS, DropoutPolicy},
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
    /// The province's school replica (where a school without counted pupils lies).
    pub schools_address: String,
    /// The national node the aggregates go to, on a provincial node of a federation.
    pub national_address: String,
    /// The node's policy folder: `stats/dropouts.toml` there replaces the bundled one.
    pub policy_dir: Option<PathBuf>,
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
    // The deployment's dropout grace days over the bundled ones, reloadable.
    let policy = DropoutHook::load(PolicyDir::new(settings.policy_dir.clone()))
        .map_err(|error| anyhow::anyhow!("the statistics policy: {error}"))?;
    mount.on_policy_reload(Arc::new(policy.clone()));
    let mut api = StatsApi::new(store, settings.tier, province, settings.clock, policy.live);
    if provincial {
        // An empty school's report is zeros: where it lies comes from the school list.
        let places = ReplicaPlaces::new(
            &settings.schools_address,
            province,
            &credentials.for_service(
                "stats",
                &format!("service:stats-{province}"),
                Level::Province,
                &format!("{province}0000"),
                vec![Authority::Province(province.to_owned())],
            )?,
        )?;
        api = api.with_places(places);
    }
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

/// The dropout grace days in force, and where a reload reads them.
#[derive(Debug, Clone)]
struct DropoutHook {
    live: Live<DropoutPolicy>,
    dir: PolicyDir,
}

impl DropoutHook {
    fn read(dir: &PolicyDir) -> Result<(DropoutPolicy, String), PolicyError> {
        let text = dir.read("stats", "dropouts.toml", BUNDLED_DROPOUTS)?;
        Ok((text.parse(DropoutPolicy::parse)?, text.file))
    }

    fn load(dir: PolicyDir) -> Result<Self, PolicyError> {
        let (policy, _) = Self::read(&dir)?;
        Ok(Self {
            live: Live::new(policy),
            dir,
        })
    }
}

impl PolicyHook for DropoutHook {
    fn prepare(&self) -> Result<Prepared, PolicyError> {
        let (policy, file) = Self::read(&self.dir)?;
        let live = self.live.clone();
        Ok(Prepared {
            files: vec![file],
            apply: Box::new(move || live.replace(policy)),
        })
    }
}
