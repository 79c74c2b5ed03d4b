//! `xuejictl change …` and `xuejictl inbox`: status changes (异动) and their evidence.

use anyhow::Context;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_proto::identity::v1::{
    self as pb, status_change_service_client::StatusChangeServiceClient,
};

use xueji_client::OperatorChannel;

#[derive(Subcommand)]
pub(crate) enum ChangeCommand {
    /// Ask for a status change: suspension, resumption, dropout, return, withdrawal,
    /// expulsion, reinstatement, study-abroad, return-from-abroad, missing, found, death,
    /// other-departure, repeat-year, skip-year, suspension-extension.
    Request {
        registry_number: String,
        #[arg(long)]
        kind: String,
        #[arg(long)]
        reason: String,
        /// The day it takes effect (YYYY-MM-DD; default today).
        #[arg(long)]
        effective_date: Option<String>,
        /// Evidence ids (from `change evidence upload`), as many as the rule asks.
        #[arg(long = "evidence")]
        evidence: Vec<String>,
        /// Grounds a rule asks for (e.g. emigration).
        #[arg(long, default_value = "")]
        grounds: String,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Ask to correct key fields of an approved record, with evidence: `--set name=林小语`,
    /// `--set id_number=…` (a J student's first resident ID converts the record to G),
    /// `--set gender=female`, `--set birth_date=2016-03-01`, `--set photo=<evidence id>`, or a
    /// key field the province declares (`--set hukou_division=350103` in Fujian).
    /// Decided like a status change (`change approve`).
    Correct {
        registry_number: String,
        /// field=value, once per field.
        #[arg(long = "set", required = true)]
        values: Vec<String>,
        #[arg(long)]
        reason: String,
        /// Evidence ids (from `change evidence upload`): at least one.
        #[arg(long = "evidence")]
        evidence: Vec<String>,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Change non-key fields (guardian.phone, ethnicity, entry_route, migrant_child, …): the
    /// school keeps them itself, without approval; each change is audited and in the history.
    Update {
        registry_number: String,
        /// field=value, once per field.
        #[arg(long = "set", required = true)]
        values: Vec<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Approve the step whose turn it is (its party's approver).
    Approve {
        id: String,
        #[arg(long)]
        step: u32,
        #[arg(long, default_value = "")]
        remark: String,
    },
    /// Reject the step whose turn it is, with a reason: the change ends.
    Reject {
        id: String,
        #[arg(long)]
        step: u32,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a change until its last approval.
    Cancel {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Show a change with its steps.
    Show { id: String },
    /// Evidence files: upload one (JPEG, PNG or PDF, at most 2 MiB), or fetch one.
    Evidence {
        #[command(subcommand)]
        action: EvidenceAction,
    },
}

#[derive(Subcommand)]
pub(crate) enum EvidenceAction {
    /// Upload a file for a student; prints its id.
    Upload {
        registry_number: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Fetch a file into `--out`.
    Get {
        id: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

fn kind(text: &str) -> anyhow::Result<pb::StatusChangeKind> {
    pb::StatusChangeKind::from_str_name(&format!(
        "STATUS_CHANGE_KIND_{}",
        text.replace('-', "_").to_uppercase()
    ))
    .filter(|k| *k != pb::StatusChangeKind::Unspecified)
    .with_context(|| format!("--kind {text:?} is not a status change (see --help)"))
}

pub(crate) async fn run(
    channel: OperatorChannel,
    command: ChangeCommand,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = StatusChangeServiceClient::new(channel);
    let change = match command {
        ChangeCommand::Request {
            registry_number,
            kind: text,
            reason,
            effective_date,
            evidence,
            grounds,
            idempotency_key,
        } => {
            client
                .request_status_change(pb::RequestStatusChangeRequest {
                    idempotency_key: idempotency_key
                        .unwrap_or_else(|| format!("ctl-{}", uuid::Uuid::new_v4())),
                    registry_number,
                    kind: kind(&text)? as i32,
                    reason,
                    grounds,
                    effective_date: effective_date.unwrap_or_else(|| {
                        xueji_calendar::china_today(chrono::Utc::now()).to_string()
                    }),
                    evidence_ids: evidence,
                })
                .await?
                .into_inner()
                .change
        }
        ChangeCommand::Correct {
            registry_number,
            values,
            reason,
            evidence,
            idempotency_key,
        } => {
            let values = crate::details::field_values(&values)?;
            client
                .request_correction(pb::RequestCorrectionRequest {
                    idempotency_key: idempotency_key
                        .unwrap_or_else(|| format!("ctl-{}", uuid::Uuid::new_v4())),
                    registry_number,
                    values,
                    reason,
                    evidence_ids: evidence,
                })
                .await?
                .into_inner()
                .change
        }
        ChangeCommand::Update {
            registry_number,
            values,
            reason,
            idempotency_key,
        } => {
            let request = pb::UpdateStudentDetailsRequest {
                idempotency_key: idempotency_key
                    .unwrap_or_else(|| format!("ctl-{}", uuid::Uuid::new_v4())),
                registry_number,
                values: crate::details::field_values(&values)?,
                reason,
            };
            return crate::details::update(&mut client, request, json).await;
        }
        ChangeCommand::Approve { id, step, remark } => {
            client
                .decide_status_change(pb::DecideStatusChangeRequest {
                    id,
                    step,
                    approve: true,
                    remark,
                })
                .await?
                .into_inner()
                .change
        }
        ChangeCommand::Reject { id, step, reason } => {
            client
                .decide_status_change(pb::DecideStatusChangeRequest {
                    id,
                    step,
                    approve: false,
                    remark: reason,
                })
                .await?
                .into_inner()
                .change
        }
        ChangeCommand::Cancel { id, reason } => {
            client
                .cancel_status_change(pb::CancelStatusChangeRequest { id, reason })
                .await?
                .into_inner()
                .change
        }
        ChangeCommand::Show { id } => {
            client
                .get_status_change(pb::GetStatusChangeRequest { id })
                .await?
                .into_inner()
                .change
        }
        ChangeCommand::Evidence { action } => return evidence(&mut client, action, json).await,
    };
    if let Some(change) = change {
        print_change(&change, json)?;
    }
    Ok(())
}

async fn evidence(
    client: &mut StatusChangeServiceClient<OperatorChannel>,
    action: EvidenceAction,
    json: bool,
) -> anyhow::Result<()> {
    match action {
        EvidenceAction::Upload {
            registry_number,
            file,
        } => {
            let content =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stored = client
                .upload_evidence(pb::UploadEvidenceRequest {
                    registry_number,
                    file_name: name,
                    content,
                })
                .await?
                .into_inner()
                .file
                .context("the node answered no file")?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": stored.id, "media_type": stored.media_type, "size": stored.size,
                        "sha256": stored.sha256,
                    })
                );
            } else {
                println!(
                    "{}  {} {} bytes sha256 {}",
                    stored.id, stored.media_type, stored.size, stored.sha256
                );
            }
        }
        EvidenceAction::Get { id, out } => {
            let answer = client
                .get_evidence(pb::GetEvidenceRequest { id })
                .await?
                .into_inner();
            std::fs::write(&out, &answer.content)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{} bytes written to {}",
                answer.content.len(),
                out.display()
            );
        }
    }
    Ok(())
}

/// `xuejictl inbox`: the status changes waiting for the caller's decision.
pub(crate) async fn inbox(channel: OperatorChannel, json: bool) -> anyhow::Result<()> {
    let changes = StatusChangeServiceClient::new(channel)
        .list_status_change_inbox(pb::ListStatusChangeInboxRequest { page_size: 500 })
        .await?
        .into_inner()
        .changes;
    if json {
        let list: Vec<_> = changes.iter().map(change_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if changes.is_empty() {
        println!("nothing waits for your decision");
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["id", "student", "change", "step", "deadline", "since"]);
    for change in &changes {
        let open = change.steps.iter().find(|s| s.state == "open");
        table.add_row([
            change.id.clone(),
            format!("{} {}", change.registry_number, change.name),
            kind_name(change.kind),
            open.map(|s| format!("{} ({})", s.position, s.party))
                .unwrap_or_default(),
            open.map(|s| {
                format!(
                    "{}{}",
                    s.deadline,
                    if s.deadline_estimated {
                        " (estimated)"
                    } else {
                        ""
                    }
                )
            })
            .unwrap_or_default(),
            change.requested_at.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum ProblemsAction {
    /// Ask to resolve a record's open problem, with evidence: `--action confirm` (the record
    /// is genuine: several twins may be; of an ID-number duplicate only the claim holder) or
    /// `--action delete`. A correction is asked with `change correct`. Decided like a status
    /// change (`change approve`).
    Resolve {
        registry_number: String,
        /// invalid-id-number, duplicate-id-number or duplicate-name.
        #[arg(long)]
        problem: String,
        /// confirm or delete.
        #[arg(long)]
        action: String,
        #[arg(long)]
        reason: String,
        /// Evidence ids (from `change evidence upload`): at least one.
        #[arg(long = "evidence")]
        evidence: Vec<String>,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Check every stored resident ID number of the province (a province or ministry
    /// operator): each invalid one becomes an invalid-id-number problem record.
    Scan,
}

/// `xuejictl problems resolve` and `problems scan`.
pub(crate) async fn resolve(
    channel: OperatorChannel,
    action: ProblemsAction,
    json: bool,
) -> anyhow::Result<()> {
    let (registry_number, problem, action, reason, evidence, idempotency_key) = match action {
        ProblemsAction::Resolve {
            registry_number,
            problem,
            action,
            reason,
            evidence,
            idempotency_key,
        } => (
            registry_number,
            problem,
            action,
            reason,
            evidence,
            idempotency_key,
        ),
        ProblemsAction::Scan => return scan(channel, json).await,
    };
    let problem = pb::ProblemKind::from_str_name(&format!(
        "PROBLEM_KIND_{}",
        problem.replace('-', "_").to_uppercase()
    ))
    .filter(|p| *p != pb::ProblemKind::Unspecified)
    .with_context(|| {
        format!(
            "--problem {problem:?}: use invalid-id-number, duplicate-id-number or duplicate-name"
        )
    })?;
    let action = match action.as_str() {
        "confirm" => pb::ResolutionAction::Confirm,
        "delete" => pb::ResolutionAction::Delete,
        other => anyhow::bail!("--action {other:?}: use confirm or delete"),
    };
    let change = StatusChangeServiceClient::new(channel)
        .request_problem_resolution(pb::RequestProblemResolutionRequest {
            idempotency_key: idempotency_key
                .unwrap_or_else(|| format!("ctl-{}", uuid::Uuid::new_v4())),
            registry_number,
            problem: problem as i32,
            action: action as i32,
            reason,
            evidence_ids: evidence,
        })
        .await?
        .into_inner()
        .change
        .context("the node answered no change")?;
    print_change(&change, json)
}

/// `xuejictl problems scan`.
async fn scan(channel: OperatorChannel, json: bool) -> anyhow::Result<()> {
    eprintln!("Scanning the province's resident ID numbers…");
    let report =
        xueji_proto::identity::v1::identity_service_client::IdentityServiceClient::new(channel)
            .scan_id_numbers(pb::ScanIdNumbersRequest {})
            .await?
            .into_inner();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "checked": report.checked, "found": report.found, "open": report.open,
            })
        );
    } else {
        println!(
            "{} resident ID numbers checked, {} newly found invalid; {} invalid-id-number \
             problems open (list them with `xuejictl problems`)",
            report.checked, report.found, report.open
        );
    }
    Ok(())
}

/// `xuejictl history`: every value each field of a student's record has had.
pub(crate) async fn history(
    channel: OperatorChannel,
    registry_number: String,
    json: bool,
) -> anyhow::Result<()> {
    let history = StatusChangeServiceClient::new(channel)
        .get_student_history(pb::GetStudentHistoryRequest { registry_number })
        .await?
        .into_inner();
    if json {
        let fields: Vec<_> = history
            .fields
            .iter()
            .map(|f| {
                serde_json::json!({
                    "field": f.field, "value": f.value, "since": f.since,
                    "changed_by": f.changed_by, "reason": f.reason,
                    "approved_by": f.approved_by, "change_id": f.change_id,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "registry_number": history.registry_number, "fields": fields,
            }))?
        );
        return Ok(());
    }
    println!("history of {}", history.registry_number);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["field", "value", "since", "by", "why", "approved by"]);
    for field in &history.fields {
        table.add_row([
            field.field.clone(),
            field.value.clone(),
            field.since.clone(),
            field.changed_by.clone(),
            field.reason.clone(),
            field.approved_by.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}

fn kind_name(kind: i32) -> String {
    pb::StatusChangeKind::try_from(kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("STATUS_CHANGE_KIND_")
                .to_lowercase()
                .replace('_', "-")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn state_name(state: i32) -> String {
    pb::StatusChangeState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("STATUS_CHANGE_STATE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn change_json(change: &pb::StatusChange) -> serde_json::Value {
    serde_json::json!({
        "id": change.id, "registry_number": change.registry_number, "name": change.name,
        "kind": kind_name(change.kind), "state": state_name(change.state),
        "reason": change.reason, "effective_date": change.effective_date,
        "evidence": change.evidence_ids, "school_code": change.school_code,
        "corrections": change.corrections.iter().map(|c| serde_json::json!({
            "field": c.field, "from": c.from, "to": c.to,
        })).collect::<Vec<_>>(),
        "steps": change.steps.iter().map(|s| serde_json::json!({
            "position": s.position, "party": s.party, "jurisdiction": s.jurisdiction,
            "state": s.state, "deadline": s.deadline, "decided_by": s.decided_by,
            "remark": s.remark, "on_timeout": s.on_timeout,
        })).collect::<Vec<_>>(),
    })
}

fn print_change(change: &pb::StatusChange, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&change_json(change))?);
        return Ok(());
    }
    println!(
        "{}  {} {}  {}  {}  effective {}",
        change.id,
        change.registry_number,
        change.name,
        kind_name(change.kind),
        state_name(change.state),
        change.effective_date
    );
    println!("reason: {}", change.reason);
    for correction in &change.corrections {
        println!(
            "correct {}: {:?} → {:?}",
            correction.field, correction.from, correction.to
        );
    }
    if !change.ended_reason.is_empty() {
        println!("ended: {}", change.ended_reason);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "step",
        "party",
        "jurisdiction",
        "state",
        "deadline",
        "decided by",
        "remark",
    ]);
    for step in &change.steps {
        table.add_row([
            step.position.to_string(),
            step.party.clone(),
            step.jurisdiction.clone(),
            step.state.clone(),
            step.deadline.clone(),
            format!(
                "{}{}",
                step.decided_by,
                if step.on_timeout { " (deadline)" } else { "" }
            ),
            step.remark.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}
