//! `xueji`: the node binary. Wiring only: parse the command line, call the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use xueji_db::Durability;
use xueji_node::{
    bench::{self, BenchOptions},
    config::NodeConfig,
    demo::{self, DemoOptions},
    node::{Database, RunningNode},
    pki, seed,
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
    /// The demo: a provincial node on an embedded PostgreSQL, the bundled sample registered and
    /// approved over mutual TLS.
    Demo {
        /// Exit when the demo is done instead of serving until Ctrl-C.
        #[arg(long)]
        no_wait: bool,
        /// Keep the PKI and data in this folder (default: a temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
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
    /// The school-code registry's chores.
    Schools {
        #[command(subcommand)]
        command: SchoolsCommand,
    },
    /// Benchmarks that print figures against a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
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

#[derive(Subcommand)]
enum SchoolsCommand {
    /// Load the sample school list (Fujian and Anhui) into the national registry and publish
    /// it as version 1; does nothing if the registry already holds codes.
    Seed {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// RegisterStudent over mTLS gRPC vs a bare single-row INSERT.
    Register {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
        concurrency: Vec<usize>,
        /// Connections the clients share (default: one per client).
        #[arg(long)]
        connections: Option<usize>,
        /// Alternating INSERT/RegisterStudent rounds per concurrency: drift in the machine's
        /// speed during the run then weighs on both sides alike.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
    },
    /// The annual cycle's promotion of many synthetic students (a province of 20 million) vs a
    /// bare batched UPDATE of the same rows: students a second and the ratio.
    Promote {
        /// Synthetic students (enrollments) to promote.
        #[arg(long, default_value_t = 20_000_000)]
        students: i64,
        /// Enrollment ids per batch (one transaction each).
        #[arg(long, default_value_t = xueji_identity::cycle::DEFAULT_BATCH)]
        batch: i64,
    },
    /// Bulk import over the streaming RPC (a migration of many synthetic students, and an
    /// intake) vs COPY of the same rows into a bare table: students a second, ratios, peak
    /// memory.
    Import {
        /// Students in the migration file (a quarter-size file is imported first, to show
        /// memory stays flat as the file grows).
        #[arg(long, default_value_t = 1_000_000)]
        students: u64,
        /// Students in the intake file (registration's checks, row by row).
        #[arg(long, default_value_t = 50_000)]
        intake: u64,
    },
    /// Statistics: a province loaded through the bulk importer, a year of events, the change
    /// feed consumed (events a second), then monthly reports of the province, a city, a
    /// county and a school vs a plain GROUP BY over the events: milliseconds and the ratio.
    Stats {
        /// Students loaded: a large province. Loading runs at the importer's rate (about
        /// 7,500 a second on two cores: some 45 minutes for the default), then the year of
        /// events well over an hour; `--students 1000000` takes under ten minutes.
        #[arg(long, default_value_t = 20_000_000)]
        students: u64,
        /// Calls of each report; the median is shown.
        #[arg(long, default_value_t = 20)]
        repeats: usize,
    },
    /// Transfers from Anhui to Fujian over the three nodes (the national relay) vs the same
    /// saga inside Fujian: throughput, p50/p99, CPU per transfer, time in the relay.
    Transfer {
        /// Transfers of each kind.
        #[arg(long, default_value_t = 200)]
        transfers: usize,
        /// Transfers run at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
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
            eprintln!("xueji serving on {} — Ctrl-C to stop", node.address);
            tokio::signal::ctrl_c().await?;
            node.stop().await?;
        }
        Command::Demo { no_wait, dir } => {
            let summary = demo::run(DemoOptions {
                wait: !no_wait,
                dir,
            })
            .await?;
            anyhow::ensure!(summary.audit_intact, "the audit chain did not verify");
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
        Command::Schools {
            command: SchoolsCommand::Seed { config },
        } => {
            let config = NodeConfig::load(config.as_deref())?;
            anyhow::ensure!(
                config.is_national(),
                "the school list is seeded on the national node (tier = \"national\" or \"standalone\")"
            );
            let database = Database::open(&config, Durability::Durable).await?;
            let store = xueji_schools::store::national::NationalStore::new(database.pool.clone());
            let progress = indicatif::ProgressBar::new(0);
            let seeded = seed::load(&store, |done, total| {
                progress.set_length(total as u64);
                progress.set_position(done as u64);
            })
            .await?;
            progress.finish_and_clear();
            match seeded {
                seed::Seeded::Loaded { schools, version } => {
                    println!("{schools} schools issued and published as version {version}")
                }
                seed::Seeded::AlreadySeeded { codes } => {
                    println!("the registry already holds {codes} codes; nothing loaded")
                }
            }
            xueji_audit::seal_all(&database.pool).await?;
        }
        Command::Bench {
            command:
                BenchCommand::Register {
                    seconds,
                    concurrency,
                    connections,
                    rounds,
                },
        } => {
            bench::run_register(BenchOptions {
                seconds,
                concurrency,
                connections,
                rounds,
            })
            .await?;
        }
        Command::Bench {
            command: BenchCommand::Import { students, intake },
        } => {
            xueji_node::bench_import::run(xueji_node::bench_import::ImportBenchOptions {
                students,
                intake,
            })
            .await?;
        }
        Command::Bench {
            command: BenchCommand::Stats { students, repeats },
        } => {
            xueji_node::bench_stats::run(xueji_node::bench_stats::StatsBenchOptions {
                students,
                repeats,
            })
            .await?;
        }
        Command::Bench {
            command: BenchCommand::Promote { students, batch },
        } => {
            xueji_node::bench_promote::run(xueji_node::bench_promote::PromoteBenchOptions {
                students,
                batch,
            })
            .await?;
        }
        Command::Bench {
            command:
                BenchCommand::Transfer {
                    transfers,
                    concurrency,
                },
        } => {
            xueji_node::bench_transfer::run(xueji_node::bench_transfer::TransferBenchOptions {
                transfers,
                concurrency,
            })
            .await?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
