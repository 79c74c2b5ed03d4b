//! Node configuration: a TOML file, then `XUEJI_*` environment variables over it.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Address the gRPC server listens on (`XUEJI_LISTEN`). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The province this node serves, as 2 digits (e.g. "35").
    pub province: String,
    /// Folder with ca.pem, node.pem/node.key (or one certificate per service), the node's
    /// token-signing.key and the trusted token keys in token-issuers/ (`XUEJI_PKI_DIR`). Never
    /// a CA key: those live apart, where no node runs.
    pub pki_dir: PathBuf,
    /// PostgreSQL URL (`XUEJI_DATABASE_URL`). Empty: the node runs its own cluster in data_dir.
    pub database_url: String,
    /// Where the embedded PostgreSQL keeps its data (`XUEJI_DATA_DIR`).
    pub data_dir: PathBuf,
    /// A fixed school list (CSV) for registration instead of the replica of the published
    /// list: for development and benchmarks.
    pub schools_file: Option<PathBuf>,
    /// Which part of the federation this node plays.
    pub tier: Tier,
    /// Run only these services of the tier (`identity`, `schools`, `transfers`, `stats`, `national`);
    /// empty: all.
    pub services: Vec<Service>,
    /// `host:port` of the national node (`XUEJI_NATIONAL_ADDRESS`); a provincial node needs it.
    /// Empty on a standalone node: itself.
    pub national_address: String,
    /// `host:port` of the node serving this province's school replica, which registration
    /// reads; empty: this node.
    pub schools_address: String,
    /// `host:port` of the node serving this province's identity service, which transfers
    /// hold and move records through; empty: this node.
    pub identity_address: String,
    /// Folder with the deployment's policy files, by service as the build bundles them:
    /// `identity/status_changes.toml`, `identity/status_approvals.toml`,
    /// `identity/school_year.toml`, `identity/provincial_fields.toml` (read at start-up only),
    /// `transfers/approvals.toml`, `transfers/rules.toml`, `stats/dropouts.toml`. A file
    /// missing there keeps the national defaults bundled into the build. Reloaded on SIGHUP or
    /// `PolicyService.ReloadPolicy`.
    pub policy_dir: Option<PathBuf>,
    /// How often the transfer service sweeps passed deadlines, owed effects and interrupted
    /// starts (ms).
    pub transfer_sweep_ms: u64,
    /// How often the stats service reads identity's change feed once caught up, in ms.
    pub stats_feed_ms: u64,
    /// How often a provincial stats service reports its aggregates to the national node when
    /// its figures moved, in ms (default a minute: each report carries every monthly row of
    /// the province, its cities and counties).
    pub stats_report_ms: u64,
    /// On the national node: each provincial node by 2-digit province code (`host:port`), the
    /// province directory. A standalone node answers for its own province.
    pub province_nodes: HashMap<String, String>,
    /// How often the outbox to the national node is delivered when nothing wakes it (ms).
    pub outbox_interval_ms: u64,
    /// How often the province pulls publications and decisions from the national authority.
    pub replica_sync_secs: u64,
    /// How often the province's transfer service pulls calendar years the ministry loaded on
    /// the national node (seconds).
    pub calendar_sync_secs: u64,
    /// How often the province's scheduler looks for a step of the annual cycle that is due
    /// (seconds).
    pub cycle_check_secs: u64,
    /// Enrollments per batch of the annual cycle (one transaction each).
    pub cycle_batch: i64,
    /// How often status changes' missed deadlines are acted on (ms).
    pub status_change_sweep_ms: u64,
    /// How often identity looks in the school replica for codes a merger or a category change
    /// voided, to move their students to the successor (ms).
    pub succession_sync_ms: u64,
    pub request_timeout_secs: u64,
    pub concurrency_limit: usize,
    /// Requests a second each operator may make on average (twice as many at once); more
    /// answer RESOURCE_EXHAUSTED. 0: unlimited. Services calling each other are not limited.
    pub operator_requests_per_second: u32,
    /// How often the head of the node's audit chain goes to the national node to be
    /// witnessed (seconds); 0: never.
    pub audit_witness_secs: u64,
    /// Where Prometheus metrics are served (`host:port`, plain HTTP at `/metrics`); empty: not
    /// served (`XUEJI_METRICS_LISTEN`).
    pub metrics_listen: String,
    pub database_connections: u32,
    /// Bytes one import upload may carry, in MiB (default 2048: a province's 2-million-row
    /// migration file, as CSV, fits with room to spare).
    pub import_max_upload_mib: u64,
    /// Seconds an import upload may pass without sending a byte before it is stopped (the job
    /// keeps what it read; the same file sent again resumes it).
    pub import_idle_secs: u64,
    /// Imports this node reads at once; one more answers RESOURCE_EXHAUSTED. Each holds at most
    /// the bounded reader's memory (README, "Bulk import").
    pub imports_at_once: usize,
    /// The time tokens are minted and checked at: the system's, or one a test moves forward.
    #[serde(skip)]
    pub clock: xueji_auth::Clock,
}

/// The smallest database pool a node runs with: fewer, and the connections the registration
/// batch writers keep would leave delivery, sealing and requests waiting for one.
pub const MIN_DATABASE_CONNECTIONS: u32 = 8;

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".parse().expect("valid"),
            province: "35".into(),
            pki_dir: "pki".into(),
            database_url: String::new(),
            data_dir: "xueji-data".into(),
            schools_file: None,
            tier: Tier::Standalone,
            services: Vec::new(),
            national_address: String::new(),
            schools_address: String::new(),
            identity_address: String::new(),
            policy_dir: None,
            transfer_sweep_ms: 1000,
            stats_feed_ms: 500,
            stats_report_ms: 60_000,
            province_nodes: HashMap::new(),
            outbox_interval_ms: 1000,
            replica_sync_secs: 10,
            calendar_sync_secs: 60,
            cycle_check_secs: 3600,
            cycle_batch: xueji_identity::cycle::DEFAULT_BATCH,
            status_change_sweep_ms: 1000,
            succession_sync_ms: 5000,
            request_timeout_secs: 30,
            concurrency_limit: 1024,
            operator_requests_per_second: 200,
            audit_witness_secs: 300,
            metrics_listen: String::new(),
            database_connections: 32,
            import_max_upload_mib: 2048,
            import_idle_secs: 60,
            imports_at_once: 2,
            clock: xueji_auth::Clock::system(),
        }
    }
}

impl NodeConfig {
    /// Reads `path` (if given), then applies environment overrides. Relative paths in the file
    /// are taken relative to the file's folder.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                let mut config: NodeConfig = toml::from_str(&text)
                    .with_context(|| format!("config file {}", path.display()))?;
                let base = path.parent().unwrap_or(Path::new("."));
                config.pki_dir = base.join(&config.pki_dir);
                config.data_dir = base.join(&config.data_dir);
                config.schools_file = config.schools_file.map(|f| base.join(f));
                config.policy_dir = config.policy_dir.map(|d| base.join(d));
                config
            }
            None => NodeConfig::default(),
        };
        if let Ok(listen) = std::env::var("XUEJI_LISTEN") {
            config.listen = listen
                .parse()
                .with_context(|| format!("XUEJI_LISTEN={listen:?} is not host:port"))?;
        }
        if let Ok(url) = std::env::var("XUEJI_DATABASE_URL") {
            config.database_url = url;
        }
        if let Ok(dir) = std::env::var("XUEJI_POLICY_DIR") {
            config.policy_dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
        }
        if let Ok(dir) = std::env::var("XUEJI_PKI_DIR") {
            config.pki_dir = dir.into();
        }
        if let Ok(dir) = std::env::var("XUEJI_DATA_DIR") {
            config.data_dir = dir.into();
        }
        if let Ok(address) = std::env::var("XUEJI_NATIONAL_ADDRESS") {
            config.national_address = address;
        }
        if let Ok(address) = std::env::var("XUEJI_METRICS_LISTEN") {
            config.metrics_listen = address;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let province_code = format!("{}0000", self.province);
        let known = province_code
            .parse()
            .ok()
            .and_then(|code| xueji_codes::Divisions::bundled().get(code))
            .is_some();
        anyhow::ensure!(
            self.province.len() == 2 && known,
            "province {:?} is not a 2-digit province code (e.g. \"35\" for Fujian)",
            self.province
        );
        anyhow::ensure!(
            self.tier != Tier::Province || !self.national_address.is_empty(),
            "a provincial node needs national_address, the host:port of the national node"
        );
        for service in &self.services {
            anyhow::ensure!(
                self.tier.services().contains(service),
                "the {} tier has no {} service (it runs {})",
                self.tier,
                service,
                self.tier
                    .services()
                    .iter()
                    .map(Service::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (province, address) in &self.province_nodes {
            anyhow::ensure!(
                province.len() == 2
                    && xueji_codes::Divisions::bundled()
                        .known(&format!("{province}0000"))
                        .is_ok(),
                "province_nodes: {province:?} is not a 2-digit province code"
            );
            anyhow::ensure!(
                address.contains(':'),
                "province_nodes.{province}: {address:?} is not host:port"
            );
        }
        anyhow::ensure!(
            self.outbox_interval_ms > 0,
            "outbox_interval_ms must be positive"
        );
        anyhow::ensure!(
            self.import_max_upload_mib > 0 && self.import_idle_secs > 0 && self.imports_at_once > 0,
            "import_max_upload_mib, import_idle_secs and imports_at_once must be positive"
        );
        anyhow::ensure!(
            self.transfer_sweep_ms > 0 && self.stats_feed_ms > 0 && self.stats_report_ms > 0,
            "transfer_sweep_ms, stats_feed_ms and stats_report_ms must be positive"
        );
        anyhow::ensure!(
            self.replica_sync_secs > 0,
            "replica_sync_secs must be positive"
        );
        anyhow::ensure!(
            self.calendar_sync_secs > 0,
            "calendar_sync_secs must be positive"
        );
        anyhow::ensure!(
            self.cycle_check_secs > 0,
            "cycle_check_secs must be positive"
        );
        anyhow::ensure!(self.cycle_batch > 0, "cycle_batch must be positive");
        anyhow::ensure!(
            self.status_change_sweep_ms > 0,
            "status_change_sweep_ms must be positive"
        );
        anyhow::ensure!(
            self.succession_sync_ms > 0,
            "succession_sync_ms must be positive"
        );
        anyhow::ensure!(
            self.concurrency_limit > 0,
            "concurrency_limit must be positive"
        );
        anyhow::ensure!(
            self.request_timeout_secs > 0,
            "request_timeout_secs must be positive"
        );
        anyhow::ensure!(
            self.database_connections >= MIN_DATABASE_CONNECTIONS,
            "database_connections must be at least {MIN_DATABASE_CONNECTIONS} (it is {}): the \
             registration writers keep one each, and delivery, audit sealing and requests share \
             the rest",
            self.database_connections
        );
        Ok(())
    }

    /// What the node's services make their peer credentials with: its PKI folder, its token
    /// key, its clock.
    pub fn credential_mint(
        &self,
        signer: std::sync::Arc<xueji_auth::TokenSigner>,
    ) -> xueji_rpc::CredentialMint {
        xueji_rpc::CredentialMint {
            pki_dir: self.pki_dir.clone(),
            signer,
            clock: self.clock.clone(),
            request_timeout: self.request_timeout(),
            also_accept: self.also_accept(),
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Whether this node runs `service`.
    pub fn runs(&self, service: Service) -> bool {
        self.tier.services().contains(&service)
            && (self.services.is_empty() || self.services.contains(&service))
    }

    /// Whether this node holds the national side of the federation (national index, school
    /// authority).
    pub fn is_national(&self) -> bool {
        self.tier != Tier::Province
    }

    /// Whether this node holds a province's side (identity, intake and replica).
    pub fn is_provincial(&self) -> bool {
        self.tier != Tier::National
    }

    /// The authorities this node is, as tokens name their audience: the national node, this
    /// province's node, or both (standalone).
    pub fn audiences(&self) -> Vec<xueji_auth::Authority> {
        let mut audiences = Vec::new();
        if self.is_national() {
            audiences.push(xueji_auth::Authority::National);
        }
        if self.is_provincial() {
            audiences.push(xueji_auth::Authority::Province(self.province.clone()));
        }
        audiences
    }

    /// Identities a peer of this node may present besides the one it is expected to be: a
    /// standalone node serves every service under its one national certificate.
    pub fn also_accept(&self) -> Vec<xueji_pki::SpiffeId> {
        match self.tier {
            Tier::Standalone => vec![xueji_pki::SpiffeId::national(xueji_pki::files::NODE)],
            Tier::National | Tier::Province => Vec::new(),
        }
    }
}

/// The part a node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// One node playing the national node and one province (development, small setups).
    Standalone,
    /// The national node: national index and school authority.
    National,
    /// A provincial node: identity, school intake and replica.
    Province,
}

impl Tier {
    pub fn services(self) -> &'static [Service] {
        match self {
            Self::Standalone => &[
                Service::Identity,
                Service::Schools,
                Service::Transfers,
                Service::Stats,
                Service::National,
            ],
            Self::National => &[Service::Schools, Service::Stats, Service::National],
            Self::Province => &[
                Service::Identity,
                Service::Schools,
                Service::Transfers,
                Service::Stats,
            ],
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Standalone => "standalone",
            Self::National => "national",
            Self::Province => "province",
        })
    }
}

/// A service a node may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Identity,
    Schools,
    Transfers,
    Stats,
    National,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Schools => "schools",
            Self::Transfers => "transfers",
            Self::Stats => "stats",
            Self::National => "national",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_values_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:6000\"\nprovince = \"34\"\npki_dir = \"certs\"\nschools_file = \"s.csv\"\n",
        )
        .unwrap();
        let config = NodeConfig::load(Some(&path)).unwrap();
        assert_eq!(config.listen.port(), 6000);
        assert_eq!(config.province, "34");
        assert_eq!(config.pki_dir, dir.path().join("certs"));
        assert_eq!(config.schools_file, Some(dir.path().join("s.csv")));
        assert_eq!(config.concurrency_limit, 1024, "defaults fill the rest");
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "province = \"99\"\n").unwrap();
        let error = NodeConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("province"), "{error}");
        std::fs::write(&path, "listn = \"x\"\n").unwrap();
        let error = format!("{:#}", NodeConfig::load(Some(&path)).unwrap_err());
        assert!(error.contains("listn"), "{error}");
        std::fs::write(&path, "database_connections = 2\n").unwrap();
        let error = NodeConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("database_connections"), "{error}");
        let error = NodeConfig::load(Some(&dir.path().join("missing.toml"))).unwrap_err();
        assert!(error.to_string().contains("missing.toml"));
    }
}
