//! `xueji`: the node binary. Wiring only: parse the command line, call the library. The demo
//! and the benchmarks are `xueji-demo`'s.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use xueji_db::Durability;
use xueji_node::{
    config::NodeConfig,
    node::{Database, RunningNode},
    pki,
};

// The node allocates and frees many small buffers per request on every worker thread (HTTP/2
// frames, protobuf messages, SQL rows); glibc's allocator spent about a sixth of the process's
// time on them under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "xueji", version, about = "Xueji student-registry node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the node's services until Ctrl-C.
    Serve {
        /// TOML configuration file; XUEJI_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Development PKI.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a development PKI with token keys. Without --federation: one root CA, the node's
    /// certificate and an operator certificate, for a standalone node. With --federation: a
    /// national root, one intermediate CA per province, and per-service certificates for the
    /// national node and each province, each in its own folder.
    Init {
        #[arg(long, default_value = "pki")]
        out: PathBuf,
        /// Provinces of a federation (2-digit codes, comma-separated), e.g. 35,34.
        #[arg(long, value_delimiter = ',')]
        federation: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Seal pending entries, then check the whole hash chain, and against the heads the
    /// national node witnessed for this node (so that a rewrite shows even with every hash
    /// recomputed); exits 1 if it is broken.
    Verify {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Verify this database instead of the configured one.
        #[arg(long)]
        database_url: Option<String>,
        /// Check the chain on its own, without the witnessed heads (the national node is
        /// unreachable, say): a consistent rewrite then passes.
        #[arg(long)]
        offline: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let _telemetry = match xueji_telemetry::init("xueji", default_log_filter(&cli.command)) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: cannot set up logging: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Interactive commands keep logs to warnings so their own output stays readable.
fn default_log_filter(command: &Command) -> &'static str {
    match command {
        Command::Serve { .. } => "info",
        _ => "warn",
    }
}

async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    match command {
        Command::Serve { config } => {
            let config = NodeConfig::load(config.as_deref())?;
            let database = Database::open(&config, Durability::Durable).await?;
            let node = RunningNode::start(&config, database).await?;
            eprintln!(
                "xueji serving on {} — Ctrl-C to stop, SIGHUP to reload the policy",
                node.address
            );
            let mut hangups =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                    .context("listening for SIGHUP")?;
            loop {
                tokio::select! {
                    stop = tokio::signal::ctrl_c() => {
                        stop?;
                        break;
                    }
                    _ = hangups.recv() => {
                        let policy = node.policy.clone();
                        // The outcome is logged; a bad file leaves the policy in force.
                        let _ = tokio::task::spawn_blocking(move || policy.reload()).await;
                    }
                }
            }
            node.stop().await?;
        }
        Command::Pki {
            command: PkiCommand::Init { out, federation },
        } => {
            if federation.is_empty() {
                pki::init(&out)?;
                println!(
                    "development PKI for a standalone node written to {}",
                    out.display()
                );
            } else {
                for province in &federation {
                    anyhow::ensure!(
                        province.len() == 2
                            && xueji_codes::Divisions::bundled()
                                .known(&format!("{province}0000"))
                                .is_ok(),
                        "--federation: {province:?} is not a 2-digit province code"
                    );
                }
                let provinces: Vec<&str> = federation.iter().map(String::as_str).collect();
                pki::init_federation(&out, &provinces)?;
                println!(
                    "development PKI of a federation written to {}: authorities/ (the CA keys: keep them \
                     apart, no node needs them), national/, {}",
                    out.display(),
                    provinces
                        .iter()
                        .map(|p| format!("{p}/"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    config,
                    database_url,
                    offline,
                },
        } => {
            let mut config = NodeConfig::load(config.as_deref())?;
            if let Some(url) = database_url {
                config.database_url = url;
            }
            let database = Database::open(&config, Durability::Durable).await?;
            xueji_audit::seal_all(&database.pool)
                .await
                .context("sealing pending entries")?;
            let witnessed = if offline {
                println!(
                    "checking the chain on its own (--offline): a consistent rewrite would pass"
                );
                Default::default()
            } else {
                let national = if config.national_address.is_empty() {
                    config.listen.to_string()
                } else {
                    config.national_address.clone()
                };
                let witness = xueji_node::witness::AuditWitness::new(
                    &config,
                    &national,
                    std::sync::Arc::new(pki::signer(&config.pki_dir)?),
                    database.pool.clone(),
                )?;
                let heads = witness.witnessed().await.with_context(|| {
                    format!(
                        "reading the witnessed heads from the national node at {national} \
                         (is it running? --offline checks the chain on its own)"
                    )
                })?;
                println!("{} heads witnessed by the national node", heads.len());
                heads
            };
            let report = xueji_audit::verify_witnessed(&database.pool, &witnessed, |checked| {
                eprintln!("  {checked} entries checked…");
            })
            .await?;
            println!(
                "{} sealed entries, {} unsealed; head {}",
                report.sealed, report.unsealed, report.head_hash
            );
            if !report.is_intact() {
                for problem in &report.problems {
                    println!("BROKEN: {problem}");
                }
                return Ok(std::process::ExitCode::FAILURE);
            }
            println!("audit chain intact");
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
