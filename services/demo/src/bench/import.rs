//! `xueji bench import`: bulk import over the streaming RPC into one node on the embedded
//! PostgreSQL, against `COPY` of the same rows into a bare table of the students' shape,
//! measured in the same run: students a second, the ratios, and the process's peak memory
//! after a quarter-size file and after the full file (flat memory: the two peaks stay close).

use std::{
    io::{Read, Write},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use xueji_auth::{Level, Role};
use xueji_db::Durability;
use xueji_identity::domain::{
    DocumentType, EnrollmentStatus, EntryRoute, Guardian,
    sheet::{Layout, SheetStudent},
};
use xueji_proto::identity::v1 as pb;

use crate::sample;
use xueji_client::{ImportKind, import_client, mint, upload_pieces};
use xueji_node::config::NodeConfig;
use xueji_node::node::{Database, RunningNode};
use xueji_node::pki;

#[derive(Debug, Clone)]
pub struct ImportBenchOptions {
    /// Students in the full migration file.
    pub students: u64,
    /// Students in the intake file.
    pub intake: u64,
}

/// The schools the synthetic students attend (the sample's primary schools) and their
/// divisions.
pub(crate) const SCHOOLS: [(&str, &str); 3] = [
    ("2135000101", "350102"),
    ("2135000102", "350103"),
    ("2135000103", "350203"),
];

/// One synthetic student of a series: a unique resident ID number per (series, n).
struct Synthetic {
    id_number: String,
    name: String,
    birth: chrono::NaiveDate,
    school: usize,
}

/// Household-registration counties of pupils past the first 1,500,000 of a school (1,500
/// birth dates × 1,000 sequence numbers): every further block of a school's pupils is
/// registered in another county of Fuzhou or Xiamen (none a school's own), so ID numbers
/// stay unique to 27,000,000 students a series.
const HOUSEHOLD_COUNTIES: [&str; 15] = [
    "350104", "350105", "350111", "350112", "350121", "350122", "350123", "350124", "350125",
    "350128", "350181", "350206", "350211", "350212", "350213",
];

fn synthetic(series: u64, n: u64, schools: usize) -> Synthetic {
    let school = (n % schools as u64) as usize;
    let k = n / schools as u64;
    // Each series has its own 1,500 birth dates, so no two series share an ID number.
    let birth = chrono::NaiveDate::from_ymd_opt(2005, 1, 1).expect("valid")
        + chrono::Days::new(series * 1500 + k % 1500);
    let sequence = (k / 1500) % 1000;
    let block = k / 1_500_000;
    let household = match block {
        0 => SCHOOLS[school].1,
        _ => {
            HOUSEHOLD_COUNTIES
                [((block - 1) as usize * SCHOOLS.len() + school) % HOUSEHOLD_COUNTIES.len()]
        }
    };
    let id_number = xueji_codes::ResidentId::from_body(&format!(
        "{household}{}{sequence:03}",
        birth.format("%Y%m%d")
    ))
    .expect("a valid body")
    .to_string();
    Synthetic {
        id_number,
        name: format!("学生{series}-{n}"),
        birth,
        school,
    }
}

fn gender_of(id_number: &str) -> xueji_codes::Gender {
    id_number
        .parse::<xueji_codes::ResidentId>()
        .expect("synthetic ID numbers are valid")
        .gender()
}

/// Writes `count` students of `series` in the import layout (migration: with G numbers,
/// active; intake: no number, no state, all at the first school).
pub(crate) fn write_file(
    path: &Path,
    series: u64,
    count: u64,
    migration: bool,
) -> anyhow::Result<()> {
    let layout = Layout::new(&[]);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut writer = xueji_sheets::SheetWriter::new(xueji_sheets::Format::Csv)?;
    writer.write_row(&layout.headings())?;
    let guardian = Guardian {
        name: "王建国".into(),
        relation: "父亲".into(),
        phone: "13800000000".into(),
    };
    let fields = Default::default();
    let schools = if migration { SCHOOLS.len() } else { 1 };
    for n in 0..count {
        let student = synthetic(series, n, schools);
        let number = format!("G{}", student.id_number);
        let mut cells = layout.cells(&SheetStudent {
            registry_number: &number,
            aliases: &[],
            name: &student.name,
            gender: gender_of(&student.id_number),
            birth_date: student.birth,
            ethnicity: "01",
            document_type: DocumentType::ResidentIdCard,
            document_number: Some(&student.id_number),
            school_code: SCHOOLS[student.school].0,
            grade: if migration { 3 } else { 1 },
            entry_date: chrono::NaiveDate::from_ymd_opt(2023, 9, 1).expect("valid"),
            entry_route: EntryRoute::NearbyAdmission,
            status: EnrollmentStatus::Active,
            left_reason: None,
            guardian: &guardian,
            provincial_fields: &fields,
            flags: Default::default(),
            class: None,
        });
        if !migration {
            cells[0].clear();
            cells[12].clear();
        }
        writer.write_row(&cells)?;
        if n % 10_000 == 0 {
            out.write_all(&writer.take_ready()?)?;
        }
    }
    out.write_all(&writer.finish()?)?;
    out.flush()?;
    Ok(())
}

/// The process's peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
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

/// `COPY` of the same students into `bench.students`, a bare table of the students' shape
/// (the same columns and indexes, nothing else written).
async fn copy_baseline(pool: &PgPool, count: u64) -> anyhow::Result<Duration> {
    sqlx::query("DROP TABLE IF EXISTS bench.students")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE bench.students (LIKE identity.students INCLUDING ALL)")
        .execute(pool)
        .await?;
    let progress = bar(count, "COPY");
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw(
            "COPY bench.students (registry_number, name, gender, birth_date, ethnicity,
                 document_type, document_number, id_number_claim, name_key, guardian,
                 idempotency_key, request_hash, registered_by, provincial_fields)
             FROM STDIN WITH (FORMAT csv)",
        )
        .await?;
    let mut buffer = String::new();
    for n in 0..count {
        let student = synthetic(0, n, SCHOOLS.len());
        let gender = match gender_of(&student.id_number) {
            xueji_codes::Gender::Male => "male",
            xueji_codes::Gender::Female => "female",
        };
        buffer.push_str(&format!(
            "G{id},{name},{gender},{birth},01,resident_id_card,{id},{id},{name}|{gender}|{birth},\
             \"{{\"\"name\"\":\"\"王建国\"\",\"\"relation\"\":\"\"父亲\"\",\"\"phone\"\":\"\"13800000000\"\"}}\",\
             migration:G{id},\\x00,bench,{{}}\n",
            id = student.id_number,
            name = student.name,
            birth = student.birth,
        ));
        if buffer.len() > 1 << 20 {
            copy.send(std::mem::take(&mut buffer).into_bytes()).await?;
            progress.set_position(n + 1);
        }
    }
    copy.send(buffer.into_bytes()).await?;
    copy.finish().await?;
    progress.finish_and_clear();
    Ok(started.elapsed())
}

/// Uploads a file from disk through the import RPC, read as it is sent.
pub(crate) async fn import_file(
    client: &mut xueji_client::ImportClient,
    path: &Path,
    kind: ImportKind,
    rows: u64,
) -> anyhow::Result<(Duration, pb::ImportJob)> {
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    std::io::copy(&mut file, &mut hasher)?;
    let header = pb::ImportHeader {
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        format: pb::SheetFormat::Csv as i32,
        sha256: hex::encode(hasher.finalize()),
        size: std::fs::metadata(path)?.len(),
    };
    let mut file = std::fs::File::open(path)?;
    let pieces = std::iter::from_fn(move || {
        let mut piece = vec![0; 256 * 1024];
        match file.read(&mut piece) {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                piece.truncate(n);
                Some(piece)
            }
        }
    });
    let progress = bar(
        rows,
        if kind == ImportKind::Intake {
            "intake"
        } else {
            "migration"
        },
    );
    let started = Instant::now();
    let job = upload_pieces(client, kind, header, pieces, |job| {
        progress.set_position(job.rows_handled);
    })
    .await?;
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    anyhow::ensure!(
        job.bad == 0 && job.imported == rows,
        "the import did not take every row: {job:?}"
    );
    Ok((elapsed, job))
}

/// A standalone node's folder (PKI, the sample schools, data) and configuration for a
/// benchmark: on loopback, no request budget.
pub(crate) fn bench_node(prefix: &str) -> anyhow::Result<(tempfile::TempDir, NodeConfig)> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let pki_dir = dir.path().join("pki");
    pki::init(&pki_dir)?;
    let schools_file = dir.path().join("schools.csv");
    std::fs::write(&schools_file, sample::SCHOOLS_CSV)?;
    let config = NodeConfig {
        listen: "127.0.0.1:0".parse()?,
        pki_dir,
        data_dir: dir.path().join("data"),
        schools_file: Some(schools_file),
        operator_requests_per_second: 0,
        ..NodeConfig::default()
    };
    Ok((dir, config))
}

pub async fn run(options: ImportBenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.students >= 4, "--students must be at least 4");
    let (dir, config) = bench_node("xueji-bench-import-")?;
    let pki_dir = config.pki_dir.clone();
    println!(
        "==> Writing the files ({} students to migrate, a quarter-size file, {} to take in)",
        options.students, options.intake
    );
    let quarter_file = dir.path().join("migration-quarter.csv");
    let full_file = dir.path().join("migration.csv");
    let intake_file = dir.path().join("intake.csv");
    write_file(&quarter_file, 1, options.students / 4, true)?;
    write_file(&full_file, 0, options.students, true)?;
    write_file(&intake_file, 2, options.intake, false)?;
    println!(
        "    migration file: {:.0} MiB",
        std::fs::metadata(&full_file)?.len() as f64 / (1 << 20) as f64
    );

    println!("Starting PostgreSQL (durable settings, as in production) and the node…");
    let database = Database::open(&config, Durability::Durable).await?;
    let baseline_pool = xueji_db::connect(&database.url, 2).await?;
    let node = RunningNode::start(&config, database).await?;
    sqlx::query("CREATE SCHEMA IF NOT EXISTS bench")
        .execute(&baseline_pool)
        .await?;

    println!(
        "==> Baseline: COPY of the same {} rows into a bare table of the students' shape",
        options.students
    );
    let copy_time = copy_baseline(&baseline_pool, options.students).await?;
    let copy_rss = peak_rss_mib();

    let signer = Arc::new(pki::signer(&pki_dir)?);
    let address = node.address.to_string();
    let province_token = mint(&signer, "bench", Level::Province, "350000", Role::Operator)?;
    let mut client = import_client(&address, &pki_dir, &province_token).await?;
    println!(
        "==> Migration of a quarter-size file ({} students)",
        options.students / 4
    );
    let (quarter_time, _) = import_file(
        &mut client,
        &quarter_file,
        ImportKind::Migration,
        options.students / 4,
    )
    .await?;
    let quarter_rss = peak_rss_mib();
    println!(
        "==> Migration of the full file ({} students) over the streaming RPC",
        options.students
    );
    let (full_time, _) = import_file(
        &mut client,
        &full_file,
        ImportKind::Migration,
        options.students,
    )
    .await?;
    let full_rss = peak_rss_mib();
    let started = Instant::now();
    loop {
        let (undelivered, _) = xueji_identity::store::outbox::backlog(&baseline_pool).await?;
        if undelivered == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let index_time = started.elapsed();

    let county_token = mint(&signer, "bench", Level::County, "350102", Role::Operator)?;
    let mut county = import_client(&address, &pki_dir, &county_token).await?;
    println!(
        "==> Intake of {} new students (registration's checks, row by row)",
        options.intake
    );
    let (intake_time, _) = import_file(
        &mut county,
        &intake_file,
        ImportKind::Intake,
        options.intake,
    )
    .await?;
    node.stop().await?;

    let rate = |rows: u64, time: Duration| rows as f64 / time.as_secs_f64();
    let copy_rate = rate(options.students, copy_time);
    let mib = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.0} MiB"));
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "step",
        "students",
        "seconds",
        "students/s",
        "vs COPY",
        "peak RSS after",
    ]);
    let mut row = |step: &str, rows: u64, time: Duration, rss: Option<f64>| {
        let per_second = rate(rows, time);
        table.add_row([
            step.to_owned(),
            rows.to_string(),
            format!("{:.1}", time.as_secs_f64()),
            format!("{per_second:.0}"),
            format!("{:.2}", per_second / copy_rate),
            mib(rss),
        ]);
    };
    row(
        "COPY into a bare table",
        options.students,
        copy_time,
        copy_rss,
    );
    row(
        "migration, quarter file",
        options.students / 4,
        quarter_time,
        quarter_rss,
    );
    row(
        "migration, full file",
        options.students,
        full_time,
        full_rss,
    );
    row("intake", options.intake, intake_time, peak_rss_mib());
    println!("{table}");
    println!(
        "Migration end to end (file streamed over mTLS gRPC, checked, written with numbers, \
         enrollments, audit and outbox): {:.0} students/s (target ≥ 50,000). The national index \
         took the last migrated records {:.1} s after the upload ended.",
        rate(options.students, full_time),
        index_time.as_secs_f64()
    );
    println!(
        "Peak memory after the quarter file {} and after the full file {}: the importer holds \
         one chunk of rows, not the file.",
        mib(quarter_rss),
        mib(full_rss)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_id_numbers_stay_unique_for_a_province_of_twenty_million() {
        let mut seen = std::collections::HashSet::new();
        // Around every block boundary of every school, and across series.
        for series in 0..2 {
            for block in 0..5u64 {
                for offset in 0..3_000u64 {
                    let n = (block * 1_500_000 * 3).saturating_sub(1_500) + offset;
                    let student = synthetic(series, n, SCHOOLS.len());
                    assert!(student.id_number.parse::<xueji_codes::ResidentId>().is_ok());
                    assert!(seen.insert(student.id_number), "n {n} of series {series}");
                }
            }
        }
        let last = synthetic(0, 19_999_999, SCHOOLS.len());
        assert!(last.id_number.parse::<xueji_codes::ResidentId>().is_ok());
    }
}
