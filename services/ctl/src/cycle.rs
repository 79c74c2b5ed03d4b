//! `xuejictl cycle …`: the annual cycle of a province (dry run, run with progress, status) and
//! the graduation decisions taken before it.

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use xueji_proto::identity::v1::{self as pb, school_year_service_client::SchoolYearServiceClient};

use xueji_client::OperatorChannel;

#[derive(Subcommand)]
pub(crate) enum CycleCommand {
    /// What the summer's cycle would do now and what blocks it (province and ministry
    /// operators). Changes nothing.
    DryRun {
        /// The summer (calendar year), e.g. 2026 for the cycle closing the 2025–2026 year.
        #[arg(long)]
        year: u32,
    },
    /// Run (or resume) the summer's steps whose day has come, and follow them to the end.
    Run {
        #[arg(long)]
        year: u32,
        /// Start the run and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Where the summer's steps stand.
    Status {
        #[arg(long)]
        year: u32,
    },
    /// Confirm a senior high school's graduation for the summer (the registry authority's
    /// approver).
    Confirm {
        #[arg(long)]
        school: String,
        #[arg(long)]
        year: u32,
    },
    /// Record how a student of a graduating grade ends the stage: graduated, completed or
    /// incomplete (the school and its authorities).
    Outcome {
        registry_number: String,
        #[arg(long)]
        year: u32,
        #[arg(long)]
        outcome: String,
    },
}

pub(crate) async fn run(
    channel: OperatorChannel,
    command: CycleCommand,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = SchoolYearServiceClient::new(channel);
    match command {
        CycleCommand::DryRun { year } => {
            let preview = client
                .preview_cycle(pb::PreviewCycleRequest { year })
                .await?
                .into_inner();
            if json {
                println!("{}", serde_json::to_string_pretty(&preview_json(&preview))?);
                return Ok(());
            }
            if let Some(dates) = &preview.dates {
                print_dates(year, dates);
            }
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            table.set_header(["the cycle would", "students"]);
            for (what, count) in [
                ("graduate now", preview.will_graduate),
                ("leave in school: a pending task", preview.blocked_by_task),
                (
                    "leave in school: an open problem",
                    preview.blocked_by_problem,
                ),
                (
                    "leave in school: senior high graduation not confirmed",
                    preview.awaiting_confirmation,
                ),
                ("promote one grade", preview.will_promote),
                (
                    "find promoted already this summer",
                    preview.already_promoted,
                ),
                (
                    "find graduated already this year",
                    preview.already_graduated,
                ),
            ] {
                table.add_row([what.to_owned(), count.to_string()]);
            }
            println!("{table}");
            print_steps(&preview.steps);
        }
        CycleCommand::Run { year, no_wait } => {
            let started = client
                .run_cycle(pb::RunCycleRequest { year })
                .await?
                .into_inner();
            if !json {
                println!(
                    "{} the {year} cycle: {}",
                    if started.started {
                        "started"
                    } else {
                        "already running"
                    },
                    started.steps.join(", ")
                );
            }
            if no_wait {
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&steps_json(&started.status))?
                    );
                }
                return Ok(());
            }
            let status = follow(&mut client, year, &started.steps, json).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&steps_json(&status.steps))?
                );
            } else {
                print_steps(&status.steps);
            }
        }
        CycleCommand::Status { year } => {
            let status = client
                .get_cycle_status(pb::GetCycleStatusRequest { year })
                .await?
                .into_inner();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&steps_json(&status.steps))?
                );
                return Ok(());
            }
            if let Some(dates) = &status.dates {
                print_dates(year, dates);
            }
            print_steps(&status.steps);
            if status.running {
                println!("(running now on the node)");
            }
        }
        CycleCommand::Confirm { school, year } => {
            let answer = client
                .confirm_graduation(pb::ConfirmGraduationRequest {
                    school_code: school.clone(),
                    year,
                })
                .await?
                .into_inner();
            println!(
                "{}",
                if answer.confirmed_now {
                    format!("graduation of {school} for {year} confirmed")
                } else {
                    format!("graduation of {school} for {year} was confirmed already")
                }
            );
        }
        CycleCommand::Outcome {
            registry_number,
            year,
            outcome,
        } => {
            let wire = pb::GraduationOutcome::from_str_name(&format!(
                "GRADUATION_OUTCOME_{}",
                outcome.to_uppercase()
            ))
            .filter(|o| *o != pb::GraduationOutcome::Unspecified)
            .with_context(|| {
                format!("--outcome {outcome:?}: use graduated, completed or incomplete")
            })?;
            client
                .record_graduation_outcome(pb::RecordGraduationOutcomeRequest {
                    registry_number: registry_number.clone(),
                    year,
                    outcome: wire as i32,
                })
                .await?;
            println!("{registry_number} ends the stage {outcome} in {year}");
        }
    }
    Ok(())
}

/// Polls the status with a progress bar per step until the run's steps are done.
async fn follow(
    client: &mut SchoolYearServiceClient<OperatorChannel>,
    year: u32,
    steps: &[String],
    quiet: bool,
) -> anyhow::Result<pb::GetCycleStatusResponse> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:<12} [{bar:40}] {pos}/{len} enrollments ({per_sec}, {eta} left)",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    loop {
        let status = client
            .get_cycle_status(pb::GetCycleStatusRequest { year })
            .await?
            .into_inner();
        let ours: Vec<&pb::CycleStepStatus> = status
            .steps
            .iter()
            .filter(|s| steps.contains(&s.step))
            .collect();
        let done = ours
            .iter()
            .all(|s| s.state == pb::CycleStepState::Done as i32);
        if let Some(current) = ours
            .iter()
            .find(|s| s.state != pb::CycleStepState::Done as i32)
            .or(ours.last())
        {
            bar.set_message(current.step.clone());
            bar.set_length(current.total);
            bar.set_position(current.processed);
        }
        if done || !status.running {
            bar.finish_and_clear();
            if !done {
                anyhow::bail!(
                    "the {year} cycle stopped before its end (see the node's log); run it again \
                     to resume where it stands"
                );
            }
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_dates(year: u32, dates: &pb::CycleDates) {
    println!(
        "{year} cycle: freeze {}, clearing {}, graduation {}, promotion {}, school year starts {}",
        dates.freeze, dates.clearing, dates.graduation, dates.promotion, dates.year_starts
    );
}

fn state_name(state: i32) -> &'static str {
    match pb::CycleStepState::try_from(state) {
        Ok(pb::CycleStepState::NotStarted) => "not started",
        Ok(pb::CycleStepState::Running) => "running",
        Ok(pb::CycleStepState::Done) => "done",
        _ => "unknown",
    }
}

fn print_steps(steps: &[pb::CycleStepStatus]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "step",
        "state",
        "through",
        "changed",
        "left in school",
        "started by",
        "finished",
    ]);
    for step in steps {
        table.add_row([
            step.step.clone(),
            state_name(step.state).to_owned(),
            format!("{}/{}", step.processed, step.total),
            step.changed.to_string(),
            step.blocked.to_string(),
            step.started_by.clone(),
            step.finished_at.clone(),
        ]);
    }
    println!("{table}");
}

fn steps_json(steps: &[pb::CycleStepStatus]) -> serde_json::Value {
    serde_json::Value::Array(
        steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "step": s.step, "state": state_name(s.state), "processed": s.processed,
                    "total": s.total, "changed": s.changed, "blocked": s.blocked,
                    "started_by": s.started_by, "started_at": s.started_at,
                    "finished_at": s.finished_at,
                })
            })
            .collect(),
    )
}

fn preview_json(preview: &pb::PreviewCycleResponse) -> serde_json::Value {
    serde_json::json!({
        "year": preview.year,
        "will_graduate": preview.will_graduate,
        "blocked_by_task": preview.blocked_by_task,
        "blocked_by_problem": preview.blocked_by_problem,
        "awaiting_confirmation": preview.awaiting_confirmation,
        "will_promote": preview.will_promote,
        "already_promoted": preview.already_promoted,
        "already_graduated": preview.already_graduated,
        "steps": steps_json(&preview.steps),
    })
}
