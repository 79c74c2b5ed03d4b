//! A running node: its database (given or embedded), its services on one mTLS gRPC port, and
//! its background tasks (the audit sealer, the replica sync).
//!
//! A provincial node serves identity and the school intake with its replica; a node configured
//! `national` serves the national school authority as well. The services reach each other over
//! the same gRPC API a peer node would use.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::service::{Routes, interceptor::InterceptedService};
use xueji_auth::{Level, TokenVerifier};
use xueji_db::{ClusterOptions, Durability, EmbeddedPostgres, PgPool};
use xueji_identity::{
    api::IdentityApi, claims::ProvinceOnly, directory::SchoolDirectory, store::Store,
};
use xueji_rpc::{Authenticator, ServerConfig, TlsFiles};
use xueji_schools::{
    api::{authority::AuthorityApi, intake::IntakeApi},
    links::{ProvinceIdentities, WorkloadSource, Workloads},
    replica::Replicator,
    store::{national::NationalStore, provincial::ProvincialStore},
};

use crate::{
    config::NodeConfig,
    links::{ReplicaSchools, credentials},
    pki, sample,
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
        xueji_identity::store::migrate(&pool)
            .await
            .context("migrating the identity schema")?;
        xueji_schools::store::provincial::migrate(&pool)
            .await
            .context("migrating the provincial schools schema")?;
        if config.national {
            xueji_schools::store::national::migrate(&pool)
                .await
                .context("migrating the national schools schema")?;
        }
        Ok(Self { url, pool, cluster })
    }
}

/// A node serving until [`RunningNode::stop`].
#[derive(Debug)]
pub struct RunningNode {
    pub address: SocketAddr,
    pub database: Database,
    pub schools: Arc<SchoolDirectory>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    sealer: JoinHandle<()>,
    replica_sync: JoinHandle<()>,
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
        let province = config.province.as_str();
        let province_division = format!("{province}0000");
        let tls = TlsFiles::from_dir(&config.pki_dir, "node")?;
        let verifier_path = config.pki_dir.join(pki::TOKEN_VERIFYING_KEY);
        let verifier = TokenVerifier::from_text(
            &std::fs::read_to_string(&verifier_path)
                .with_context(|| format!("reading {}", verifier_path.display()))?,
        )?;
        let signer = pki::signer(&config.pki_dir)
            .context("the node mints the service tokens its services call each other with")?;

        // identity, reading schools from the replica (or a fixed list, for development)
        let store = Store::new(database.pool.clone());
        let schools = match &config.schools_file {
            Some(file) => {
                let directory = Arc::new(SchoolDirectory::default());
                let loaded = sample::load_schools(file, &store, &directory).await?;
                tracing::info!(schools = loaded, file = %file.display(), "fixed school list loaded");
                directory
            }
            None => {
                let as_identity = credentials(
                    config,
                    &signer,
                    &format!("service:identity-{province}"),
                    Level::Province,
                    &province_division,
                )?;
                Arc::new(SchoolDirectory::with_source(ReplicaSchools::new(
                    &own,
                    &as_identity,
                )?))
            }
        };
        let identity = IdentityApi::new(store, schools.clone(), ProvinceOnly).into_service();

        // the school intake and replica, linked to the national authority
        let as_province = credentials(
            config,
            &signer,
            &format!("service:schools-{province}"),
            Level::Province,
            &province_division,
        )?;
        let national_address = if config.national_address.is_empty() {
            own.clone()
        } else {
            config.national_address.clone()
        };
        let replica = ProvincialStore::new(database.pool.clone());
        let replicator = Replicator::new(
            replica.clone(),
            as_province.authority(&national_address)?,
            province,
        );
        let intake = IntakeApi::new(replica, replicator.clone(), province).into_service();

        let authenticator = Authenticator::new(verifier);
        let mut routes = Routes::new(InterceptedService::new(identity, authenticator.clone()))
            .add_service(InterceptedService::new(intake, authenticator.clone()));
        let mut serving = vec![
            xueji_proto::identity::v1::identity_service_server::SERVICE_NAME,
            xueji_proto::schools::v1::school_intake_server::SERVICE_NAME,
        ];
        if config.national {
            let as_ministry = credentials(
                config,
                &signer,
                "service:schools-national",
                Level::Ministry,
                "",
            )?;
            let mut nodes: HashMap<String, String> = config.province_nodes.clone();
            nodes
                .entry(province.to_owned())
                .or_insert_with(|| own.clone());
            let identities: Arc<dyn WorkloadSource> =
                Arc::new(ProvinceIdentities::new(&nodes, &as_ministry)?);
            let authority = AuthorityApi::new(
                NationalStore::new(database.pool.clone()),
                Workloads::new(vec![identities]),
            )
            .into_service();
            routes = routes.add_service(InterceptedService::new(authority, authenticator));
            serving.push(xueji_proto::schools::v1::school_authority_server::SERVICE_NAME);
        }

        let server_config = ServerConfig {
            request_timeout: config.request_timeout(),
            concurrency_limit: config.concurrency_limit,
            ..ServerConfig::new(tls)
        };
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let server = tokio::spawn(xueji_rpc::serve(
            server_config,
            listener,
            routes,
            serving,
            async move {
                let _ = shutdown_signal.await;
            },
        ));
        let sealer = tokio::spawn(xueji_audit::run_sealer(
            database.pool.clone(),
            Duration::from_millis(200),
        ));
        let replica_sync =
            tokio::spawn(replicator.run(Duration::from_secs(config.replica_sync_secs)));
        tracing::info!(%address, national = config.national, "node serving over mutual TLS");
        Ok(Self {
            address,
            database,
            schools,
            shutdown: Some(shutdown),
            server,
            sealer,
            replica_sync,
        })
    }

    /// Stops serving (in-flight requests finish), seals the audit log, closes the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let served = (&mut self.server).await;
        self.sealer.abort();
        self.replica_sync.abort();
        xueji_audit::seal_all(&self.database.pool).await?;
        self.database.pool.close().await;
        served??;
        Ok(())
    }
}
