//! A running node: its database (given or embedded), its services on one mTLS gRPC port, and
//! its background tasks (the audit sealer, the replica sync, the outbox deliverer).
//!
//! A provincial node serves identity and the school intake with its replica; the national node
//! serves the national index and the school authority; a standalone node serves all of them.
//! Any node may run a subset (`services`). The services reach each other, in one process or
//! across nodes, over the same mutual-TLS gRPC API a peer node would use.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::service::{RoutesBuilder, interceptor::InterceptedService};
use xueji_auth::{Authority, Level};
use xueji_codes::Divisions;
use xueji_db::{ClusterOptions, Durability, EmbeddedPostgres, PgPool};
use xueji_identity::{
    api::{
        IdentityApi, imports::ImportApi, ledger::LedgerApi, school_year::SchoolYearApi,
        status_changes::StatusChangeApi,
    },
    cycle::CycleRunner,
    directory::SchoolDirectory,
    domain::school_year::SchoolYearPolicy,
    national::Deliverer,
    status_changes::ChangeDesk,
    store::Store,
    successions::SuccessionFollower,
};
use xueji_national::{api::NationalApi, provinces::ProvinceClients};
use xueji_rpc::{Authenticator, ServerConfig, TlsSource};
use xueji_schools::{
    api::{authority::AuthorityApi, intake::IntakeApi},
    links::{ProvinceIdentities, WorkloadSource, Workloads},
    replica::Replicator,
    store::{national::NationalStore, provincial::ProvincialStore},
};
use xueji_telemetry::metrics::NodeMetrics;

use crate::{
    config::{NodeConfig, Service},
    links::{NationalIndexLink, ReplicaSchools, credentials},
    pki, sample,
    transfer_links::{IdentityLedger, NationalHub, ReplicaSchoolList},
    witness::AuditWitness,
};

/// The database a node uses: a server it was given, or a cluster of its own.
pub struct Database {
    pub url: String,
    pub pool: PgPool,
    /// Kept alive while the node runs; stopping the node stops it.
    pub cluster: Option<EmbeddedPostgres>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("embedded", &self.cluster.is_some())
            .finish()
    }
}

impl Database {
    /// Connects to `config.database_url`, or starts the embedded cluster in `config.data_dir`.
    pub async fn open(config: &NodeConfig, durability: Durability) -> anyhow::Result<Self> {
        // A configuration built in code (demo, bench, tests) meets the rules one read from a
        // file does: a pool too small for the connections the batch writers keep stalls the node.
        config.validate()?;
        let (url, cluster) = if config.database_url.is_empty() {
            let options = ClusterOptions {
                data_dir: Some(config.data_dir.join("postgres")),
                durability,
                ..ClusterOptions::default()
            };
            let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(options))
                .await?
                .context("starting the embedded PostgreSQL")?;
            xueji_db::create_database(&cluster.url("postgres"), "xueji", None).await?;
            (cluster.url("xueji"), Some(cluster))
        } else {
            (config.database_url.clone(), None)
        };
        let pool = xueji_db::connect(&url, config.database_connections)
            .await
            .context("connecting to PostgreSQL")?;
        if config.is_provincial() {
            xueji_identity::store::migrate(&pool)
                .await
                .context("migrating the identity schema")?;
            xueji_schools::store::provincial::migrate(&pool)
                .await
                .context("migrating the provincial schools schema")?;
            xueji_transfers::store::migrate(&pool)
                .await
                .context("migrating the transfers schema")?;
        }
        xueji_stats::store::migrate(&pool)
            .await
            .context("migrating the stats schema")?;
        if config.is_national() {
            xueji_schools::store::national::migrate(&pool)
                .await
                .context("migrating the national schools schema")?;
            xueji_national::store::migrate(&pool)
                .await
                .context("migrating the national index schema")?;
        }
        Ok(Self { url, pool, cluster })
    }
}

/// A node serving until [`RunningNode::stop`].
#[derive(Debug)]
pub struct RunningNode {
    pub address: SocketAddr,
    pub database: Database,
    /// The identity service's outbox deliverer, on a node running identity.
    pub deliverer: Option<Arc<Deliverer>>,
    /// Where Prometheus metrics are served, when `metrics_listen` is set.
    pub metrics_address: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    background: Vec<JoinHandle<()>>,
    audited: bool,
}

impl RunningNode {
    /// Binds `config.listen` and serves.
    pub async fn start(config: &NodeConfig, database: Database) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Self::start_on(config, database, listener).await
    }

    /// Serves on a listener bound beforehand (so that nodes can learn each other's addresses
    /// before any of them starts).
    pub async fn start_on(
        config: &NodeConfig,
        database: Database,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let address = listener.local_addr()?;
        let own = address.to_string();
        let or_own = |configured: &str| {
            if configured.is_empty() {
                own.clone()
            } else {
                configured.to_owned()
            }
        };
        let national_address = or_own(&config.national_address);
        let schools_address = or_own(&config.schools_address);
        let identity_address = or_own(&config.identity_address);
        let province = config.province.as_str();
        let province_division = format!("{province}0000");
        let pki_dir = &config.pki_dir;
        // A node running one service presents that service's certificate; a node running
        // several presents the node's.
        let server_stem = match config.services[..] {
            [only] => pki::client_stem(pki_dir, only.name()),
            _ => xueji_pki::files::NODE.to_owned(),
        };
        let tls = TlsSource::from_dir(pki_dir, &server_stem).with_context(|| {
            format!("loading the node's TLS material from {}", pki_dir.display())
        })?;
        let verifier = pki::verifier(pki_dir, config.audiences())?;
        let signer = Arc::new(
            pki::signer(pki_dir)
                .context("the node mints the tokens its services call their peers with")?,
        );
        // The national index checks witnessed audit heads with the same trusted keys.
        let mut authenticator = Authenticator::new(verifier.clone(), config.clock.clone());
        if config.operator_requests_per_second > 0 {
            authenticator = authenticator.with_budget(xueji_rpc::RequestBudget::new(
                config.operator_requests_per_second,
                config.operator_requests_per_second.saturating_mul(2),
            ));
        }
        let own_province = || vec![Authority::Province(province.to_owned())];
        let pool = database.pool.clone();
        let (metrics, registry) = NodeMetrics::registered();

        let mut routes = RoutesBuilder::default();
        let mut serving = Vec::new();
        let mut background = Vec::new();
        let mut deliverer = None;

        if config.is_provincial() && config.runs(Service::Identity) {
            // Registration reads schools from the replica (or a fixed list, for development),
            // and owes the national index its changes through the outbox.
            let as_identity = |audience| {
                credentials(
                    config,
                    &signer,
                    "identity",
                    &format!("service:identity-{province}"),
                    Level::Province,
                    &province_division,
                    audience,
                )
            };
            let store = Store::new(pool.clone());
            let schools = match &config.schools_file {
                Some(file) => {
                    let directory = Arc::new(SchoolDirectory::default());
                    let loaded = sample::load_schools(file, &store, &directory).await?;
                    tracing::info!(schools = loaded, file = %file.display(), "fixed school list loaded");
                    directory
                }
                None => Arc::new(SchoolDirectory::with_source(ReplicaSchools::new(
                    &schools_address,
                    province,
                    &as_identity(own_province())?,
                )?)),
            };
            // Students follow their school's code when a merger or a category change voids it.
            let follower = Arc::new(SuccessionFollower::new(
                store.clone(),
                schools.clone(),
                province,
            ));
            background.push(tokio::spawn(
                follower.run(Duration::from_millis(config.succession_sync_ms)),
            ));
            let link = NationalIndexLink::new(
                &national_address,
                &as_identity(vec![Authority::National])?,
            )?;
            let national = Deliverer::new(
                pool.clone(),
                link.clone(),
                metrics.outbox_delivered.clone(),
                metrics.outbox_rejected.clone(),
            );
            background.push(tokio::spawn(
                national
                    .clone()
                    .run(Duration::from_millis(config.outbox_interval_ms)),
            ));
            deliverer = Some(national.clone());

            let cycle = Arc::new(
                CycleRunner::new(
                    store.clone(),
                    &SchoolYearPolicy::bundled(),
                    province,
                    config.clock.clone(),
                )
                .with_batch(config.cycle_batch),
            );
            background.push(tokio::spawn(
                cycle
                    .clone()
                    .run_scheduler(Duration::from_secs(config.cycle_check_secs)),
            ));
            let desk = Arc::new(
                ChangeDesk::bundled(
                    store.clone(),
                    province,
                    *cycle.dates(),
                    config.clock.clone(),
                )
                .with_national(link),
            );
            background
                .push(tokio::spawn(desk.clone().run_sweeper(
                    Duration::from_millis(config.status_change_sweep_ms),
                )));
            let feed = xueji_identity::api::feed::FeedApi::new(store.clone()).into_service();
            routes.add_service(InterceptedService::new(feed, authenticator.clone()));
            serving.push(xueji_proto::identity::v1::change_feed_server::SERVICE_NAME);
            let ledger = LedgerApi::new(
                store.clone(),
                schools.clone(),
                *cycle.dates(),
                config.clock.clone(),
            )
            .into_service();
            let identity =
                Arc::new(IdentityApi::new(store, schools, national).with_province(province));
            let status_changes = StatusChangeApi::new(identity.clone(), desk).into_service();
            let imports = ImportApi::new(
                identity.clone(),
                xueji_identity::imports::UploadLimits {
                    max_bytes: config.import_max_upload_mib << 20,
                    idle: Duration::from_secs(config.import_idle_secs),
                    at_once: config.imports_at_once,
                },
            )
            .into_service();
            routes.add_service(InterceptedService::new(imports, authenticator.clone()));
            serving.push(xueji_proto::identity::v1::import_service_server::SERVICE_NAME);
            routes.add_service(InterceptedService::new(
                status_changes,
                authenticator.clone(),
            ));
            serving.push(xueji_proto::identity::v1::status_change_service_server::SERVICE_NAME);
            let school_year = SchoolYearApi::new(identity.clone(), cycle).into_service();
            let identity = identity.into_service();
            routes.add_service(InterceptedService::new(identity, authenticator.clone()));
            routes.add_service(InterceptedService::new(school_year, authenticator.clone()));
            serving.push(xueji_proto::identity::v1::school_year_service_server::SERVICE_NAME);
            routes.add_service(InterceptedService::new(ledger, authenticator.clone()));
            serving.push(xueji_proto::identity::v1::identity_service_server::SERVICE_NAME);
            serving.push(xueji_proto::identity::v1::transfer_ledger_server::SERVICE_NAME);
        }

        if config.is_provincial() && config.runs(Service::Schools) {
            let as_province = credentials(
                config,
                &signer,
                "schools",
                &format!("service:schools-{province}"),
                Level::Province,
                &province_division,
                vec![Authority::National],
            )?;
            let replica = ProvincialStore::new(pool.clone());
            let replicator = Replicator::new(
                replica.clone(),
                as_province.authority(&national_address)?,
                province,
            );
            let intake = IntakeApi::new(replica, replicator.clone(), province).into_service();
            routes.add_service(InterceptedService::new(intake, authenticator.clone()));
            serving.push(xueji_proto::schools::v1::school_intake_server::SERVICE_NAME);
            background.push(tokio::spawn(
                replicator.run(Duration::from_secs(config.replica_sync_secs)),
            ));
        }

        if config.is_provincial() && config.runs(Service::Transfers) {
            // The saga holds and moves records through identity and reads the school replica,
            // with the transfer service's own certificate and token.
            let as_transfers = credentials(
                config,
                &signer,
                "transfers",
                &format!("service:transfers-{province}"),
                Level::Province,
                &province_division,
                own_province(),
            )?;
            let policy = match &config.transfer_policy_dir {
                Some(dir) => xueji_transfers::policy::SagaPolicy::from_dir(dir)
                    .map_err(anyhow::Error::msg)
                    .context("loading the transfer policy")?,
                None => xueji_transfers::policy::SagaPolicy::bundled(),
            };
            // Transfers between provinces go through the national node's relay, with the
            // transfer service's certificate and a token for the national node.
            let national: Option<Arc<NationalHub>> = if config.tier == crate::config::Tier::Province
            {
                let to_national = credentials(
                    config,
                    &signer,
                    "transfers",
                    &format!("service:transfers-{province}"),
                    Level::Province,
                    &province_division,
                    vec![Authority::National],
                )?;
                Some(NationalHub::new(&national_address, &to_national)?)
            } else {
                None
            };
            let saga = xueji_transfers::saga::Saga::new(xueji_transfers::saga::SagaParts {
                store: xueji_transfers::store::Store::new(pool.clone()),
                ledger: IdentityLedger::new(&identity_address, province, &as_transfers)?,
                schools: ReplicaSchoolList::new(&schools_address, province, &as_transfers)?,
                policy: Arc::new(policy),
                clock: config.clock.clone(),
                gauges: xueji_transfers::saga::SagaGauges {
                    estimated_deadlines: metrics.transfer_deadlines_estimated.clone(),
                    overdue_steps: metrics.transfer_steps_overdue.clone(),
                    effects_pending: metrics.transfer_effects_pending.clone(),
                    messages_set_aside: metrics.transfer_messages_set_aside.clone(),
                },
                province: province.to_owned(),
                notary: as_transfers.tls.clone(),
                relay: national
                    .clone()
                    .map(|link| link as Arc<dyn xueji_transfers::links::RelayLink>),
                calendar_source: national
                    .map(|link| link as Arc<dyn xueji_transfers::links::CalendarSource>),
            });
            saga.use_kept_calendar()
                .await
                .context("reading the calendar years kept")?;
            background.push(tokio::spawn(
                saga.clone()
                    .run(Duration::from_millis(config.transfer_sweep_ms)),
            ));
            background.push(tokio::spawn(
                saga.clone()
                    .run_relay(Duration::from_millis(config.transfer_sweep_ms)),
            ));
            background.push(tokio::spawn(
                saga.clone()
                    .run_calendar(Duration::from_secs(config.calendar_sync_secs)),
            ));
            let peer = xueji_transfers::api::peer::PeerApi::new(saga.clone()).into_service();
            routes.add_service(InterceptedService::new(peer, authenticator.clone()));
            serving.push(xueji_proto::transfers::v1::transfer_peer_server::SERVICE_NAME);
            let transfers = xueji_transfers::api::TransferApi::new(saga, province).into_service();
            routes.add_service(InterceptedService::new(transfers, authenticator.clone()));
            serving.push(xueji_proto::transfers::v1::transfer_service_server::SERVICE_NAME);
        }

        if config.runs(Service::Stats) {
            let (api, tasks) = crate::stats_links::stats_service(
                config,
                &signer,
                pool.clone(),
                &identity_address,
                &national_address,
            )?;
            background.extend(tasks);
            if config.is_national() {
                let intake = api.clone().national_service();
                routes.add_service(InterceptedService::new(intake, authenticator.clone()));
                serving.push(xueji_proto::stats::v1::national_stats_server::SERVICE_NAME);
            }
            routes.add_service(InterceptedService::new(
                api.into_service(),
                authenticator.clone(),
            ));
            serving.push(xueji_proto::stats::v1::stats_service_server::SERVICE_NAME);
        }

        // The national side reaches each province's identity service: the directory of the
        // configuration, plus this node's own province when it is standalone.
        let mut province_nodes: HashMap<String, String> = config.province_nodes.clone();
        if config.is_provincial() {
            province_nodes
                .entry(province.to_owned())
                .or_insert_with(|| own.clone());
        }

        // The national services call every province of the directory.
        let mut every_province: Vec<Authority> = province_nodes
            .keys()
            .map(|code| Authority::Province(code.clone()))
            .collect();
        every_province.sort();
        if every_province.is_empty() {
            // A national node with an empty directory calls nobody; its tokens need some
            // audience all the same.
            every_province.push(Authority::National);
        }

        if config.is_national() && config.runs(Service::Schools) {
            let as_ministry = credentials(
                config,
                &signer,
                "schools",
                "service:schools-national",
                Level::Ministry,
                "",
                every_province.clone(),
            )?;
            let identities: Arc<dyn WorkloadSource> =
                Arc::new(ProvinceIdentities::new(&province_nodes, &as_ministry)?);
            let authority = AuthorityApi::new(
                NationalStore::new(pool.clone()),
                Workloads::new(vec![identities]),
            )
            .into_service();
            routes.add_service(InterceptedService::new(authority, authenticator.clone()));
            serving.push(xueji_proto::schools::v1::school_authority_server::SERVICE_NAME);
        }

        if config.is_national() && config.runs(Service::National) {
            let key_path = pki_dir.join(xueji_national::index_key::FILE);
            let index_key = Arc::new(
                xueji_national::index_key::IndexKey::load(&key_path)
                    .context("the national index keys ID numbers and names with it")?,
            );
            xueji_national::store::key_index(&pool, &index_key)
                .await
                .map_err(|e| anyhow::anyhow!("keying the national index: {e}"))?;
            let store = xueji_national::store::Store::new(pool.clone());
            let divisions = Divisions::bundled();
            for (code, address) in &province_nodes {
                let name = format!("{code}0000")
                    .parse()
                    .ok()
                    .and_then(|division| divisions.get(division))
                    .map(|division| division.name.clone())
                    .unwrap_or_default();
                store
                    .upsert_province(
                        code,
                        &name,
                        address,
                        &xueji_pki::province_service_id(code, "identity"),
                    )
                    .await?;
            }
            let as_ministry = credentials(
                config,
                &signer,
                "national",
                "service:national",
                Level::Ministry,
                "",
                every_province.clone(),
            )?;
            let provinces = Arc::new(ProvinceClients::new(
                as_ministry.tls.clone(),
                as_ministry.request_timeout,
                as_ministry.token.clone(),
                as_ministry.also_accept.clone(),
            ));
            let national = NationalApi::new(
                store,
                provinces.clone(),
                verifier.clone(),
                metrics.audit_witness_alarms.clone(),
                index_key.clone(),
            );
            routes.add_service(InterceptedService::new(
                national.index_service(),
                authenticator.clone(),
            ));
            routes.add_service(InterceptedService::new(
                national.directory_service(),
                authenticator.clone(),
            ));
            let relay = xueji_national::relay::Relay::new(
                xueji_national::store::Store::new(pool.clone()),
                provinces.clone(),
                index_key.clone(),
                as_ministry.tls.clone(),
            );
            background.push(tokio::spawn(
                relay
                    .clone()
                    .run(Duration::from_millis(config.transfer_sweep_ms)),
            ));
            routes.add_service(InterceptedService::new(
                relay.into_service(),
                authenticator.clone(),
            ));
            let calendar = xueji_national::calendar::CalendarApi::new(
                xueji_national::store::Store::new(pool.clone()),
            );
            routes.add_service(InterceptedService::new(
                calendar.into_service(),
                authenticator.clone(),
            ));
            serving.push(xueji_proto::national::v1::calendar_registry_server::SERVICE_NAME);
            serving.push(xueji_proto::transfers::v1::transfer_relay_server::SERVICE_NAME);
            serving.push(xueji_proto::national::v1::national_index_server::SERVICE_NAME);
            serving.push(xueji_proto::national::v1::national_directory_server::SERVICE_NAME);
        }
        anyhow::ensure!(
            !serving.is_empty(),
            "this configuration runs no service (tier {}, services {:?})",
            config.tier,
            config.services
        );

        // Identity, schools and the national index write audit entries; the sealer chains them.
        let audited = config.runs(Service::Identity)
            || config.runs(Service::Schools)
            || config.runs(Service::Transfers)
            || (config.is_national() && config.runs(Service::National));
        if audited {
            background.push(tokio::spawn(xueji_audit::run_sealer(
                pool.clone(),
                Duration::from_millis(200),
            )));
            if config.audit_witness_secs > 0 {
                let witness =
                    AuditWitness::new(config, &national_address, signer.clone(), pool.clone())?
                        .counting(
                            metrics.audit_heads_witnessed.clone(),
                            metrics.audit_witness_failures.clone(),
                        );
                background.push(tokio::spawn(
                    witness.run(Duration::from_secs(config.audit_witness_secs)),
                ));
            }
        }

        let metrics_address = match config.metrics_listen.as_str() {
            "" => None,
            listen => {
                let listener = TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("binding metrics_listen {listen}"))?;
                let address = listener.local_addr()?;
                // Stopped with the node's other background work.
                background.push(tokio::spawn(xueji_telemetry::metrics::serve(
                    listener,
                    registry,
                    std::future::pending(),
                )));
                tracing::info!(%address, "metrics at /metrics");
                Some(address)
            }
        };

        let server_config = ServerConfig {
            request_timeout: config.request_timeout(),
            concurrency_limit: config.concurrency_limit,
            ..ServerConfig::new(tls)
        };
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let server = tokio::spawn(xueji_rpc::serve(
            server_config,
            listener,
            routes.routes(),
            serving,
            async move {
                let _ = shutdown_signal.await;
            },
        ));
        tracing::info!(%address, tier = %config.tier, "node serving over mutual TLS");
        Ok(Self {
            address,
            database,
            deliverer,
            metrics_address,
            shutdown: Some(shutdown),
            server,
            background,
            audited,
        })
    }

    /// Stops serving (in-flight requests finish), seals the audit log, closes the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for task in &self.background {
            task.abort();
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let served = (&mut self.server).await;
        if self.audited {
            xueji_audit::seal_all(&self.database.pool).await?;
        }
        self.database.pool.close().await;
        served??;
        Ok(())
    }

    /// Stops as abruptly as an in-process node can: background work (a delivery half done,
    /// a sync) is dropped where it stands, its open transactions rolled back, nothing sealed;
    /// the server stops taking requests. For tests of crash recovery.
    pub async fn kill(mut self) {
        for task in &self.background {
            task.abort();
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        self.database.pool.close().await;
    }
}
