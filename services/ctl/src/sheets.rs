//! Spreadsheets: importing a file (with a progress bar, resumed after a broken connection),
//! import jobs and their error files, the template, the export.

use std::{
    io::Read,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use xueji_proto::identity::v1::{self as pb, import_service_client::ImportServiceClient};

use xueji_client::{ImportKind, OperatorChannel};

type Client = ImportServiceClient<OperatorChannel>;

/// Bytes per upload message.
const PIECE: usize = 256 * 1024;
/// Uploads tried again after a broken connection (each resumes the job where it stopped).
const ATTEMPTS: u32 = 5;

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// A CSV (UTF-8 or GB18030) or XLSX file in the template's layout (`xuejictl template`).
    file: PathBuf,
    /// Import existing records from a previous system (keeping their numbers and states)
    /// instead of a September intake (province and ministry operators).
    #[arg(long)]
    migration: bool,
    /// Where to write the error file when rows are refused (default: beside the file, as
    /// NAME.errors.EXT).
    #[arg(long)]
    errors_out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The file to write (.csv or .xlsx).
    #[arg(long, short)]
    output: PathBuf,
    /// A school code or division code inside your jurisdiction (default: all of it).
    #[arg(long, default_value = "")]
    scope: String,
}

#[derive(Args)]
pub(crate) struct TemplateArgs {
    /// The file to write (.xlsx with drop-down lists, or .csv with the headings only).
    #[arg(long, short, default_value = "xueji-template.xlsx")]
    output: PathBuf,
    /// The province whose own fields the template carries (default: yours).
    #[arg(long, default_value = "")]
    province: String,
}

#[derive(Args)]
pub(crate) struct JobsArgs {
    /// One job's id (default: the newest jobs of your jurisdiction).
    job: Option<String>,
}

#[derive(Args)]
pub(crate) struct ErrorsArgs {
    /// The job's id.
    job: String,
    /// The file to write (default: the name the node suggests).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

fn format_of(path: &Path) -> anyhow::Result<pb::SheetFormat> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(pb::SheetFormat::Csv),
        Some("xlsx") => Ok(pb::SheetFormat::Xlsx),
        _ => bail!("{} must end in .csv or .xlsx", path.display()),
    }
}

fn sha256_of(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; PIECE];
    let mut size = 0;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// The file's pieces, read as they are sent, counting the bytes sent.
fn pieces(
    path: &Path,
    sent: Arc<AtomicU64>,
) -> anyhow::Result<impl Iterator<Item = Vec<u8>> + use<>> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(std::iter::from_fn(move || {
        let mut buffer = vec![0; PIECE];
        match file.read(&mut buffer) {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buffer.truncate(n);
                sent.fetch_add(n as u64, Ordering::Relaxed);
                Some(buffer)
            }
        }
    }))
}

pub(crate) async fn import(
    channel: OperatorChannel,
    args: ImportArgs,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = ImportServiceClient::new(channel)
        .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES);
    let format = format_of(&args.file)?;
    let (sha256, size) = sha256_of(&args.file)?;
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let header = pb::ImportHeader {
        file_name: file_name.clone(),
        format: format as i32,
        sha256,
        size,
    };
    let bar = if args.quiet || json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let mut attempt = 1;
    let job = loop {
        let sent = Arc::new(AtomicU64::new(0));
        let answer = upload_once(
            &mut client,
            args.migration,
            header.clone(),
            pieces(&args.file, sent.clone())?,
            &bar,
            &sent,
        )
        .await;
        match answer {
            Ok(job) => break job,
            Err(status)
                if attempt < ATTEMPTS
                    && matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                    ) =>
            {
                bar.println(format!(
                    "the upload broke ({}); sending the file again resumes the job where it stopped",
                    status.message()
                ));
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(status) => {
                bar.abandon();
                return Err(status.into());
            }
        }
    };
    bar.finish_and_clear();
    let errors_path = if job.bad > 0 {
        let path = args.errors_out.clone().unwrap_or_else(|| {
            let stem = args
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let extension = if format == pb::SheetFormat::Xlsx {
                "xlsx"
            } else {
                "csv"
            };
            args.file
                .with_file_name(format!("{stem}.errors.{extension}"))
        });
        let (bytes, _) = download_errors(&mut client, &job.id).await?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Some(path)
    } else {
        None
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&job_json(&job))?);
        return Ok(());
    }
    print_jobs(std::slice::from_ref(&job));
    if job.replayed {
        println!(
            "This file was imported before (job {}): nothing was imported again.",
            job.id
        );
    }
    if !job.failure.is_empty() {
        println!("The job failed: {}", job.failure);
    }
    if !job.first_errors.is_empty() {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["row", "column", "field", "reason"]);
        for error in &job.first_errors {
            table.add_row([
                error.row.to_string(),
                error.heading.clone(),
                error.field.clone(),
                error.reason.clone(),
            ]);
        }
        println!("{table}");
    }
    if let Some(path) = errors_path {
        println!(
            "{} bad rows are in {} (its last column says why): fix them there and import that file.",
            job.bad,
            path.display()
        );
    }
    Ok(())
}

async fn upload_once(
    client: &mut Client,
    migration: bool,
    header: pb::ImportHeader,
    pieces: impl Iterator<Item = Vec<u8>> + Send + 'static,
    bar: &ProgressBar,
    sent: &AtomicU64,
) -> Result<pb::ImportJob, tonic::Status> {
    let report = |job: &pb::ImportJob| {
        bar.set_position(sent.load(Ordering::Relaxed));
        bar.set_message(format!(
            "{} rows: {} imported, {} already here, {} bad",
            job.rows_handled, job.imported, job.already_present, job.bad
        ));
    };
    let kind = if migration {
        ImportKind::Migration
    } else {
        ImportKind::Intake
    };
    let job = xueji_client::upload_pieces(client, kind, header, pieces, report).await?;
    report(&job);
    Ok(job)
}

async fn download_errors(client: &mut Client, job: &str) -> anyhow::Result<(Vec<u8>, String)> {
    let mut stream = client
        .download_import_errors(pb::DownloadImportErrorsRequest {
            job_id: job.to_owned(),
        })
        .await?
        .into_inner();
    let (mut bytes, mut name) = (Vec::new(), String::new());
    while let Some(message) = stream.message().await? {
        if name.is_empty() {
            name = message.file_name;
        }
        bytes.extend(message.chunk);
    }
    Ok((bytes, name))
}

pub(crate) async fn jobs(
    channel: OperatorChannel,
    args: JobsArgs,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = ImportServiceClient::new(channel);
    let jobs = match args.job {
        Some(id) => vec![
            client
                .get_import_job(pb::GetImportJobRequest { job_id: id })
                .await?
                .into_inner()
                .job
                .context("the node answered no job")?,
        ],
        None => {
            client
                .list_import_jobs(pb::ListImportJobsRequest { limit: 20 })
                .await?
                .into_inner()
                .jobs
        }
    };
    if json {
        let all: Vec<_> = jobs.iter().map(job_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print_jobs(&jobs);
    }
    Ok(())
}

pub(crate) async fn errors(channel: OperatorChannel, args: ErrorsArgs) -> anyhow::Result<()> {
    let mut client = ImportServiceClient::new(channel);
    let (bytes, name) = download_errors(&mut client, &args.job).await?;
    let path = args.output.unwrap_or_else(|| PathBuf::from(name));
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

pub(crate) async fn template(channel: OperatorChannel, args: TemplateArgs) -> anyhow::Result<()> {
    let mut client = ImportServiceClient::new(channel);
    let mut stream = client
        .download_template(pb::DownloadTemplateRequest {
            format: format_of(&args.output)? as i32,
            province: args.province,
        })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(message) = stream.message().await? {
        bytes.extend(message.chunk);
    }
    std::fs::write(&args.output, bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!("wrote {}", args.output.display());
    Ok(())
}

pub(crate) async fn export(channel: OperatorChannel, args: ExportArgs) -> anyhow::Result<()> {
    let mut client =
        ImportServiceClient::new(channel).max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES);
    let mut stream = client
        .export_students(pb::ExportStudentsRequest {
            format: format_of(&args.output)? as i32,
            scope: args.scope,
        })
        .await?
        .into_inner();
    let bar = ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut file = std::fs::File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut students = 0;
    while let Some(message) = stream.message().await? {
        std::io::Write::write_all(&mut file, &message.chunk)?;
        students = message.students;
        bar.set_message(format!("{students} students"));
    }
    bar.finish_and_clear();
    println!("wrote {students} students to {}", args.output.display());
    Ok(())
}

fn state(job: &pb::ImportJob) -> &'static str {
    match pb::ImportJobState::try_from(job.state) {
        Ok(pb::ImportJobState::Running) => "running",
        Ok(pb::ImportJobState::Finished) => "finished",
        Ok(pb::ImportJobState::Failed) => "failed",
        _ => "unknown",
    }
}

fn print_jobs(jobs: &[pb::ImportJob]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "job",
        "kind",
        "file",
        "state",
        "rows",
        "imported",
        "already here",
        "bad",
        "started",
    ]);
    for job in jobs {
        table.add_row([
            job.id.clone(),
            job.kind.clone(),
            job.file_name.clone(),
            state(job).to_owned(),
            job.rows_handled.to_string(),
            job.imported.to_string(),
            job.already_present.to_string(),
            job.bad.to_string(),
            job.started_at.clone(),
        ]);
    }
    println!("{table}");
}

fn job_json(job: &pb::ImportJob) -> serde_json::Value {
    serde_json::json!({
        "id": job.id,
        "kind": job.kind,
        "file_name": job.file_name,
        "encoding": job.encoding,
        "state": state(job),
        "rows_handled": job.rows_handled,
        "imported": job.imported,
        "already_present": job.already_present,
        "bad": job.bad,
        "done_through_row": job.done_through_row,
        "failure": job.failure,
        "replayed": job.replayed,
        "first_errors": job.first_errors.iter().map(|e| serde_json::json!({
            "row": e.row, "field": e.field, "heading": e.heading, "reason": e.reason,
        })).collect::<Vec<_>>(),
    })
}
