//! A running provincial node: its database (given or embedded), its services on one mTLS gRPC
//! port, and its background tasks (the audit sealer).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::service::{Routes, interceptor::InterceptedService};
use xueji_auth::TokenVerifier;
use xueji_db::{ClusterOptions, Durability, EmbeddedPostgres, PgPool};
use xueji_identity::{
    api::IdentityApi, claims::ProvinceOnly, directory::SchoolDirectory, store::Store,
};
use xueji_rpc::{Authenticator, ServerConfig, TlsFiles};

use crate::{config::NodeConfig, pki, sample};

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
}

impl RunningNode {
    /// Opens the database, loads the configured schools, binds and serves.
    pub async fn start(config: &NodeConfig, database: Database) -> anyhow::Result<Self> {
        let store = Store::new(database.pool.clone());
        let schools = Arc::new(SchoolDirectory::default());
        if let Some(file) = &config.schools_file {
            let loaded = sample::load_schools(file, &store, &schools).await?;
            tracing::info!(schools = loaded, file = %file.display(), "school directory loaded");
        }
        let tls = TlsFiles::from_dir(&config.pki_dir, "node")?;
        let verifier_path = config.pki_dir.join(pki::TOKEN_VERIFYING_KEY);
        let verifier = TokenVerifier::from_text(
            &std::fs::read_to_string(&verifier_path)
                .with_context(|| format!("reading {}", verifier_path.display()))?,
        )?;

        let identity = IdentityApi::new(store, schools.clone(), ProvinceOnly).into_service();
        let routes = Routes::new(InterceptedService::new(
            identity,
            Authenticator::new(verifier),
        ));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
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
            &[xueji_proto::identity::v1::identity_service_server::SERVICE_NAME],
            async move {
                let _ = shutdown_signal.await;
            },
        ));
        let sealer = tokio::spawn(xueji_audit::run_sealer(
            database.pool.clone(),
            Duration::from_millis(200),
        ));
        tracing::info!(%address, "node serving identity over mutual TLS");
        Ok(Self {
            address,
            database,
            schools,
            shutdown: Some(shutdown),
            server,
            sealer,
        })
    }

    /// Stops serving (in-flight requests finish), seals the audit log, closes the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let served = (&mut self.server).await;
        self.sealer.abort();
        xueji_audit::seal_all(&self.database.pool).await?;
        self.database.pool.close().await;
        served??;
        Ok(())
    }
}
