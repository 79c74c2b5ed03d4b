//! The demo's federation: a national node and two provinces on one embedded PostgreSQL, each
//! with its own database, port and PKI folder, and a configuration file per node to start it
//! alone afterwards.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Context;
use tokio::net::TcpListener;
use xueji_auth::{Level, Role};
use xueji_db::{ClusterOptions, Durability, EmbeddedPostgres};
use xueji_proto::schools::v1 as spb;
use xueji_schools::store::national::NationalStore;

use crate::seed;
use xueji_client::intake_client;
use xueji_node::config::{NodeConfig, Tier};
use xueji_node::node::{Database, RunningNode};
use xueji_node::pki;

use super::*;

fn database_name(node: &str) -> String {
    match node {
        "national" => "xueji_national".to_owned(),
        province => format!("xueji_{province}"),
    }
}

/// Writes the node's configuration as `<dir>/<name>.toml`, so that it can be started alone with
/// `xueji serve --config` (against the same database and PKI).
fn write_config(dir: &std::path::Path, name: &str, config: &NodeConfig) -> anyhow::Result<()> {
    let mut text = format!(
        "# Written by `xueji demo`: start this node alone with `xueji serve --config {name}.toml`.\n\
         tier = \"{}\"\nprovince = \"{}\"\nlisten = \"{}\"\npki_dir = \"pki/{}\"\n\
         database_url = \"{}\"\n",
        config.tier, config.province, config.listen, name, config.database_url
    );
    if !config.national_address.is_empty() {
        text.push_str(&format!(
            "national_address = \"{}\"\n",
            config.national_address
        ));
    }
    if !config.province_nodes.is_empty() {
        text.push_str("[province_nodes]\n");
        let mut nodes: Vec<_> = config.province_nodes.iter().collect();
        nodes.sort();
        for (province, address) in nodes {
            text.push_str(&format!("\"{province}\" = \"{address}\"\n"));
        }
    }
    // The config holds the database password: readable by its owner only.
    xueji_pki::write_secret(&dir.join(format!("{name}.toml")), text.as_bytes())?;
    Ok(())
}

/// The federation the demo and the transfer benchmark run: the national node, Fujian and Anhui
/// on one embedded PostgreSQL (a database each), the sample school list issued, published and
/// replicated to both provinces.
pub(crate) struct DemoFederation {
    /// Kept alive while the nodes run.
    pub(crate) cluster: EmbeddedPostgres,
    pub(crate) nodes: BTreeMap<&'static str, RunningNode>,
    pub(crate) pki_root: PathBuf,
    pub(crate) keys: DemoKeys,
    pub(crate) national_address: String,
    /// Schools open in Fujian's replica.
    pub(crate) replicated_schools: u64,
}

/// `operator_budget`: whether operators' requests are limited per second as in service (the
/// benchmark's scripted parties poll, and are not).
pub(crate) async fn start_federation(
    dir: &Path,
    operator_budget: bool,
) -> anyhow::Result<DemoFederation> {
    let budget = if operator_budget {
        NodeConfig::default().operator_requests_per_second
    } else {
        0
    };
    let pki_root = dir.join("pki");
    if !pki_root.join("national/ca.pem").exists() {
        pki::init_federation(&pki_root, &seed::SEED_PROVINCES)?;
    }

    step(
        "Starting the federation on an embedded PostgreSQL: the national node, Fujian (35), Anhui (34)",
    );
    let cluster_options = ClusterOptions {
        data_dir: Some(dir.join("postgres")),
        durability: Durability::Throwaway,
        ..ClusterOptions::default()
    };
    let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(cluster_options))
        .await?
        .context("starting the embedded PostgreSQL")?;
    let mut listeners = BTreeMap::new();
    for name in ["national", "35", "34"] {
        xueji_db::create_database(&cluster.url("postgres"), &database_name(name), None).await?;
        listeners.insert(name, TcpListener::bind("127.0.0.1:0").await?);
    }
    let address_of =
        |name: &str| -> anyhow::Result<String> { Ok(listeners[name].local_addr()?.to_string()) };
    let national_address = address_of("national")?;
    // One clock for the federation, moved forward to let a transfer's deadlines pass.
    let clock = xueji_auth::Clock::system();
    let national_config = NodeConfig {
        clock: clock.clone(),
        listen: listeners["national"].local_addr()?,
        tier: Tier::National,
        pki_dir: pki_root.join("national"),
        database_url: cluster.url(&database_name("national")),
        province_nodes: seed::SEED_PROVINCES
            .iter()
            .map(|p| Ok((p.to_string(), address_of(p)?)))
            .collect::<anyhow::Result<_>>()?,
        database_connections: 8,
        ..NodeConfig::default()
    };
    let province_config = |province: &str| -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig {
            listen: listeners[province].local_addr()?,
            tier: Tier::Province,
            province: province.to_owned(),
            pki_dir: pki_root.join(province),
            database_url: cluster.url(&database_name(province)),
            national_address: national_address.clone(),
            outbox_interval_ms: 300,
            database_connections: 8,
            transfer_sweep_ms: 300,
            calendar_sync_secs: 1,
            // The demo shows the nation's report moments after the province's.
            stats_report_ms: 1000,
            operator_requests_per_second: budget,
            clock: clock.clone(),
            ..NodeConfig::default()
        })
    };
    let configs = [
        ("national", national_config),
        ("35", province_config("35")?),
        ("34", province_config("34")?),
    ];
    let mut nodes = BTreeMap::new();
    for (name, config) in configs {
        write_config(dir, name, &config)?;
        let listener = listeners.remove(name).expect("bound above");
        let database = Database::open(&config, Durability::Throwaway).await?;
        let node = RunningNode::start_on(&config, database, listener).await?;
        println!(
            "  {:<8} {}  ({})",
            name,
            node.address,
            dir.join(format!("{name}.toml")).display()
        );
        nodes.insert(name, node);
    }
    let signer = DemoKeys::load(&pki_root, clock.clone())?;
    let mut replicated_schools = 0;

    step("Issuing the sample school list (Fujian and Anhui) nationally and publishing it");
    let national = NationalStore::new(nodes["national"].database.pool.clone());
    match seed::load(&national, |_, _| {}).await? {
        seed::Seeded::Loaded { schools, version } => {
            println!("  {schools} school codes issued, published as version {version}")
        }
        seed::Seeded::AlreadySeeded { codes } => {
            println!("  the registry already holds {codes} codes")
        }
    }
    for province in seed::SEED_PROVINCES {
        let token = mint(
            &signer,
            "province-operator",
            Level::Province,
            &format!("{province}0000"),
            Role::Operator,
        )?;
        let mut intake = intake_client(
            &nodes[province].address.to_string(),
            &pki_root.join(province),
            &token,
        )
        .await?;
        let report = intake
            .sync_replica(spb::SyncReplicaRequest {})
            .await?
            .into_inner();
        let open = intake
            .list_schools(spb::ListSchoolsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner()
            .schools
            .len();
        if province == "35" {
            replicated_schools = open as u64;
        }
        println!(
            "  province {province} replicated over mutual TLS: version {}, {open} schools open",
            report.replica_version
        );
    }
    Ok(DemoFederation {
        cluster,
        nodes,
        pki_root,
        keys: signer,
        national_address,
        replicated_schools,
    })
}
