//! The transfer service wires itself: the saga with its ports (identity's ledger and the school
//! replica in the province; the national relay and calendar registry between provinces), its
//! three loops (deadlines and effects, the relay, the calendar), and its two gRPC services.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use xueji_auth::{Authority, Clock, Level};
use xueji_db::PgPool;
use xueji_policy::PolicyDir;
use xueji_rpc::{CredentialMint, Mount};

use crate::{
    adapters::{IdentityLedger, NationalHub, ReplicaSchoolList},
    api::{TransferApi, peer::PeerApi},
    links::{CalendarSource, RelayLink},
    policy::TransferPolicy,
    saga::{Saga, SagaGauges, SagaParts},
    store::Store,
};

/// What the transfer service needs of the node.
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// The province (2 digits).
    pub province: String,
    /// Identity's ledger (hold, release, move the record).
    pub identity_address: String,
    /// The province's school replica.
    pub schools_address: String,
    /// The national node (relay, calendar), for a provincial node of a federation; `None` on
    /// a standalone node, whose transfers stay inside its province.
    pub national_address: Option<String>,
    /// A folder of province rules replacing the bundled ones.
    pub policy_dir: Option<PathBuf>,
    pub clock: Clock,
    /// How often deadlines, effects and the relay are swept.
    pub sweep: Duration,
    /// How often the national calendar is pulled.
    pub calendar_sync: Duration,
    pub gauges: SagaGauges,
}

/// Mounts the transfer service and starts its loops.
pub async fn mount(
    settings: TransferSettings,
    pool: PgPool,
    credentials: &CredentialMint,
    mount: &mut Mount,
) -> anyhow::Result<()> {
    let province = settings.province.as_str();
    let as_transfers = |audience| {
        credentials.for_service(
            "transfers",
            &format!("service:transfers-{province}"),
            Level::Province,
            &format!("{province}0000"),
            audience,
        )
    };
    // Inside the province the saga holds and moves records through identity and reads the
    // school replica, with the transfer service's own certificate and token.
    let in_province = as_transfers(vec![Authority::Province(province.to_owned())])?;
    // The deployment's policy over the bundled one, checked before anything runs.
    let policy = TransferPolicy::load(PolicyDir::new(settings.policy_dir.clone()))
        .map_err(|error| anyhow::anyhow!("the transfer policy: {error}"))?;
    mount.on_policy_reload(Arc::new(policy.clone()));
    // Between provinces it goes through the national node's relay.
    let national = match &settings.national_address {
        Some(address) => Some(NationalHub::new(
            address,
            &as_transfers(vec![Authority::National])?,
        )?),
        None => None,
    };
    let saga = Saga::new(SagaParts {
        store: Store::new(pool),
        ledger: IdentityLedger::new(&settings.identity_address, province, &in_province)?,
        schools: ReplicaSchoolList::new(&settings.schools_address, province, &in_province)?,
        policy: policy.live,
        clock: settings.clock,
        gauges: settings.gauges,
        province: province.to_owned(),
        notary: in_province.tls.clone(),
        relay: national.clone().map(|link| link as Arc<dyn RelayLink>),
        calendar_source: national.map(|link| link as Arc<dyn CalendarSource>),
    });
    saga.use_kept_calendar()
        .await
        .context("reading the calendar years kept")?;
    mount.spawn(saga.clone().run(settings.sweep));
    mount.spawn(saga.clone().run_relay(settings.sweep));
    mount.spawn(saga.clone().run_calendar(settings.calendar_sync));
    mount.serve(PeerApi::new(saga.clone()).into_service());
    mount.serve(TransferApi::new(saga, province).into_service());
    Ok(())
}

/// Runs the transfers schema's migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    crate::store::migrate(pool)
        .await
        .context("migrating the transfers schema")
}
