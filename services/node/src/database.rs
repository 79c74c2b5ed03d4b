//! The database a node uses: a PostgreSQL server it was given, or an embedded cluster of its
//! own; opened with every schema the node's tier needs migrated.

use anyhow::Context;
use xueji_db::{ClusterOptions, Durability, EmbeddedPostgres, PgPool};

use crate::config::NodeConfig;

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
        let clock = config.clock.clone();
        let offset: xueji_db::ClockOffset = std::sync::Arc::new(move || clock.offset_secs());
        let pool = xueji_db::connect_on_clock(&url, config.database_connections, Some(offset))
            .await
            .context("connecting to PostgreSQL")?;
        if config.is_provincial() {
            xueji_identity::wiring::migrate(&pool).await?;
            xueji_schools::wiring::migrate_provincial(&pool).await?;
            xueji_transfers::wiring::migrate(&pool).await?;
        }
        xueji_stats::wiring::migrate(&pool).await?;
        if config.is_national() {
            xueji_schools::wiring::migrate_national(&pool).await?;
            xueji_national::wiring::migrate(&pool).await?;
        }
        Ok(Self { url, pool, cluster })
    }
}
