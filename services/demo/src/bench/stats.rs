//! `xueji bench stats`: a province loaded through the bulk importer, a year of enrollment
//! events on its students, identity's change feed consumed by the stats service's own
//! consumer (events a second), then the monthly report of the province, a city, a county and
//! a school over mutual-TLS gRPC against a plain `GROUP BY` over the same events, measured in
//! the same run (milliseconds, the ratio, and whether the two agree).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use sqlx::{PgPool, Row};
use xueji_auth::{Authority, Level, Role};
use xueji_db::Durability;
use xueji_proto::stats::v1 as pb;

use crate::bench::import::{SCHOOLS, import_file, write_file};
use xueji_client::{ImportKind, import_client, mint, stats_client};
use xueji_node::node::{Database, RunningNode};
use xueji_node::pki;

#[derive(Debug, Clone)]
pub struct StatsBenchOptions {
    /// Students loaded through the bulk importer.
    pub students: u64,
    /// Calls of each report (the median is shown).
    pub repeats: usize,
}

/// The year of events: it opens with the migrated records and ends before the day they were
/// loaded.
const YEAR_START: &str = "2025-12-01";
const MONTH: &str = "2026-09";

/// A year of synthetic events on the loaded students, written to identity's feed in day
/// order (a real feed is chronological): a quarter transfer to the next school and back a
/// month later, a tenth are suspended for two months, one in a hundred drops out, everyone is
/// promoted on 1 September. The migrated records' own events are moved to the year's start.
async fn a_year_of_events(pool: &PgPool) -> anyhow::Result<u64> {
    let next_school = |column: &str| {
        let cases: String = SCHOOLS
            .iter()
            .enumerate()
            .map(|(i, (code, _))| {
                let (next, county) = SCHOOLS[(i + 1) % SCHOOLS.len()];
                if column == "school" {
                    format!("WHEN '{code}' THEN '{next}' ")
                } else {
                    format!("WHEN '{code}' THEN '{county}' ")
                }
            })
            .collect();
        format!("CASE place->>'school' {cases} END")
    };
    sqlx::query("UPDATE identity.change_feed SET happened_on = $1::date WHERE kind = 'migration'")
        .bind(YEAR_START)
        .execute(pool)
        .await?;
    sqlx::query("CREATE SCHEMA IF NOT EXISTS bench")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE UNLOGGED TABLE bench.events (id bigint, day date, kind text, from_place jsonb,
                                             to_place jsonb)",
    )
    .execute(pool)
    .await?;
    let sql = format!(
        "WITH base AS (
             SELECT e.student_id AS id, identity.feed_place(e, s) AS place,
                    $1::date + ((e.student_id * 7) % 240)::int AS day
             FROM identity.enrollments e JOIN identity.students s ON s.id = e.student_id
             WHERE e.is_current AND e.status = 'active'
         ), moved AS (
             SELECT id, place, day,
                    jsonb_set(jsonb_set(place, '{{school}}', to_jsonb({school})),
                              '{{county}}', to_jsonb({county})) AS elsewhere
             FROM base WHERE id % 4 = 0
         ), events AS (
             SELECT id, day, 'transfer' AS kind, place AS from_place, elsewhere AS to_place
             FROM moved
             UNION ALL
             SELECT id, day + 30, 'transfer', elsewhere, place FROM moved
             UNION ALL
             SELECT id, day, 'suspension', place, NULL FROM base WHERE id % 10 = 1
             UNION ALL
             SELECT id, day + 60, 'resumption', NULL, place FROM base WHERE id % 10 = 1
             UNION ALL
             SELECT id, day, 'dropout', place, NULL FROM base WHERE id % 100 = 3
         ), promoted AS (
             SELECT id, '2026-09-01'::date AS day, 'promotion' AS kind, place AS from_place,
                    jsonb_set(place, '{{grade}}', to_jsonb((place->>'grade')::int + 1)) AS to_place
             FROM base WHERE id % 100 <> 3
         )
         INSERT INTO bench.events (id, day, kind, from_place, to_place)
         SELECT id, day, kind, from_place, to_place FROM (
             SELECT * FROM events UNION ALL SELECT * FROM promoted
         ) all_events",
        school = next_school("school"),
        county = next_school("county"),
    );
    sqlx::query(&sql).bind(YEAR_START).execute(pool).await?;
    sqlx::query("CREATE INDEX ON bench.events (day, id)")
        .execute(pool)
        .await?;
    // One transaction per day, as a day's changes commit in many transactions of their own.
    let days: Vec<chrono::NaiveDate> =
        sqlx::query_scalar("SELECT DISTINCT day FROM bench.events ORDER BY day")
            .fetch_all(pool)
            .await?;
    let progress = crate::bench::import::bar(days.len() as u64, "days");
    let mut written = 0;
    for day in days {
        written += sqlx::query(
            "INSERT INTO identity.change_feed (student_id, happened_on, kind, from_place, to_place)
             SELECT id, day, kind, from_place, to_place FROM bench.events WHERE day = $1
             ORDER BY id",
        )
        .bind(day)
        .execute(pool)
        .await?
        .rows_affected();
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(written)
}

/// The baseline: the month's report of a unit by a plain scan of every event.
async fn scan(pool: &PgPool, field: &str, pattern: &str) -> anyhow::Result<(Duration, i64)> {
    let started = Instant::now();
    let rows = sqlx::query(
        "SELECT kind,
                count(*) FILTER (WHERE happened_on < $3::date AND is_in AND NOT was_in)
                  - count(*) FILTER (WHERE happened_on < $3::date AND was_in AND NOT is_in)
                  AS opening,
                count(*) FILTER (WHERE happened_on >= $3::date AND happened_on < $4::date
                                 AND is_in AND NOT was_in) AS added,
                count(*) FILTER (WHERE happened_on >= $3::date AND happened_on < $4::date
                                 AND was_in AND NOT is_in) AS removed
         FROM (SELECT kind, happened_on,
                      coalesce((from_place->>$1) LIKE $2, false) AS was_in,
                      coalesce((to_place->>$1) LIKE $2, false) AS is_in
               FROM identity.change_feed) e
         GROUP BY kind",
    )
    .bind(field)
    .bind(pattern)
    .bind(format!("{MONTH}-01"))
    .bind("2026-10-01")
    .fetch_all(pool)
    .await?;
    let elapsed = started.elapsed();
    let closing = rows
        .iter()
        .map(|r| r.get::<i64, _>("opening") + r.get::<i64, _>("added") - r.get::<i64, _>("removed"))
        .sum();
    Ok((elapsed, closing))
}

pub async fn run(options: StatsBenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.students >= 100, "--students must be at least 100");
    anyhow::ensure!(options.repeats >= 1, "--repeats must be at least 1");
    let (dir, mut config) = crate::bench::import::bench_node("xueji-bench-stats-")?;
    // The benchmark drives the consumer itself, to time it; the node's own sleeps.
    config.stats_feed_ms = 3_600_000;
    let pki_dir = config.pki_dir.clone();
    println!(
        "==> Writing the migration file ({} students)",
        options.students
    );
    let file = dir.path().join("province.csv");
    write_file(&file, 0, options.students, true)?;

    println!("Starting PostgreSQL (durable settings, as in production) and the node…");
    let database = Database::open(&config, Durability::Durable).await?;
    let pool = xueji_db::connect(&database.url, 4).await?;
    let node = RunningNode::start(&config, database).await?;
    let address = node.address.to_string();
    let signer = Arc::new(pki::signer(&pki_dir)?);
    let token = mint(&signer, "bench", Level::Province, "350000", Role::Operator)?;

    println!("==> Loading the province through the bulk importer (migration)");
    let mut importer = import_client(&address, &pki_dir, &token).await?;
    let (load_time, _) = import_file(
        &mut importer,
        &file,
        ImportKind::Migration,
        options.students,
    )
    .await?;

    println!("==> A year of events on those students, written to identity's feed");
    let started = Instant::now();
    let written = a_year_of_events(&pool).await?;
    let events_time = started.elapsed();
    // Positions are given as rows commit, a round per read; here the whole year's backlog at
    // once, timed on its own, so that the consumer's figure is its steady pace.
    let started = Instant::now();
    let identity = xueji_identity::store::Store::new(pool.clone());
    let mut head = 0;
    loop {
        let stamped = identity.stamp_feed().await?;
        if stamped == head {
            break;
        }
        head = stamped;
    }
    let stamp_time = started.elapsed();

    println!("==> The stats consumer reads the feed over mTLS gRPC and applies it ({head} rows)");
    let as_stats = config.credential_mint(signer.clone()).for_service(
        "stats",
        "service:stats-35",
        Level::Province,
        "350000",
        vec![Authority::Province("35".into())],
    )?;
    let feed = xueji_stats::adapters::IdentityFeed::new(&address, "35", &as_stats)?;
    let stats_store = xueji_stats::store::Store::new(pool.clone());
    let consumer = xueji_stats::feed::Consumer::new(stats_store.clone(), feed);
    let progress = crate::bench::import::bar(head, "events");
    let started = Instant::now();
    loop {
        let caught_up = consumer.step().await?;
        progress.set_position(
            stats_store
                .position(xueji_stats::feed::IDENTITY_FEED)
                .await?,
        );
        if caught_up {
            break;
        }
    }
    let feed_time = started.elapsed();
    progress.finish_and_clear();

    println!(
        "==> The {MONTH} report of the province, a city, a county and a school ({} calls each) \
         vs a plain GROUP BY over the events",
        options.repeats
    );
    let mut client = stats_client(&address, &pki_dir, &token).await?;
    let (school, county) = SCHOOLS[0];
    let units = [
        ("province 35", "35".to_owned(), "county", "35%".to_owned()),
        ("city 3501", "3501".to_owned(), "county", "3501%".to_owned()),
        ("county", county.to_owned(), "county", county.to_owned()),
        ("school", school.to_owned(), "school", school.to_owned()),
    ];
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "unit",
        "report (median ms)",
        "GROUP BY scan (ms)",
        "× faster",
        "closing: report",
        "closing: scan",
    ]);
    let mut worst = 0.0f64;
    let mut least_ratio = f64::MAX;
    for (name, unit, field, pattern) in units {
        let mut times = Vec::with_capacity(options.repeats);
        let mut closing = 0;
        for _ in 0..options.repeats {
            let started = Instant::now();
            let answer = client
                .get_monthly_report(pb::GetMonthlyReportRequest {
                    unit: unit.clone(),
                    month: MONTH.into(),
                })
                .await?
                .into_inner();
            times.push(started.elapsed());
            closing = answer.report.map_or(0, |r| r.closing);
        }
        times.sort();
        let median = times[times.len() / 2];
        let (scan_time, scan_closing) = scan(&pool, field, &pattern).await?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let ratio = ms(scan_time) / ms(median);
        worst = worst.max(ms(median));
        least_ratio = least_ratio.min(ratio);
        table.add_row([
            format!("{name} ({unit})"),
            format!("{:.2}", ms(median)),
            format!("{:.1}", ms(scan_time)),
            format!("{ratio:.0}"),
            closing.to_string(),
            scan_closing.to_string(),
        ]);
    }
    node.stop().await?;
    println!("{table}");
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "Loaded {} students through the importer in {:.1} s ({:.0}/s); wrote {written} events \
         in {:.1} s; stamped {head} feed positions in {:.1} s.",
        options.students,
        load_time.as_secs_f64(),
        rate(options.students, load_time),
        events_time.as_secs_f64(),
        stamp_time.as_secs_f64(),
    );
    println!(
        "Feed: {head} events read over gRPC and applied in {:.1} s: {:.0} events/s (target ≥ \
         10,000).",
        feed_time.as_secs_f64(),
        rate(head, feed_time)
    );
    println!(
        "Reports: slowest median {worst:.2} ms (target ≤ 50 ms); smallest speed-up over the \
         scan {least_ratio:.0}× (target ≥ 100×)."
    );
    Ok(())
}
