//! The identity service wires itself: given the node's pool, its credentials and its settings,
//! it mounts its gRPC services (registration and reads, the ledger transfers use, the change
//! feed, imports, status changes, the school year) and starts its background loops (the
//! outbox to the national index, the school-code follower, the school-year scheduler, the
//! status-change sweeper).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use xueji_auth::{Authority, Clock, Level};
use xueji_db::PgPool;
use xueji_policy::PolicyDir;
use xueji_rpc::{CredentialMint, Mount};

use crate::{
    adapters::{NationalIndexLink, ReplicaSchools},
    api::{
        IdentityApi, certificates::CertificateApi, classes::ClassApi, feed::FeedApi,
        imports::ImportApi, ledger::LedgerApi, school_year::SchoolYearApi,
        status_changes::StatusChangeApi,
    },
    cycle::CycleRunner,
    directory::SchoolDirectory,
    imports::UploadLimits,
    national::Deliverer,
    policy::IdentityPolicy,
    status_changes::ChangeDesk,
    store::Store,
    successions::SuccessionFollower,
};

/// What the identity service needs of the node it runs on.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// The province this node keeps (2 digits).
    pub province: String,
    /// The national index, for the outbox and the national duplicate check.
    pub national_address: String,
    /// The province's school replica.
    pub schools_address: String,
    /// A fixed school list to read instead of the replica (development).
    pub schools_file: Option<PathBuf>,
    /// The node's policy folder: `identity/<file>` there replaces a bundled policy file.
    pub policy_dir: Option<PathBuf>,
    pub clock: Clock,
    /// How often the outbox is delivered.
    pub outbox_interval: Duration,
    /// How often voided school codes are followed.
    pub succession_sync: Duration,
    /// How often the school-year scheduler looks for a step that is due.
    pub cycle_check: Duration,
    /// Students per transaction of the school-year cycle.
    pub cycle_batch: i64,
    /// How often overdue status changes are swept.
    pub status_change_sweep: Duration,
    pub upload_limits: UploadLimits,
    /// Counted as the outbox delivers: accepted and refused messages.
    pub outbox_delivered: Counter,
    pub outbox_rejected: Counter,
}

/// Mounts the identity service on `mount` and answers its outbox deliverer (which tests and
/// the demo drive directly).
pub async fn mount(
    settings: IdentitySettings,
    pool: PgPool,
    credentials: &CredentialMint,
    mount: &mut Mount,
) -> anyhow::Result<Arc<Deliverer>> {
    let province = settings.province.as_str();
    // The deployment's policy over the bundled one, every file checked before anything runs.
    let policy = IdentityPolicy::load(PolicyDir::new(settings.policy_dir.clone()))
        .map_err(|error| anyhow::anyhow!("the identity policy: {error}"))?;
    mount.on_policy_reload(policy.hook());
    let as_identity = |audience| {
        credentials.for_service(
            "identity",
            &format!("service:identity-{province}"),
            Level::Province,
            &format!("{province}0000"),
            audience,
        )
    };
    let store = Store::new(pool.clone());
    // Registration reads schools from the replica (or a fixed list, for development).
    let schools = match &settings.schools_file {
        Some(file) => {
            let directory = Arc::new(SchoolDirectory::default());
            let loaded = crate::fixed_schools::load_schools(file, &store, &directory).await?;
            tracing::info!(schools = loaded, file = %file.display(), "fixed school list loaded");
            directory
        }
        None => Arc::new(SchoolDirectory::with_source(ReplicaSchools::new(
            &settings.schools_address,
            province,
            &as_identity(vec![Authority::Province(province.to_owned())])?,
        )?)),
    };
    // Students follow their school's code when a merger or a category change voids it.
    let follower = Arc::new(SuccessionFollower::new(
        store.clone(),
        schools.clone(),
        province,
    ));
    mount.spawn(follower.run(settings.succession_sync));

    // The province owes the national index its changes through the outbox.
    let link = NationalIndexLink::new(
        &settings.national_address,
        &as_identity(vec![Authority::National])?,
    )?;
    let deliverer = Deliverer::new(
        pool,
        link.clone(),
        settings.outbox_delivered,
        settings.outbox_rejected,
    );
    mount.spawn(deliverer.clone().run(settings.outbox_interval));

    let cycle = Arc::new(
        CycleRunner::new(
            store.clone(),
            policy.school_year.clone(),
            province,
            settings.clock.clone(),
        )
        .with_batch(settings.cycle_batch),
    );
    mount.spawn(cycle.clone().run_scheduler(settings.cycle_check));
    let desk = Arc::new(
        ChangeDesk::new(store.clone(), &policy, province, settings.clock.clone())
            .with_national(link),
    );
    mount.spawn(desk.clone().run_sweeper(settings.status_change_sweep));

    mount.serve(FeedApi::new(store.clone()).into_service());
    mount.serve(
        LedgerApi::new(
            store.clone(),
            schools.clone(),
            cycle.clone(),
            settings.clock.clone(),
        )
        .into_service(),
    );
    let identity = Arc::new(
        IdentityApi::new(store, schools, deliverer.clone(), policy.fields.clone())
            .with_province(province)
            .with_cycle(cycle.clone()),
    );
    mount.serve(StatusChangeApi::new(identity.clone(), desk).into_service());
    mount.serve(ImportApi::new(&identity, settings.upload_limits).into_service());
    mount.serve(ClassApi::new(identity.clone(), cycle.clone()).into_service());
    mount.serve(CertificateApi::new(identity.clone()).into_service());
    mount.serve(SchoolYearApi::new(identity.clone(), cycle).into_service());
    mount.serve(identity.into_service());
    Ok(deliverer)
}

/// Runs the identity schema's migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    crate::store::migrate(pool)
        .await
        .context("migrating the identity schema")
}
