//! `xueji bench transfer`: transfers from Anhui to Fujian with scripted approvals over the three
//! nodes on loopback (mutual TLS, the national relay), against the same saga inside Fujian
//! (no relay) measured in the same run: throughput, p50/p99 per transfer, machine CPU per
//! transfer, and the share of a transfer's time its messages spent in the national relay.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tokio::sync::Mutex;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as pb, transfers::v1 as tpb};

use crate::{
    bench::register::{TICK, machine_cpu},
    demo::{
        DemoFederation, mint, start_federation,
        transfers::{approve_when_open, enroll, start_for, state_name, wait_for_end},
    },
};
use xueji_client::{TransfersClient, transfers_client};

/// How often a scripted party looks again for its step (short: it is part of the latency).
const POLL: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct TransferBenchOptions {
    /// Transfers of each kind.
    pub transfers: usize,
    /// Transfers run at once.
    pub concurrency: usize,
}

/// One kind of transfer: where the student is and where it goes, and who decides each step.
struct Route {
    label: &'static str,
    receiving_school: String,
    /// (node address, pki dir, token) of each step's party, in order.
    parties: Vec<(String, std::path::PathBuf, String)>,
    /// The receiving school's node.
    receiving: (String, std::path::PathBuf, String),
    students: Vec<pb::Student>,
}

struct Figures {
    per_second: f64,
    latencies: Vec<Duration>,
    cpu_per_transfer: Option<Duration>,
    relay_share: Option<f64>,
}

impl Figures {
    fn quantile(&self, q: f64) -> Duration {
        let last = self.latencies.len().saturating_sub(1);
        self.latencies[((last as f64) * q).round() as usize]
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub async fn run(options: TransferBenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.transfers > 0, "--transfers must be at least 1");
    anyhow::ensure!(options.concurrency > 0, "--concurrency must be at least 1");
    let dir = tempfile::Builder::new()
        .prefix("xueji-bench-transfer-")
        .tempdir()?;
    let federation = start_federation(dir.path(), false).await?;
    println!(
        "==> Enrolling {} students in Anhui and {} in Fujian",
        options.transfers, options.transfers
    );
    let across = route(
        &federation,
        "34",
        options.transfers,
        "Anhui → Fujian (relay)",
    )
    .await?;
    let inside = route(
        &federation,
        "35",
        options.transfers,
        "inside Fujian (baseline)",
    )
    .await?;

    println!(
        "==> {} transfers of each kind, {} at a time",
        options.transfers, options.concurrency
    );
    let baseline = measure(&federation, &inside, options.concurrency, false).await?;
    let relayed = measure(&federation, &across, options.concurrency, true).await?;

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "transfers",
        "per second",
        "p50",
        "p99",
        "CPU per transfer",
        "time in the national relay",
    ]);
    for (route, figures) in [(&inside, &baseline), (&across, &relayed)] {
        table.add_row([
            route.label.to_owned(),
            format!("{:.1}", figures.per_second),
            ms(figures.quantile(0.5)),
            ms(figures.quantile(0.99)),
            figures
                .cpu_per_transfer
                .map(ms)
                .unwrap_or_else(|| "n/a".into()),
            figures
                .relay_share
                .map(|s| format!("{:.1}%", s * 100.0))
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    println!("{table}");
    println!(
        "  across provinces / inside one: throughput {:.2}×, p50 {:.2}×, p99 {:.2}× (target p99 ≤ 100 ms: {})",
        relayed.per_second / baseline.per_second,
        relayed.quantile(0.5).as_secs_f64() / baseline.quantile(0.5).as_secs_f64(),
        relayed.quantile(0.99).as_secs_f64() / baseline.quantile(0.99).as_secs_f64(),
        if relayed.quantile(0.99) <= Duration::from_millis(100) {
            "met"
        } else {
            "missed"
        }
    );
    for (name, node) in federation.nodes {
        node.stop()
            .await
            .with_context(|| format!("stopping {name}"))?;
    }
    drop(federation.cluster);
    Ok(())
}

/// Enrolls `count` students in `province` and names the parties that move each to Fujian.
async fn route(
    federation: &DemoFederation,
    province: &'static str,
    count: usize,
    label: &'static str,
) -> anyhow::Result<Route> {
    let keys = &federation.keys;
    let node = |p: &str| -> (String, std::path::PathBuf) {
        (
            federation.nodes[p].address.to_string(),
            federation.pki_root.join(p),
        )
    };
    // Sending: a primary school of `province`; receiving: one of Fujian in another county.
    let (sending, sending_county, receiving, receiving_county) = if province == "34" {
        ("2134000001", "340102", "2135000101", "350102")
    } else {
        ("2135000101", "350102", "2135000102", "350103")
    };
    let (sending_node, sending_pki) = node(province);
    let (fujian, fujian_pki) = node("35");
    let school = |code: &str| {
        mint(
            keys,
            &format!("operator@{code}"),
            Level::School,
            code,
            Role::Operator,
        )
    };
    let county = |code: &str| {
        mint(
            keys,
            &format!("approver@{code}"),
            Level::County,
            code,
            Role::Approver,
        )
    };
    let students = enroll(
        keys,
        &sending_node,
        &sending_pki,
        sending,
        sending_county,
        count,
        // Distinct per province: the national duplicate check compares name and birth date.
        |n| format!("转学{sending}测{n}"),
    )
    .await?;
    Ok(Route {
        label,
        receiving_school: receiving.to_owned(),
        parties: vec![
            (
                fujian.clone(),
                fujian_pki.clone(),
                county(receiving_county)?,
            ),
            (sending_node.clone(), sending_pki.clone(), school(sending)?),
            (sending_node, sending_pki, county(sending_county)?),
        ],
        receiving: (fujian, fujian_pki, school(receiving)?),
        students,
    })
}

/// Runs every transfer of `route`, `concurrency` at a time.
async fn measure(
    federation: &DemoFederation,
    route: &Route,
    concurrency: usize,
    relayed: bool,
) -> anyhow::Result<Figures> {
    let queue = Arc::new(Mutex::new(route.students.clone()));
    let cpu_before = machine_cpu();
    let began = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let queue = queue.clone();
        let (node, pki, token) = route.receiving.clone();
        let receiving = transfers_client(&node, &pki, &token).await?;
        let mut parties = Vec::new();
        for (node, pki, token) in &route.parties {
            parties.push(transfers_client(node, pki, token).await?);
        }
        let school = route.receiving_school.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ids = Vec::new();
            let mut receiving = receiving;
            loop {
                let Some(student) = queue.lock().await.pop() else {
                    break;
                };
                let started = Instant::now();
                let id =
                    one_transfer(&mut receiving, &mut parties, &school, &student, worker).await?;
                latencies.push(started.elapsed());
                ids.push(id);
            }
            anyhow::Ok((latencies, ids))
        }));
    }
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    for worker in workers {
        let (mut l, mut i) = worker.await??;
        latencies.append(&mut l);
        ids.append(&mut i);
    }
    let elapsed = began.elapsed();
    let cpu_after = machine_cpu();
    latencies.sort();
    let done = latencies.len().max(1);
    let cpu_per_transfer = match (cpu_before, cpu_after) {
        (Some((busy_before, _)), Some((busy_after, _))) => {
            Some(TICK * (busy_after - busy_before) as u32 / done as u32)
        }
        _ => None,
    };
    let relay_share = if relayed {
        let in_relay: f64 = sqlx::query_scalar(
            "SELECT coalesce(sum(extract(epoch FROM forwarded_at - received_at)), 0)::float8
             FROM national.relay WHERE transfer_id = ANY($1::uuid[])",
        )
        .bind(&ids)
        .fetch_one(&federation.nodes["national"].database.pool)
        .await?;
        let total: f64 = latencies.iter().map(Duration::as_secs_f64).sum();
        Some(in_relay / total)
    } else {
        None
    };
    Ok(Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies,
        cpu_per_transfer,
        relay_share,
    })
}

/// Starts one transfer and approves each step at its party's node as soon as it is open there;
/// answers once the receiving side sees it completed.
async fn one_transfer(
    receiving: &mut TransfersClient,
    parties: &mut [TransfersClient],
    school: &str,
    student: &pb::Student,
    worker: usize,
) -> anyhow::Result<uuid::Uuid> {
    let started = start_for(
        receiving,
        &format!("bench-{worker}"),
        school,
        student,
        "基准测试",
        "bench",
    )
    .await?;
    for (position, party) in parties.iter_mut().enumerate() {
        approve_when_open(party, &started.id, position, POLL).await?;
    }
    let shown = wait_for_end(receiving, &started.id, POLL).await?;
    anyhow::ensure!(
        shown.state() == tpb::TransferState::Completed,
        "transfer {} ended {}",
        started.id,
        state_name(&shown)
    );
    Ok(started.id.parse()?)
}
