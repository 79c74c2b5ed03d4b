//! `xueji bench register`: RegisterStudent over mutual-TLS gRPC against a bare single-row INSERT
//! into a table of the same shape, on the same PostgreSQL, at the same concurrency, in one run.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_auth::{Level, Role};
use xueji_db::{Durability, PgPool};
use xueji_proto::identity::v1 as pb;

use crate::sample;
use xueji_client::{identity_client, mint};
use xueji_node::config::{MIN_DATABASE_CONNECTIONS, NodeConfig};
use xueji_node::node::{Database, RunningNode};
use xueji_node::pki;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub seconds: f64,
    pub concurrency: Vec<usize>,
    /// gRPC connections the clients share; `None`: one per client, as separate operators'
    /// tools would have. A gateway in front of the node would multiplex many users over few.
    pub connections: Option<usize>,
    /// INSERT and RegisterStudent alternate this many times per concurrency; each side's figures
    /// pool its rounds.
    pub rounds: u32,
}

#[derive(Debug, Clone)]
struct Measured {
    per_second: f64,
    /// Every measured call's latency, sorted.
    latencies: Vec<Duration>,
    /// WAL written per operation, and full-page images among it: the cost a durable commit pays.
    wal_bytes: f64,
    full_page_images: f64,
    /// The whole machine's CPU over the measured seconds (Linux only): busy time per operation,
    /// and the share of CPU time nobody used. Idle CPU under load means the operation waits
    /// (on commits, on locks) rather than computes.
    cpu: Option<CpuUse>,
}

#[derive(Debug, Clone, Copy)]
struct CpuUse {
    busy_per_op: Duration,
    idle_share: f64,
}

impl Measured {
    /// Several rounds of the same measurement as one: mean throughput and WAL, latencies pooled.
    fn pool(rounds: Vec<Measured>) -> Measured {
        let count = rounds.len().max(1) as f64;
        let mean = |field: fn(&Measured) -> f64| rounds.iter().map(field).sum::<f64>() / count;
        let mut latencies: Vec<Duration> = rounds
            .iter()
            .flat_map(|round| round.latencies.iter().copied())
            .collect();
        latencies.sort();
        let cpu: Option<Vec<CpuUse>> = rounds.iter().map(|round| round.cpu).collect();
        Measured {
            per_second: mean(|m| m.per_second),
            wal_bytes: mean(|m| m.wal_bytes),
            full_page_images: mean(|m| m.full_page_images),
            cpu: cpu.map(|cpu| CpuUse {
                busy_per_op: cpu.iter().map(|c| c.busy_per_op).sum::<Duration>() / count as u32,
                idle_share: cpu.iter().map(|c| c.idle_share).sum::<f64>() / count,
            }),
            latencies,
        }
    }

    fn quantile(&self, q: f64) -> Duration {
        let last = self.latencies.len().saturating_sub(1);
        self.latencies
            .get(((self.latencies.len() as f64 * q) as usize).min(last))
            .copied()
            .unwrap_or_default()
    }
}

/// (WAL bytes so far, full-page images so far) of the whole cluster.
async fn wal_position(pool: &PgPool) -> anyhow::Result<(f64, f64)> {
    let (bytes, images): (f64, f64) = sqlx::query_as(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8, wal_fpi::float8 FROM pg_stat_wal",
    )
    .fetch_one(pool)
    .await?;
    Ok((bytes, images))
}

/// The machine's CPU time so far, from `/proc/stat`: (busy, idle) in clock ticks.
pub(crate) fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal; guest time is already counted in user.
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle, idle))
}

/// `/proc/stat` counts in USER_HZ, which Linux fixes at 100 per second on every architecture.
pub(crate) const TICK: Duration = Duration::from_millis(10);

const WARM_UP: Duration = Duration::from_millis(500);

pub async fn run_register(options: BenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("xueji-bench-").tempdir()?;
    let pki_dir = dir.path().join("pki");
    pki::init(&pki_dir)?;
    let schools_file = dir.path().join("schools.csv");
    std::fs::write(&schools_file, sample::SCHOOLS_CSV)?;
    let max_concurrency = options.concurrency.iter().copied().max().unwrap_or(1);
    let clients_runtime = ClientsRuntime::start()?;
    let config = NodeConfig {
        listen: "127.0.0.1:0".parse()?,
        pki_dir: pki_dir.clone(),
        data_dir: dir.path().join("data"),
        schools_file: Some(schools_file),
        database_connections: (max_concurrency as u32).max(MIN_DATABASE_CONNECTIONS),
        // The benchmark's clients stand for a whole county's schools behind one token.
        operator_requests_per_second: 0,
        ..NodeConfig::default()
    };
    println!("Starting PostgreSQL (durable settings, as in production) and the node…");
    let database = Database::open(&config, Durability::Durable).await?;
    let baseline_pool = clients_runtime
        .run({
            let url = database.url.clone();
            async move { Ok(xueji_db::connect(&url, max_concurrency as u32).await?) }
        })
        .await?;
    sqlx::query("CREATE SCHEMA IF NOT EXISTS bench")
        .execute(&baseline_pool)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench.students (LIKE identity.students INCLUDING ALL)")
        .execute(&baseline_pool)
        .await?;
    let node = RunningNode::start(&config, database).await?;
    let signer = pki::signer(&pki_dir)?;
    let token = mint(
        &signer,
        "bench",
        Level::School,
        "2135000101",
        Role::Operator,
    )?;
    let counter = Arc::new(AtomicU64::new(0));

    let mut results = Vec::new();
    for &concurrency in &options.concurrency {
        let connections = options
            .connections
            .unwrap_or(concurrency)
            .clamp(1, concurrency);
        let mut channels = Vec::new();
        for _ in 0..connections {
            let (address, pki_dir, token) =
                (node.address.to_string(), pki_dir.clone(), token.clone());
            channels.push(
                clients_runtime
                    .run(async move { identity_client(&address, &pki_dir, &token).await })
                    .await?,
            );
        }
        // Workers take connections round robin: with the default, one each.
        let clients: Arc<Vec<_>> = Arc::new(
            (0..concurrency)
                .map(|worker| channels[worker % connections].clone())
                .collect(),
        );
        let (mut inserts, mut registers) = (Vec::new(), Vec::new());
        for round in 1..=options.rounds {
            println!(
                "concurrency {concurrency}, round {round}/{}: bare INSERT, then RegisterStudent \
                 over mTLS gRPC…",
                options.rounds
            );
            inserts.push(
                measure(
                    &clients_runtime,
                    &baseline_pool,
                    concurrency,
                    options.seconds,
                    {
                        let pool = baseline_pool.clone();
                        let counter = counter.clone();
                        move |_worker| {
                            let pool = pool.clone();
                            let counter = counter.clone();
                            async move {
                                bare_insert(&pool, counter.fetch_add(1, Ordering::Relaxed)).await
                            }
                        }
                    },
                )
                .await?,
            );
            registers.push(
                measure(
                    &clients_runtime,
                    &baseline_pool,
                    concurrency,
                    options.seconds,
                    {
                        let counter = counter.clone();
                        let clients = clients.clone();
                        move |worker| {
                            let mut client = clients[worker].clone();
                            let counter = counter.clone();
                            async move {
                                let n = counter.fetch_add(1, Ordering::Relaxed);
                                client.register_student(registration(n)).await?;
                                anyhow::Ok(())
                            }
                        }
                    },
                )
                .await?,
            );
            catch_up(&node, &baseline_pool).await?;
        }
        let (insert, register) = (Measured::pool(inserts), Measured::pool(registers));
        results.push((concurrency, insert, register));
    }
    node.stop().await?;
    clients_runtime.stop();

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "clients",
        "INSERT/s",
        "INSERT p50",
        "INSERT p99",
        "Register/s",
        "Register p50",
        "Register p99",
        "ratio",
        "WAL/op INSERT",
        "WAL/op Register",
        "CPU/op INSERT",
        "CPU/op Register",
    ]);
    for (concurrency, insert, register) in &results {
        table.add_row([
            concurrency.to_string(),
            format!("{:.0}", insert.per_second),
            format!("{:.2} ms", insert.quantile(0.50).as_secs_f64() * 1e3),
            format!("{:.2} ms", insert.quantile(0.99).as_secs_f64() * 1e3),
            format!("{:.0}", register.per_second),
            format!("{:.2} ms", register.quantile(0.50).as_secs_f64() * 1e3),
            format!("{:.2} ms", register.quantile(0.99).as_secs_f64() * 1e3),
            format!("{:.2}", register.per_second / insert.per_second),
            format!(
                "{:.0} B ({:.2} FPI)",
                insert.wal_bytes, insert.full_page_images
            ),
            format!(
                "{:.0} B ({:.2} FPI)",
                register.wal_bytes, register.full_page_images
            ),
            cpu_cell(insert.cpu),
            cpu_cell(register.cpu),
        ]);
    }
    println!("{table}");
    println!(
        "ratio = RegisterStudent throughput / bare INSERT throughput at the same concurrency, \
         each the mean of {} alternating rounds of {} s (target at 32 clients: ≥ 0.70)",
        options.rounds, options.seconds
    );
    println!(
        "CPU/op = the whole machine's busy CPU time over the measured seconds per operation (client, \
         node and PostgreSQL together); in brackets, the share of CPU time left idle"
    );
    Ok(())
}

/// Lets the work registrations leave queued behind them (national delivery every second, audit
/// sealing) catch up after a RegisterStudent phase: during the phase it runs alongside and
/// counts against RegisterStudent; left over, it would slow the next INSERT phase instead.
async fn catch_up(node: &RunningNode, pool: &PgPool) -> anyhow::Result<()> {
    if let Some(deliverer) = &node.deliverer {
        while deliverer.deliver_now().await? > 0 {}
    }
    xueji_audit::seal_all(pool).await?;
    Ok(())
}

/// The bench's clients (gRPC and the baseline's PostgreSQL connections alike) run on a runtime of
/// their own, as a separate program would: on the node's runtime their tasks queued behind the
/// node's on its two workers, and the node's behind theirs. Two threads, because one held back
/// the bare INSERTs' clients (measured: 12,800 INSERTs a second against 15,000 with two).
struct ClientsRuntime {
    runtime: tokio::runtime::Runtime,
}

impl ClientsRuntime {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-client")
            .enable_all()
            .build()?;
        Ok(Self { runtime })
    }

    /// Runs `work` on the clients' runtime, where the connections it opens then live.
    async fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.runtime.spawn(work).await?
    }

    fn stop(self) {
        self.runtime.shutdown_background();
    }
}

fn cpu_cell(cpu: Option<CpuUse>) -> String {
    cpu.map_or_else(
        || "–".to_owned(),
        |cpu| {
            format!(
                "{:.0} µs ({:.0}% idle)",
                cpu.busy_per_op.as_secs_f64() * 1e6,
                cpu.idle_share * 100.0
            )
        },
    )
}

/// Runs `concurrency` workers, each calling `make(worker)` in a loop for `seconds` after a
/// warm-up; every call's future owns its state.
async fn measure<F, Fut>(
    clients: &ClientsRuntime,
    pool: &PgPool,
    concurrency: usize,
    seconds: f64,
    make: F,
) -> anyhow::Result<Measured>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let wal_before = wal_position(pool).await?;
    let start = Instant::now();
    let measure_from = start + WARM_UP;
    let end = measure_from + Duration::from_secs_f64(seconds);
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let make = make.clone();
        workers.push(clients.runtime.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                make(worker).await?;
                if began >= measure_from {
                    latencies.push(began.elapsed());
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = machine_cpu();
    tokio::time::sleep_until(end.into()).await;
    let cpu_after = machine_cpu();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let wal_after = wal_position(pool).await?;
    // Every call, warm-up included, wrote WAL.
    let calls = (latencies.len() as f64 * (seconds + WARM_UP.as_secs_f64()) / seconds).max(1.0);
    latencies.sort();
    let cpu = cpu_before
        .zip(cpu_after)
        .and_then(|((busy0, idle0), (busy1, idle1))| {
            let (busy, idle) = (busy1.checked_sub(busy0)?, idle1.checked_sub(idle0)?);
            Some(CpuUse {
                busy_per_op: TICK * u32::try_from(busy).ok()?
                    / u32::try_from(latencies.len().max(1)).ok()?,
                idle_share: idle as f64 / (busy + idle).max(1) as f64,
            })
        });
    Ok(Measured {
        per_second: latencies.len() as f64 / seconds,
        cpu,
        latencies,
        wal_bytes: (wal_after.0 - wal_before.0) / calls,
        full_page_images: (wal_after.1 - wal_before.1) / calls,
    })
}

/// A single-row INSERT of the shape of a registration, autocommitted.
async fn bare_insert(pool: &PgPool, n: u64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO bench.students (registry_number, name, gender, birth_date, ethnicity,
             document_type, document_number, id_number_claim, name_key, guardian,
             idempotency_key, request_hash, registered_by)
         VALUES ($1, $2, 'male', '2018-01-01', '01', 'resident_id_card', $3, $3, $4,
                 '{\"name\": \"x\", \"relation\": \"父亲\", \"phone\": \"\"}', $5, '\\x00', 'bench')",
    )
    .bind(format!("B{n:018}"))
    .bind(format!("学生{n}"))
    .bind(format!("{n:018}"))
    .bind(format!("学生{n}|male|2018-01-01"))
    .bind(format!("bench-insert-{n}"))
    .execute(pool)
    .await?;
    Ok(())
}

/// Tells this run's idempotency keys from an earlier run's on the same database.
fn run_id() -> u32 {
    static RUN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *RUN.get_or_init(std::process::id)
}

/// Birth dates the bench spreads its students over: ten years of them.
const BIRTH_DATES: u64 = 3650;

/// The n-th distinct valid registration: a unique resident ID number and name. Students spread
/// over ten years of birth dates, a few dozen per date in a whole run, as in a real county: the
/// temporary number's random part is drawn per school division and birth date, and piling
/// hundreds of students onto one date would make its draws clash far more often than they do.
fn registration(n: u64) -> pb::RegisterStudentRequest {
    let birth = chrono::NaiveDate::from_ymd_opt(2010, 1, 1).expect("valid")
        + chrono::Days::new(n % BIRTH_DATES);
    // The sequence's last digit is odd for men, even for women.
    let sequence = (n / BIRTH_DATES) % 1000;
    let gender = if sequence % 2 == 1 {
        pb::Gender::Male
    } else {
        pb::Gender::Female
    };
    let id_number = xueji_codes::ResidentId::from_body(&format!(
        "350102{}{sequence:03}",
        birth.format("%Y%m%d")
    ))
    .expect("a valid body")
    .to_string();
    pb::RegisterStudentRequest {
        class_name: String::new(),
        migrant_child: false,
        left_behind_child: false,
        continues_registry_number: String::new(),
        provincial_fields: Default::default(),
        idempotency_key: format!("bench-register-{n}-{}", run_id()),
        name: format!("学生{n}"),
        gender: gender as i32,
        birth_date: birth.to_string(),
        ethnicity: "01".into(),
        document_type: pb::DocumentType::ResidentIdCard as i32,
        document_number: id_number,
        school_code: "2135000101".into(),
        grade: 1,
        entry_date: "2024-09-01".into(),
        entry_route: pb::EntryRoute::NearbyAdmission as i32,
        guardian: Some(pb::Guardian {
            name: "家长".into(),
            relation: "父亲".into(),
            phone: String::new(),
        }),
    }
}
