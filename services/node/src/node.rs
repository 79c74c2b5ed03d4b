//! A running node: its database, its services on one mTLS gRPC port, and their background
//! tasks (plus the node's own: the audit sealer and witness, the metrics endpoint).
//!
//! A provincial node serves identity, the school intake with its replica, and transfers; the
//! national node serves the national index and the school authority; a standalone node serves
//! all of them. Any node may run a subset (`services`). Each service mounts itself through its
//! crate's `wiring` module; the services reach each other, in one process or across nodes,
//! over the same mutual-TLS gRPC API a peer node would use.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use xueji_identity::national::Deliverer;
use xueji_rpc::{Authenticator, Mount, ServerConfig, TlsSource};
use xueji_telemetry::metrics::NodeMetrics;

pub use crate::database::Database;
use crate::{
    config::{NodeConfig, Service},
    pki,
    policy::NodePolicy,
    services::{self, Peers},
    witness::AuditWitness,
};

/// A node serving until [`RunningNode::stop`].
#[derive(Debug)]
pub struct RunningNode {
    pub address: SocketAddr,
    pub database: Database,
    /// The identity service's outbox deliverer, on a node running identity.
    pub deliverer: Option<Arc<Deliverer>>,
    /// Where Prometheus metrics are served, when `metrics_listen` is set.
    pub metrics_address: Option<SocketAddr>,
    /// The services' policies, for a reload (SIGHUP in the binary).
    pub policy: NodePolicy,
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
    /// before any of them starts). Each service the configuration runs mounts itself.
    pub async fn start_on(
        config: &NodeConfig,
        database: Database,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let address = listener.local_addr()?;
        let peers = Peers::of(config, address);
        let pki_dir = &config.pki_dir;
        let signer = Arc::new(
            pki::signer(pki_dir)
                .context("the node mints the tokens its services call their peers with")?,
        );
        let verifier = pki::verifier(pki_dir, config.audiences())?;
        let credentials = config.credential_mint(signer.clone());
        let (metrics, registry) = NodeMetrics::registered();
        let mut mount = Mount::new(authenticator(config, verifier.clone()));
        let pool = &database.pool;

        let mut deliverer = None;
        if config.is_provincial() && config.runs(Service::Identity) {
            let settings = services::identity(config, &peers, &metrics);
            deliverer = Some(
                xueji_identity::wiring::mount(settings, pool.clone(), &credentials, &mut mount)
                    .await?,
            );
        }
        if config.is_provincial() && config.runs(Service::Schools) {
            let settings = services::intake(config, &peers);
            xueji_schools::wiring::mount_intake(settings, pool.clone(), &credentials, &mut mount)?;
        }
        if config.is_provincial() && config.runs(Service::Transfers) {
            let settings = services::transfers(config, &peers, &metrics);
            xueji_transfers::wiring::mount(settings, pool.clone(), &credentials, &mut mount)
                .await?;
        }
        if config.runs(Service::Stats) {
            let settings = services::stats(config, &peers);
            xueji_stats::wiring::mount(settings, pool.clone(), &credentials, &mut mount)?;
        }
        if config.is_national() && config.runs(Service::Schools) {
            xueji_schools::wiring::mount_authority(
                &peers.province_nodes,
                peers.every_province(),
                pool.clone(),
                &credentials,
                &mut mount,
            )?;
        }
        if config.is_national() && config.runs(Service::National) {
            let settings = services::national(config, &peers, verifier, &metrics);
            xueji_national::wiring::mount(settings, pool.clone(), &credentials, &mut mount).await?;
        }
        anyhow::ensure!(
            !mount.is_empty(),
            "this configuration runs no service (tier {}, services {:?})",
            config.tier,
            config.services
        );

        let audited = services::audited(config);
        if audited {
            mount.spawn(xueji_audit::run_sealer(
                pool.clone(),
                Duration::from_millis(200),
            ));
            if config.audit_witness_secs > 0 {
                let witness = AuditWitness::new(config, &peers.national, signer, pool.clone())?
                    .counting(
                        metrics.audit_heads_witnessed.clone(),
                        metrics.audit_witness_failures.clone(),
                    );
                mount.spawn(witness.run(Duration::from_secs(config.audit_witness_secs)));
            }
        }
        let metrics_address = serve_metrics(config, registry, &mut mount).await?;
        // Every service's policy, reloadable as one.
        let policy = NodePolicy::new(mount.policy_hooks());
        mount.serve(policy.clone().into_service());

        let (routes, serving, background) = mount.into_parts();
        let server_config = ServerConfig {
            request_timeout: config.request_timeout(),
            concurrency_limit: config.concurrency_limit,
            ..ServerConfig::new(server_tls(config)?)
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
        tracing::info!(%address, tier = %config.tier, "node serving over mutual TLS");
        Ok(Self {
            address,
            database,
            deliverer,
            metrics_address,
            policy,
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

/// Operators and peers are authenticated by their token, within the node's request budget.
fn authenticator(config: &NodeConfig, verifier: xueji_auth::TokenVerifier) -> Authenticator {
    let authenticator = Authenticator::new(verifier, config.clock.clone());
    if config.operator_requests_per_second == 0 {
        return authenticator;
    }
    authenticator.with_budget(xueji_rpc::RequestBudget::new(
        config.operator_requests_per_second,
        config.operator_requests_per_second.saturating_mul(2),
    ))
}

/// A node running one service presents that service's certificate; a node running several
/// presents the node's.
fn server_tls(config: &NodeConfig) -> anyhow::Result<TlsSource> {
    let stem = match config.services[..] {
        [only] => xueji_rpc::certificate_stem(&config.pki_dir, only.name()),
        _ => xueji_pki::files::NODE.to_owned(),
    };
    TlsSource::from_dir(&config.pki_dir, &stem).with_context(|| {
        format!(
            "loading the node's TLS material from {}",
            config.pki_dir.display()
        )
    })
}

/// Serves Prometheus metrics when `metrics_listen` is set; stopped with the node's other
/// background work.
async fn serve_metrics(
    config: &NodeConfig,
    registry: prometheus_client::registry::Registry,
    mount: &mut Mount,
) -> anyhow::Result<Option<SocketAddr>> {
    let listen = config.metrics_listen.as_str();
    if listen.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding metrics_listen {listen}"))?;
    let address = listener.local_addr()?;
    mount.spawn(xueji_telemetry::metrics::serve(
        listener,
        registry,
        std::future::pending(),
    ));
    tracing::info!(%address, "metrics at /metrics");
    Ok(Some(address))
}
