//! `xueji-demo`: the demo federation (the README's main job) and the benchmarks. Wiring only:
//! parse the command line, call the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use xueji_db::Durability;
use xueji_demo::{
    bench,
    demo::{self, DemoOptions},
    seed,
};
use xueji_node::{config::NodeConfig, node::Database};

// As in the node: many small buffers per request on every worker thread.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "xueji-demo",
    version,
    about = "The Xueji demo federation and benchmarks",
    long_about = "Without a command: the demo. A national node, Fujian (35) and Anhui (34) on one \
                  embedded PostgreSQL, over mutual TLS, running the registry's story from \
                  registration to transfers across provinces; then it keeps serving until Ctrl-C."
)]
struct Cli {
    /// Exit when the demo is done instead of serving until Ctrl-C.
    #[arg(long)]
    no_wait: bool,
    /// Keep the PKI and data in this folder (default: a temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks that print figures against a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Load the sample school list (Fujian and Anhui) into a national node's registry and
    /// publish it as version 1; does nothing if the registry already holds codes.
    SeedSchools {
        /// The national (or standalone) node's configuration.
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
    let _telemetry = match xueji_telemetry::init("xueji-demo", "warn") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: cannot set up logging: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let Some(command) = cli.command else {
        let summary = demo::run(DemoOptions {
            wait: !cli.no_wait,
            dir: cli.dir,
        })
        .await?;
        anyhow::ensure!(summary.audit_intact, "the audit chain did not verify");
        return Ok(());
    };
    match command {
        Command::SeedSchools { config } => {
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
            bench::register::run_register(bench::register::BenchOptions {
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
            bench::import::run(bench::import::ImportBenchOptions { students, intake }).await?;
        }
        Command::Bench {
            command: BenchCommand::Stats { students, repeats },
        } => {
            bench::stats::run(bench::stats::StatsBenchOptions { students, repeats }).await?;
        }
        Command::Bench {
            command: BenchCommand::Promote { students, batch },
        } => {
            bench::promote::run(bench::promote::PromoteBenchOptions { students, batch }).await?;
        }
        Command::Bench {
            command:
                BenchCommand::Transfer {
                    transfers,
                    concurrency,
                },
        } => {
            bench::transfer::run(bench::transfer::TransferBenchOptions {
                transfers,
                concurrency,
            })
            .await?;
        }
    }
    Ok(())
}
