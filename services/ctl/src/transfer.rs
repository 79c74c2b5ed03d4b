//! `xuejictl transfer …`: start, decide, cancel, show, the inbox, the calendar.

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_proto::transfers::v1::{self as pb, transfer_service_client::TransferServiceClient};
use xueji_rpc::TlsSource;

use xueji_client::OperatorChannel;

#[derive(Subcommand)]
pub(crate) enum TransferCommand {
    /// Start a transfer into your school with what the family brings.
    Start(Box<StartArgs>),
    /// Approve a step whose turn it is (you must be its party).
    Approve {
        transfer_id: String,
        /// The step's position, as `transfer show` lists it.
        #[arg(long)]
        step: u32,
        #[arg(long, default_value = "")]
        remark: String,
    },
    /// Reject a step whose turn it is, with a reason: the transfer ends.
    Reject {
        transfer_id: String,
        #[arg(long)]
        step: u32,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a transfer (the receiving side), with a reason, until the last approval.
    Cancel {
        transfer_id: String,
        #[arg(long)]
        reason: String,
    },
    /// Show a transfer with each step: party, deadline, decision, who and when.
    Show { transfer_id: String },
    /// What waits for your decision, soonest deadline first; with --all, every transfer of
    /// your jurisdiction.
    Inbox {
        /// Every transfer of your jurisdiction instead of your open steps.
        #[arg(long)]
        all: bool,
        /// pending, overdue or ended (with --all).
        #[arg(long)]
        filter: Option<String>,
        /// incoming or outgoing (with --all).
        #[arg(long)]
        direction: Option<String>,
    },
    /// Overdue steps per authority in your jurisdiction.
    Overdue,
    /// Messages of transfers between provinces set aside for good, with their reasons
    /// (province and ministry operators).
    SetAside {
        /// inbox (from other provinces; the default) or outbox (refused by the national relay).
        #[arg(long, default_value = "inbox")]
        direction: String,
    },
    /// The working-day calendar deadlines are counted on (your province's node); `load` and
    /// `years` act on the national node's official calendar.
    Calendar {
        #[command(subcommand)]
        action: Option<crate::calendar::CalendarAction>,
    },
}

#[derive(Args)]
pub(crate) struct StartArgs {
    /// Your school (the receiving school).
    #[arg(long)]
    school: String,
    /// The student's registry number (or use --id-number).
    #[arg(long, default_value = "")]
    registry_number: String,
    /// The student's resident ID number.
    #[arg(long, default_value = "")]
    id_number: String,
    #[arg(long)]
    name: String,
    /// YYYY-MM-DD
    #[arg(long)]
    birth_date: String,
    #[arg(long)]
    grade: u32,
    #[arg(long)]
    reason: String,
    /// Evidence references, repeatable.
    #[arg(long)]
    evidence: Vec<String>,
    /// Reuse to retry safely; default: a fresh key.
    #[arg(long)]
    idempotency_key: Option<String>,
}

fn state_name(state: pb::TransferState) -> &'static str {
    match state {
        pb::TransferState::Unspecified => "?",
        pb::TransferState::Starting => "starting",
        pb::TransferState::InProgress => "in progress",
        pb::TransferState::Approved => "approved (moving the record)",
        pb::TransferState::Completed => "completed",
        pb::TransferState::Rejected => "rejected",
        pb::TransferState::Cancelled => "cancelled",
        pb::TransferState::Refused => "refused",
    }
}

fn step_name(state: pb::StepState) -> &'static str {
    match state {
        pb::StepState::Unspecified => "?",
        pb::StepState::Waiting => "waiting",
        pb::StepState::Open => "open",
        pb::StepState::Approved => "approved",
        pb::StepState::Rejected => "rejected",
        pb::StepState::Skipped => "skipped",
    }
}

fn print_transfer(transfer: &pb::Transfer, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&to_json(transfer))?);
        return Ok(());
    }
    println!("transfer {}  {}", transfer.id, state_name(transfer.state()));
    println!(
        "  student {} {} (born {}), to grade {} at {}",
        transfer.typed_number,
        transfer.typed_name,
        transfer.typed_birth_date,
        transfer.target_grade,
        transfer.receiving_school_code
    );
    if !transfer.sending_school_code.is_empty() {
        println!(
            "  from school {}, registry number {}",
            transfer.sending_school_code, transfer.registry_number
        );
    }
    println!("  reason: {}", transfer.reason);
    if !transfer.end_reason.is_empty() {
        println!("  ended: {} ({})", transfer.end_reason, transfer.ended_by);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "step",
        "party",
        "who decides",
        "state",
        "deadline",
        "on timeout",
        "decided by",
        "when",
        "reason",
    ]);
    for step in &transfer.steps {
        let mut deadline = step.deadline.clone();
        if step.deadline_estimated {
            deadline.push_str(" (estimated)");
        }
        if step.overdue {
            deadline.push_str(" OVERDUE");
        }
        table.add_row([
            step.position.to_string(),
            step.party.clone(),
            if step.jurisdiction.is_empty() {
                "(sending side)".to_owned()
            } else {
                step.jurisdiction.clone()
            },
            step_name(step.state()).to_owned(),
            deadline,
            step.timeout_action.clone(),
            step.decided_by.clone(),
            step.decided_at.clone(),
            step.reason.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}

/// What a step's evidence proves, checked here with the operator's own trusted root: the
/// signer, or why it does not hold.
pub(crate) fn check_evidence(
    transfer: &pb::Transfer,
    step: &pb::Step,
    trust: &TlsSource,
) -> Option<Result<String, String>> {
    let signed = step.evidence.as_ref()?;
    let evidence = xueji_rpc::Evidence {
        scheme: u16::try_from(signed.scheme).ok()?,
        signature: signed.signature.clone(),
        certificates: signed.certificates.clone(),
    };
    let about: serde_json::Value = serde_json::from_slice(&signed.payload).ok()?;
    if about.get("transfer_id").and_then(|v| v.as_str()) != Some(transfer.id.as_str())
        || about.get("step").and_then(|v| v.as_u64()) != Some(u64::from(step.position))
    {
        return Some(Err("the signature is about another transfer or step".into()));
    }
    let at = chrono::DateTime::parse_from_rfc3339(about.get("at")?.as_str()?)
        .ok()
        .map_or_else(std::time::SystemTime::now, |at| {
            std::time::SystemTime::from(at.with_timezone(&chrono::Utc))
        });
    Some(
        trust
            .verify_evidence(&signed.payload, &evidence, at)
            .map(|signer| signer.to_string())
            .map_err(|e| e.to_string()),
    )
}

fn checked_evidence(
    transfer: &pb::Transfer,
    trust: &TlsSource,
) -> Vec<(u32, Result<String, String>)> {
    transfer
        .steps
        .iter()
        .filter_map(|step| Some((step.position, check_evidence(transfer, step, trust)?)))
        .collect()
}

fn evidence_json(transfer: &pb::Transfer, trust: &TlsSource) -> serde_json::Value {
    checked_evidence(transfer, trust)
        .iter()
        .map(|(position, result)| match result {
            Ok(signer) => serde_json::json!({"step": position, "valid": true, "signer": signer}),
            Err(why) => serde_json::json!({"step": position, "valid": false, "reason": why}),
        })
        .collect()
}

/// Each decided step's evidence, verified here (not by the node that answered).
fn print_evidence(transfer: &pb::Transfer, trust: &TlsSource) {
    let checked = checked_evidence(transfer, trust);
    if checked.is_empty() {
        return;
    }
    println!("decision evidence (verified here against this tool's ca.pem):");
    for (position, result) in checked {
        match result {
            Ok(signer) => println!("  step {position}: signature valid, signed by {signer}"),
            Err(why) => println!("  step {position}: NOT VALID: {why}"),
        }
    }
}

/// Prints the transfer an answer carries.
fn print_answer(transfer: Option<pb::Transfer>, json: bool) -> anyhow::Result<()> {
    let transfer = transfer.ok_or_else(|| anyhow::anyhow!("the node answered no transfer"))?;
    print_transfer(&transfer, json)
}

fn to_json(t: &pb::Transfer) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "state": state_name(t.state()),
        "receiving_school_code": t.receiving_school_code,
        "sending_school_code": t.sending_school_code,
        "registry_number": t.registry_number,
        "typed_number": t.typed_number,
        "typed_name": t.typed_name,
        "target_grade": t.target_grade,
        "end_reason": t.end_reason,
        "steps": t.steps.iter().map(|s| serde_json::json!({
            "position": s.position,
            "party": s.party,
            "jurisdiction": s.jurisdiction,
            "state": step_name(s.state()),
            "deadline": s.deadline,
            "deadline_estimated": s.deadline_estimated,
            "overdue": s.overdue,
            "timeout_action": s.timeout_action,
            "decided_by": s.decided_by,
            "decided_at": s.decided_at,
            "reason": s.reason,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn run(
    channel: OperatorChannel,
    command: TransferCommand,
    json: bool,
    trust: TlsSource,
) -> anyhow::Result<()> {
    let mut client = TransferServiceClient::new(channel.clone());
    match command {
        TransferCommand::Start(args) => {
            let transfer = client
                .start_transfer(pb::StartTransferRequest {
                    idempotency_key: args
                        .idempotency_key
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                    receiving_school_code: args.school,
                    registry_number: args.registry_number,
                    id_number: args.id_number,
                    name: args.name,
                    birth_date: args.birth_date,
                    target_grade: args.grade,
                    reason: args.reason,
                    evidence: args.evidence,
                })
                .await?
                .into_inner()
                .transfer;
            print_answer(transfer, json)?;
        }
        TransferCommand::Approve {
            transfer_id,
            step,
            remark,
        } => {
            let transfer = client
                .approve_transfer(pb::ApproveTransferRequest {
                    transfer_id,
                    step,
                    remark,
                })
                .await?
                .into_inner()
                .transfer;
            print_answer(transfer, json)?;
        }
        TransferCommand::Reject {
            transfer_id,
            step,
            reason,
        } => {
            let transfer = client
                .reject_transfer(pb::RejectTransferRequest {
                    transfer_id,
                    step,
                    reason,
                })
                .await?
                .into_inner()
                .transfer;
            print_answer(transfer, json)?;
        }
        TransferCommand::Cancel {
            transfer_id,
            reason,
        } => {
            let transfer = client
                .cancel_transfer(pb::CancelTransferRequest {
                    transfer_id,
                    reason,
                })
                .await?
                .into_inner()
                .transfer;
            print_answer(transfer, json)?;
        }
        TransferCommand::Show { transfer_id } => {
            let transfer = client
                .get_transfer(pb::GetTransferRequest { transfer_id })
                .await?
                .into_inner()
                .transfer
                .ok_or_else(|| anyhow::anyhow!("the node answered no transfer"))?;
            if json {
                let mut value = to_json(&transfer);
                value["evidence"] = evidence_json(&transfer, &trust);
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_transfer(&transfer, false)?;
                print_evidence(&transfer, &trust);
            }
        }
        TransferCommand::Inbox {
            all,
            filter,
            direction,
        } => {
            let filter = match filter.as_deref() {
                None => pb::TransferFilter::Unspecified,
                Some("pending") => pb::TransferFilter::Pending,
                Some("overdue") => pb::TransferFilter::Overdue,
                Some("ended") => pb::TransferFilter::Ended,
                Some(other) => anyhow::bail!("--filter {other:?}: use pending, overdue or ended"),
            };
            let direction = match direction.as_deref() {
                None => pb::TransferDirection::Unspecified,
                Some("incoming") => pb::TransferDirection::Incoming,
                Some("outgoing") => pb::TransferDirection::Outgoing,
                Some(other) => anyhow::bail!("--direction {other:?}: use incoming or outgoing"),
            };
            let mut request = pb::ListTransfersRequest {
                view: if all {
                    pb::TransferView::Jurisdiction
                } else {
                    pb::TransferView::Inbox
                } as i32,
                filter: filter as i32,
                direction: direction as i32,
                page_size: 500,
                page_token: String::new(),
            };
            let mut transfers = Vec::new();
            loop {
                let page = client.list_transfers(request.clone()).await?.into_inner();
                transfers.extend(page.transfers);
                if page.next_page_token.is_empty() {
                    break;
                }
                request.page_token = page.next_page_token;
            }
            if json {
                let rows: Vec<_> = transfers.iter().map(to_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if transfers.is_empty() {
                println!(
                    "{}",
                    if all {
                        "no transfers"
                    } else {
                        "nothing waits for you"
                    }
                );
            } else {
                let mut table = Table::new();
                table.load_preset(UTF8_FULL_CONDENSED).set_header([
                    "transfer",
                    "state",
                    "student",
                    "to school",
                    "open step",
                    "deadline",
                ]);
                for t in &transfers {
                    let open = t.steps.iter().find(|s| s.state() == pb::StepState::Open);
                    table.add_row([
                        t.id.clone(),
                        state_name(t.state()).to_owned(),
                        format!("{} {}", t.typed_number, t.typed_name),
                        t.receiving_school_code.clone(),
                        open.map(|s| format!("{} {}", s.position, s.party))
                            .unwrap_or_default(),
                        open.map(|s| {
                            format!("{}{}", s.deadline, if s.overdue { " OVERDUE" } else { "" })
                        })
                        .unwrap_or_default(),
                    ]);
                }
                println!("{table}");
            }
        }
        TransferCommand::SetAside { direction } => {
            let mut messages = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_set_aside_messages(pb::ListSetAsideMessagesRequest {
                        direction: direction.clone(),
                        page_size: 500,
                        page_token,
                    })
                    .await?
                    .into_inner();
                messages.extend(page.messages);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            if json {
                let rows: Vec<_> = messages
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "sequence": m.sequence, "direction": m.direction,
                            "message_id": m.message_id, "transfer_id": m.transfer_id,
                            "province": m.province, "reason": m.reason, "at": m.at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if messages.is_empty() {
                println!("no messages set aside ({direction})");
            } else {
                let mut table = Table::new();
                table
                    .load_preset(UTF8_FULL_CONDENSED)
                    .set_header(["at", "transfer", "province", "reason"]);
                for m in &messages {
                    table.add_row([
                        m.at.clone(),
                        m.transfer_id.clone(),
                        m.province.clone(),
                        m.reason.clone(),
                    ]);
                }
                println!("{table}");
            }
        }
        TransferCommand::Overdue => {
            let counts = client
                .count_overdue_transfers(pb::CountOverdueTransfersRequest {})
                .await?
                .into_inner()
                .counts;
            if json {
                let rows: Vec<_> = counts
                    .iter()
                    .map(|c| serde_json::json!({ "jurisdiction": c.jurisdiction, "overdue": c.overdue }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if counts.is_empty() {
                println!("no overdue steps");
            } else {
                let mut table = Table::new();
                table
                    .load_preset(UTF8_FULL_CONDENSED)
                    .set_header(["authority", "overdue steps"]);
                for c in &counts {
                    table.add_row([c.jurisdiction.clone(), c.overdue.to_string()]);
                }
                println!("{table}");
            }
        }
        TransferCommand::Calendar {
            action: Some(action),
        } => return crate::calendar::run(channel, action, json).await,
        TransferCommand::Calendar { action: None } => {
            let calendar = client
                .describe_calendar(pb::DescribeCalendarRequest {})
                .await?
                .into_inner();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "loaded_years": calendar.loaded_years,
                        "province_days_off": calendar.province_days_off,
                        "estimated_deadlines": calendar.estimated_deadlines,
                    })
                );
            } else {
                let years: Vec<String> = calendar
                    .loaded_years
                    .iter()
                    .map(|y| y.to_string())
                    .collect();
                println!("official calendar loaded for: {}", years.join(", "));
                if !calendar.province_days_off.is_empty() {
                    println!(
                        "province days off: {}",
                        calendar.province_days_off.join(", ")
                    );
                }
                if calendar.estimated_deadlines > 0 {
                    println!(
                        "{} open deadlines reach a year not loaded (counted on weekends and the \
                         statutory holidays): load the next year's calendar",
                        calendar.estimated_deadlines
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
