//! `xueji bench promote`: the annual cycle's promotion over many synthetic students (20 million
//! by default: a large province) on the embedded PostgreSQL, against a bare batched UPDATE of the
//! same rows in the same batches, measured in the same run: students a second, and the ratio.

use std::time::{Duration, Instant};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use xueji_auth::{Caller, Clock, Jurisdiction, Level, Role};
use xueji_db::Durability;
use xueji_identity::{
    cycle::CycleRunner,
    domain::school_year::{CycleStep, SchoolYearPolicy},
    store::Store,
};

use crate::sample;
use xueji_node::{config::NodeConfig, node::Database};

#[derive(Debug, Clone)]
pub struct PromoteBenchOptions {
    pub students: i64,
    pub batch: i64,
}

/// Synthetic enrollments written per statement while filling the table.
const FILL_CHUNK: i64 = 500_000;

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:<10} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

pub async fn run(options: PromoteBenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.students > 0, "--students must be at least 1");
    anyhow::ensure!(options.batch > 0, "--batch must be at least 1");
    let dir = tempfile::Builder::new()
        .prefix("xueji-bench-promote-")
        .tempdir()?;
    let config = NodeConfig {
        data_dir: dir.path().join("data"),
        ..NodeConfig::default()
    };
    println!("Starting PostgreSQL (durable settings, as in production)…");
    let database = Database::open(&config, Durability::Durable).await?;
    xueji_identity::store::migrate(&database.pool).await?;
    // The benchmark's own pool: its statements are long by design (a fill of half a million
    // rows, a vacuum of the whole table), so no statement timeout and no slow-statement log.
    let connect = std::str::FromStr::from_str(&database.url).map(
        |options: sqlx::postgres::PgConnectOptions| {
            sqlx::ConnectOptions::disable_statement_logging(options)
                .options([("statement_timeout", "0"), ("jit", "off")])
        },
    )?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(connect)
        .await?;
    let store = Store::new(pool);
    let mut roster = Vec::new();
    for school in sample::parse_schools(sample::SCHOOLS_CSV)? {
        let grades: Vec<u32> = (1..=12)
            .filter(|grade| school.grade_place(*grade).is_some())
            .collect();
        store.upsert_school(&school).await?;
        for grade in grades {
            roster.push((
                school.code.to_string(),
                school.division.to_string(),
                grade as i16,
            ));
        }
    }
    anyhow::ensure!(!roster.is_empty(), "the sample schools teach no grade");

    let summer = 2026;
    let entered = chrono::NaiveDate::from_ymd_opt(summer - 1, 9, 1).expect("valid");
    println!(
        "==> Writing {} synthetic students over {} school grades",
        options.students,
        roster.len()
    );
    let filling = bar(options.students as u64, "writing");
    let mut written = 0;
    while written < options.students {
        let chunk = FILL_CHUNK.min(options.students - written);
        store
            .insert_synthetic_enrollments(chunk, &roster, entered)
            .await?;
        written += chunk;
        filling.set_position(written as u64);
    }
    filling.finish_and_clear();
    vacuum(&store).await?;
    let ceiling = store.enrollment_ceiling().await?;

    println!(
        "==> Baseline: a bare UPDATE of every row, in batches of {}",
        options.batch
    );
    let baseline = bar(ceiling as u64, "bare");
    let started = Instant::now();
    let mut after = 0;
    let mut bare_rows = 0;
    while after < ceiling {
        let upto = (after + options.batch).min(ceiling);
        bare_rows += store.bare_grade_update(after, upto, 0).await?;
        after = upto;
        baseline.set_position(after as u64);
    }
    let bare_time = started.elapsed();
    baseline.finish_and_clear();
    vacuum(&store).await?;

    println!("==> The cycle's promotion (rules, watermark, audit per batch)");
    let runner = std::sync::Arc::new(
        CycleRunner::new(
            store.clone(),
            xueji_policy::Live::new(SchoolYearPolicy::bundled()),
            "35",
            Clock::system(),
        )
        .with_batch(options.batch),
    );
    let caller = Caller {
        user: "bench".into(),
        level: Level::Province,
        jurisdiction: Jurisdiction::Division("350000".parse()?),
        role: Role::Operator,
    };
    let promoting = bar(ceiling as u64, "promotion");
    let started = Instant::now();
    let work = tokio::spawn({
        let runner = runner.clone();
        let caller = caller.clone();
        async move {
            runner
                .run_steps(summer, &[CycleStep::Promotion], &caller, "bench")
                .await
        }
    });
    while !work.is_finished() {
        if let Some(run) = store.cycle_steps(summer).await?.first() {
            promoting.set_position(run.watermark.max(0) as u64);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let runs = work.await??;
    let promote_time = started.elapsed();
    promoting.finish_and_clear();
    let promoted = runs.first().map_or(0, |run| run.changed);

    let rate = |rows: f64, time: Duration| rows / time.as_secs_f64();
    let bare_rate = rate(bare_rows as f64, bare_time);
    let promote_rate = rate(ceiling as f64, promote_time);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["", "students", "seconds", "students/s", "vs bare UPDATE"]);
    table.add_row([
        "bare batched UPDATE".to_owned(),
        bare_rows.to_string(),
        format!("{:.1}", bare_time.as_secs_f64()),
        format!("{bare_rate:.0}"),
        "1.00".to_owned(),
    ]);
    table.add_row([
        "cycle promotion".to_owned(),
        format!("{ceiling} ({promoted} promoted)"),
        format!("{:.1}", promote_time.as_secs_f64()),
        format!("{promote_rate:.0}"),
        format!("{:.2}", promote_rate / bare_rate),
    ]);
    println!("{table}");
    println!(
        "Graduating grades stay (graduation is its own step); batches of {} ids.",
        options.batch
    );
    Ok(())
}

/// Dead rows of the previous pass would slow the next one: both passes start clean.
async fn vacuum(store: &Store) -> anyhow::Result<()> {
    Ok(store.vacuum_enrollments().await?)
}
