//! `xuejictl`: the operator CLI. Readable tables by default, `--json` for scripts.
//!
//! Connection settings come from flags or the environment: `XUEJI_NODE` (host:port),
//! `XUEJI_PKI_DIR` (ca.pem, operator.pem, operator.key), `XUEJI_TOKEN` (bearer token).

mod calendar;
mod certificates;
mod change;
mod classes;
mod cycle;
mod desk;
mod details;
mod lists;
mod policy;
mod school;
mod sheets;
mod stats;
mod students;
mod transfer;
mod watch;

use students::{RegisterArgs, print_detail, print_students, register_request, to_json};

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use xueji_auth::{Grant, Level, Role, TokenSigner};
use xueji_proto::identity::v1::{self as pb, identity_service_client::IdentityServiceClient};
use xueji_rpc::TlsSource;

#[derive(Parser)]
#[command(
    name = "xuejictl",
    version,
    about = "Operator CLI of the Xueji student registry"
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Connection {
    /// The node's gRPC address.
    #[arg(
        long,
        env = "XUEJI_NODE",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    node: String,
    /// Folder with ca.pem, operator.pem and operator.key.
    #[arg(long, env = "XUEJI_PKI_DIR", default_value = "pki", global = true)]
    pki_dir: PathBuf,
    /// Bearer token (see `xuejictl token mint`).
    #[arg(long, env = "XUEJI_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Register a student (issues a temporary L number, pending approval).
    Register(Box<RegisterArgs>),
    /// Approve pending registrations (registry authority approver): one, or several in one
    /// call, each decided on its own with its outcome listed.
    Approve {
        #[arg(required = true)]
        registry_numbers: Vec<String>,
    },
    /// The registrations waiting for a decision, with counts by school and grade; `--approve`
    /// approves those listed.
    Queue(desk::QueueArgs),
    /// Find students of your jurisdiction by name, birth date, guardian or part of an ID.
    Search(desk::SearchArgs),
    /// Reject a pending registration with a reason.
    Reject {
        registry_number: String,
        #[arg(long)]
        reason: String,
    },
    /// Show one student by registry number, alias or resident ID number.
    Show { number: String },
    /// List a school's students.
    List {
        #[arg(long)]
        school: String,
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        /// Fetch every page.
        #[arg(long)]
        all: bool,
    },
    /// List open problem records in a jurisdiction (default: your own); `problems resolve`
    /// asks to confirm or delete a flagged record.
    Problems {
        #[arg(long, default_value = "")]
        jurisdiction: String,
        #[command(subcommand)]
        action: Option<change::ProblemsAction>,
    },
    /// Outbox messages the national node refused for good, with its reasons (province and
    /// ministry operators): the province delivered past them.
    Rejected,
    /// Find a student anywhere in the country through the national node (by registry number or
    /// resident ID number): the national node asks the owning province.
    Find { number: String },
    /// The national node's province directory.
    Provinces,
    /// The school-code registry: applications, decisions, lifecycle, lookups, publications.
    School {
        #[command(subcommand)]
        command: school::SchoolCommand,
    },
    /// Transfers: start, approve, reject, cancel, show, your inbox, the calendar.
    Transfer {
        #[command(subcommand)]
        command: transfer::TransferCommand,
    },
    /// Status changes (异动) and key-field corrections: request, correct, approve, reject,
    /// cancel, show; evidence files.
    Change {
        #[command(subcommand)]
        command: change::ChangeCommand,
    },
    /// What waits for your decision: status changes and corrections (transfers: `transfer
    /// inbox`).
    Inbox,
    /// Every value each field of a student's record has had: who, when, why, approved by whom.
    History { registry_number: String },
    /// The annual cycle: dry-run, run (with progress), status; graduation confirmations and
    /// outcomes.
    Cycle {
        #[command(subcommand)]
        command: cycle::CycleCommand,
    },
    /// Certificates (学籍证明, 在读证明): issue one as a PDF to print, verify one by its code.
    Certificate {
        #[command(subcommand)]
        command: certificates::CertificateCommand,
    },
    /// A school's classes (班级) and seats (班内学号): create, list, assign, roster, carry.
    Class {
        #[command(subcommand)]
        command: classes::ClassCommand,
    },
    /// The node's policy files (the province's rules): reload them without a restart.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// The authority's watch lists against the year's deadlines: suspensions past their term,
    /// primary graduates without a junior school, late registrations, late problems.
    Watch(watch::WatchArgs),
    /// Statistics: monthly reports, counts, the school summary (tables, CSV or XLSX),
    /// reconciliation, dropouts, provinces' reports.
    Stats {
        #[command(subcommand)]
        command: stats::StatsCommand,
    },
    /// Import a spreadsheet (CSV or XLSX in the template's layout): a September intake, or
    /// with --migration the records of a previous system. Shows progress, writes the bad rows
    /// to an error file; the same file sent again resumes or changes nothing.
    Import(sheets::ImportArgs),
    /// Import jobs of your jurisdiction, or one job.
    ImportJobs(sheets::JobsArgs),
    /// Download a job's error file.
    ImportErrors(sheets::ErrorsArgs),
    /// Download the import template (XLSX with drop-down lists, or CSV headings).
    Template(sheets::TemplateArgs),
    /// Export the students of your jurisdiction (or of a school or division in it) to CSV or
    /// XLSX, in the import layout.
    Export(sheets::ExportArgs),
    /// Tokens for operators.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token with an authority's signing key (the national node's for the ministry, a
    /// province's for its own jurisdictions).
    Mint {
        /// The authority's token-signing.key (in its node's PKI folder).
        #[arg(long)]
        signing_key: PathBuf,
        /// The nodes the token is for: `national` or `province/NN`, repeatable. Default: the
        /// signer's own node and the node of the jurisdiction's province.
        #[arg(long = "audience")]
        audience: Vec<xueji_auth::Authority>,
        #[arg(long)]
        user: String,
        /// ministry, province, city, county or school.
        #[arg(long)]
        level: Level,
        /// A division code, a school code, or nothing for the ministry.
        #[arg(long, default_value = "")]
        jurisdiction: String,
        /// operator or approver.
        #[arg(long, default_value = "operator")]
        role: Role,
        /// Lifetime in hours (at most 24).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i64).range(1..=24))]
        hours: i64,
    },
}

use xueji_client::OperatorChannel;
type IdentityClient = IdentityServiceClient<OperatorChannel>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            match error.downcast_ref::<tonic::Status>() {
                Some(status) => eprintln!("error: {}", xueji_rpc::describe_status(status)),
                None => eprintln!("error: {error:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(mut cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    if let Command::Token {
        command:
            TokenCommand::Mint {
                signing_key,
                audience,
                user,
                level,
                jurisdiction,
                role,
                hours,
            },
    } = &cli.command
    {
        let text = std::fs::read_to_string(signing_key)
            .with_context(|| format!("reading {}", signing_key.display()))?;
        let signer = TokenSigner::from_text(&text)
            .with_context(|| format!("{} is not a token signing key", signing_key.display()))?;
        let audience = if audience.is_empty() {
            xueji_auth::default_audience(signer.issuer(), *level, jurisdiction)
        } else {
            audience.clone()
        };
        let token = signer.mint(
            &Grant {
                user: user.clone(),
                level: *level,
                jurisdiction: jurisdiction.clone(),
                role: *role,
                audience,
            },
            chrono::Utc::now(),
            chrono::Duration::hours(*hours),
        )?;
        println!("{token}");
        return Ok(());
    }

    let channel = connect(&cli.connection).await?;
    if let Command::School { command } = cli.command {
        return school::run(channel, command, json).await;
    }
    if let Command::Transfer { command } = cli.command {
        // The operator's own trust (ca.pem) verifies the decisions' evidence.
        let trust = TlsSource::from_dir(&cli.connection.pki_dir, "operator")?;
        return transfer::run(channel, command, json, trust).await;
    }
    if let Command::Cycle { command } = cli.command {
        return cycle::run(channel, command, json).await;
    }
    if let Command::Stats { command } = cli.command {
        return stats::run(channel, command, json).await;
    }
    if let Command::Watch(args) = cli.command {
        return watch::run(channel, args, json).await;
    }
    if let Command::Policy { command } = cli.command {
        return policy::run(channel, command, json).await;
    }
    if let Command::Class { command } = cli.command {
        return classes::run(channel, command, json).await;
    }
    if let Command::Certificate { command } = cli.command {
        return certificates::run(channel, command, json).await;
    }
    match cli.command {
        Command::Import(args) => return sheets::import(channel, args, json).await,
        Command::ImportJobs(args) => return sheets::jobs(channel, args, json).await,
        Command::ImportErrors(args) => return sheets::errors(channel, args).await,
        Command::Template(args) => return sheets::template(channel, args).await,
        Command::Export(args) => return sheets::export(channel, args).await,
        command => cli.command = command,
    }
    if let Command::Change { command } = cli.command {
        return change::run(channel, command, json).await;
    }
    if let Command::Inbox = cli.command {
        return change::inbox(channel, json).await;
    }
    if let Command::History { registry_number } = cli.command {
        return change::history(channel, registry_number, json).await;
    }
    if let Command::Problems {
        action: Some(action),
        ..
    } = cli.command
    {
        return change::resolve(channel, action, json).await;
    }
    if matches!(cli.command, Command::Find { .. } | Command::Provinces) {
        return national(channel, cli.command, json).await;
    }
    let mut client = IdentityServiceClient::new(channel);
    match cli.command {
        Command::Register(args) => {
            let response = client.register_student(register_request(*args)?).await?;
            let response = response.into_inner();
            if !json && response.replayed {
                println!("(already registered with this idempotency key)");
            }
            if !json && response.continued {
                println!(
                    "(continues the student's finished record: progression to the next stage)"
                );
            }
            print_students(response.student.into_iter().collect(), json)?;
        }
        Command::Approve {
            mut registry_numbers,
        } if registry_numbers.len() > 1 => {
            registry_numbers.dedup();
            desk::approve(&mut client, registry_numbers, json).await?;
        }
        Command::Queue(args) => desk::queue(&mut client, args, json).await?,
        Command::Search(args) => desk::search(&mut client, args, json).await?,
        Command::Approve {
            mut registry_numbers,
        } => {
            let registry_number = registry_numbers.pop().unwrap_or_default();
            let student = client
                .approve_registration(pb::ApproveRegistrationRequest { registry_number })
                .await?
                .into_inner()
                .student;
            print_students(student.into_iter().collect(), json)?;
        }
        Command::Reject {
            registry_number,
            reason,
        } => {
            let student = client
                .reject_registration(pb::RejectRegistrationRequest {
                    registry_number,
                    reason,
                })
                .await?
                .into_inner()
                .student;
            print_students(student.into_iter().collect(), json)?;
        }
        Command::Show { number } => {
            let student = client
                .get_student(pb::GetStudentRequest { number })
                .await?
                .into_inner()
                .student;
            match (json, student) {
                (true, Some(student)) => {
                    println!("{}", serde_json::to_string_pretty(&to_json(&student))?)
                }
                (false, Some(student)) => print_detail(&student),
                (_, None) => {}
            }
        }
        Command::List {
            school,
            page_size,
            all,
        } => {
            let mut students = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_students(pb::ListStudentsRequest {
                        school_code: school.clone(),
                        page_size,
                        page_token,
                    })
                    .await?
                    .into_inner();
                students.extend(page.students);
                if !all || page.next_page_token.is_empty() {
                    if !all && !page.next_page_token.is_empty() && !json {
                        eprintln!("(more students: use --all)");
                    }
                    break;
                }
                page_token = page.next_page_token;
            }
            print_students(students, json)?;
        }
        Command::Problems { jurisdiction, .. } => {
            lists::problems(&mut client, jurisdiction, json).await?
        }
        Command::Rejected => lists::rejected(&mut client, json).await?,
        Command::Token { .. }
        | Command::School { .. }
        | Command::Transfer { .. }
        | Command::Cycle { .. }
        | Command::Stats { .. }
        | Command::Watch(_)
        | Command::Policy { .. }
        | Command::Class { .. }
        | Command::Certificate { .. }
        | Command::Import(_)
        | Command::ImportJobs(_)
        | Command::ImportErrors(_)
        | Command::Template(_)
        | Command::Export(_)
        | Command::Change { .. }
        | Command::Inbox
        | Command::History { .. }
        | Command::Find { .. }
        | Command::Provinces => {
            unreachable!("handled above")
        }
    }
    Ok(())
}

/// The national node's directory: `find` and `provinces`.
async fn national(channel: OperatorChannel, command: Command, json: bool) -> anyhow::Result<()> {
    use xueji_proto::national::v1::{
        self as npb, national_directory_client::NationalDirectoryClient,
    };
    let mut client = NationalDirectoryClient::new(channel);
    match command {
        Command::Find { number } => {
            let found = client
                .find_student(npb::FindStudentRequest { number })
                .await?
                .into_inner();
            if !json {
                println!("owned by province {}", found.province);
            }
            print_students(found.student.into_iter().collect(), json)?;
        }
        Command::Provinces => {
            let provinces = client
                .list_provinces(npb::ListProvincesRequest {})
                .await?
                .into_inner()
                .provinces;
            if json {
                let rows: Vec<_> = provinces
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "code": p.code, "name": p.name, "address": p.address,
                            "identity": p.identity, "indexed_students": p.indexed_students,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let mut table = comfy_table::Table::new();
                table
                    .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
                    .set_header(["code", "name", "address", "identity", "students"]);
                for p in provinces {
                    table.add_row([
                        p.code,
                        p.name,
                        p.address,
                        p.identity,
                        p.indexed_students.to_string(),
                    ]);
                }
                println!("{table}");
            }
        }
        _ => unreachable!("only national commands are routed here"),
    }
    Ok(())
}

async fn connect(connection: &Connection) -> anyhow::Result<OperatorChannel> {
    let token = connection.token.clone().context(
        "no token: pass --token or set XUEJI_TOKEN (mint one with `xuejictl token mint`)",
    )?;
    // The same channel every operator tool uses; where its files come from is this tool's.
    xueji_client::operator_channel(&connection.node, &connection.pki_dir, &token)
        .await
        .with_context(|| {
            format!(
                "connecting to {} with the operator certificate of {} (--pki-dir, XUEJI_PKI_DIR)",
                connection.node,
                connection.pki_dir.display()
            )
        })
}

fn kind_name(kind: pb::ProblemKind) -> String {
    kind.as_str_name()
        .trim_start_matches("PROBLEM_KIND_")
        .to_lowercase()
}
