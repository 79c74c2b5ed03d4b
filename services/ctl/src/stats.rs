//! `xuejictl stats …`: figures of the caller's jurisdiction (or a unit inside it) as tables,
//! and the monthly report and the school summary as CSV or XLSX files.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_proto::stats::v1::{self as pb, stats_service_client::StatsServiceClient};
use xueji_sheets::Format;

use xueji_client::OperatorChannel;

#[derive(Subcommand)]
pub(crate) enum StatsCommand {
    /// The monthly change report of a unit (opening, additions and removals by kind, closing)
    /// and of the units directly below it.
    Report {
        /// nation, a division code (35, 3501, 350102) or a school code; default: your own.
        #[arg(long, default_value = "")]
        unit: String,
        /// YYYY-MM.
        #[arg(long)]
        month: String,
        /// Also write it to this .csv or .xlsx file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Active students at the end of a day, by gender, grade, stage, ethnicity, entry route,
    /// migrant and left-behind children.
    Counts {
        #[arg(long, default_value = "")]
        unit: String,
        /// YYYY-MM-DD; default: today.
        #[arg(long, default_value = "")]
        date: String,
    },
    /// The school summary table of the schools inside a unit.
    Summary {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long, default_value = "")]
        date: String,
        /// Also write it to this .csv or .xlsx file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Checks that every level inside a unit sums for a month; lists any mismatch.
    Check {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long)]
        month: String,
    },
    /// Students left without a school longer than the province allows.
    Dropouts {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long, default_value = "")]
        as_of: String,
    },
    /// The data-quality lists of an authority: open problem records by kind (identity),
    /// overdue transfer steps (transfers), age–grade outliers and records lacking key fields
    /// (stats).
    Quality {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long, default_value = "")]
        as_of: String,
    },
    /// When each province last reported (the national node, ministry operators).
    Provinces,
}

/// A unit as identity's jurisdiction field takes it: six-digit division codes.
fn jurisdiction_of(unit: &str) -> String {
    match unit.trim() {
        u if u.len() == 2 => format!("{u}0000"),
        u if u.len() == 4 => format!("{u}00"),
        u => u.to_owned(),
    }
}

/// The open problem records of a unit, from identity (every page).
async fn open_problems(
    channel: OperatorChannel,
    unit: &str,
) -> anyhow::Result<Vec<xueji_proto::identity::v1::ProblemRecord>> {
    use xueji_proto::identity::v1::{self as ipb, identity_service_client::IdentityServiceClient};
    let mut identity = IdentityServiceClient::new(channel);
    let mut problems = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = identity
            .list_problem_records(ipb::ListProblemRecordsRequest {
                jurisdiction: jurisdiction_of(unit),
                page_size: 500,
                page_token,
            })
            .await?
            .into_inner();
        problems.extend(page.problems);
        if page.next_page_token.is_empty() {
            return Ok(problems);
        }
        page_token = page.next_page_token;
    }
}

/// Open problem records by school: the summary table's last column.
async fn problems_by_school(
    channel: OperatorChannel,
    unit: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let mut by_school = std::collections::BTreeMap::new();
    for problem in open_problems(channel, unit).await? {
        *by_school.entry(problem.school_code).or_default() += 1;
    }
    Ok(by_school)
}

async fn quality(channel: OperatorChannel, unit: String, as_of: String) -> anyhow::Result<()> {
    use xueji_proto::transfers::v1::{self as tpb, transfer_service_client::TransferServiceClient};
    let problems = open_problems(channel.clone(), &unit).await?;
    let mut by_kind: std::collections::BTreeMap<String, u64> = Default::default();
    for problem in &problems {
        *by_kind
            .entry(problem.kind().as_str_name().to_lowercase())
            .or_default() += 1;
    }
    let mut rows = table(&["open problem records", "records"]);
    for (kind, count) in &by_kind {
        rows.add_row(vec![
            kind.trim_start_matches("problem_kind_").to_owned(),
            count.to_string(),
        ]);
    }
    println!("{rows}");

    let overdue = TransferServiceClient::new(channel.clone())
        .count_overdue_transfers(tpb::CountOverdueTransfersRequest {})
        .await?
        .into_inner();
    let mut rows = table(&["party with overdue transfer steps", "steps"]);
    for count in &overdue.counts {
        rows.add_row(vec![count.jurisdiction.clone(), count.overdue.to_string()]);
    }
    println!("{rows}");

    let lists = StatsServiceClient::new(channel)
        .list_data_quality(pb::ListDataQualityRequest { unit, as_of })
        .await?
        .into_inner();
    println!("{} age–grade outliers", lists.age_grade_outliers.len());
    let mut rows = table(&["registry number", "name", "school", "grade", "birth date"]);
    for s in &lists.age_grade_outliers {
        rows.add_row(vec![
            s.registry_number.clone(),
            s.name.clone(),
            s.school_code.clone(),
            s.grade.to_string(),
            s.birth_date.clone(),
        ]);
    }
    println!("{rows}");
    println!(
        "{} records lacking key fields",
        lists.missing_key_fields.len()
    );
    let mut rows = table(&["registry number", "name", "school", "missing"]);
    for s in &lists.missing_key_fields {
        rows.add_row(vec![
            s.registry_number.clone(),
            s.name.clone(),
            s.school_code.clone(),
            s.missing_fields.join(", "),
        ]);
    }
    println!("{rows}");
    Ok(())
}

fn format_of(path: &std::path::Path) -> anyhow::Result<Format> {
    Format::of_file_name(&path.to_string_lossy())
        .with_context(|| format!("{}: the file must end in .csv or .xlsx", path.display()))
}

fn table(heading: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(heading);
    table
}

pub(crate) async fn run(
    channel: OperatorChannel,
    command: StatsCommand,
    json: bool,
) -> anyhow::Result<()> {
    let client_channel = channel.clone();
    let mut client = StatsServiceClient::new(channel);
    match command {
        StatsCommand::Report {
            unit,
            month,
            output,
        } => {
            let format = output.as_deref().map(format_of).transpose()?;
            let answer = client
                .get_monthly_report(pb::GetMonthlyReportRequest { unit, month })
                .await?
                .into_inner();
            let report = answer.report.clone().unwrap_or_default();
            if json {
                println!("{answer:#?}");
            } else {
                println!(
                    "{} {} ({} to {}), at feed position {}",
                    report.unit,
                    report.month,
                    report.from_date,
                    report.to_date,
                    report.feed_position
                );
                let (heading, lines) = xueji_client::export::report_rows(&answer);
                let mut rows = table(&heading);
                for line in lines {
                    rows.add_row(line);
                }
                println!("{rows}");
                if !answer.parts.is_empty() {
                    println!(
                        "parts sum to the whole: {}",
                        if answer.parts_reconcile { "yes" } else { "NO" }
                    );
                }
            }
            if let (Some(path), Some(format)) = (output, format) {
                let bytes = xueji_client::export::monthly_report_sheet(&answer, format)?;
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("written to {}", path.display());
            }
        }
        StatsCommand::Counts { unit, date } => {
            let answer = client
                .get_counts(pb::GetCountsRequest { unit, date })
                .await?
                .into_inner();
            println!(
                "{} on {}: {} active students (feed position {})",
                answer.unit, answer.date, answer.total, answer.feed_position
            );
            let mut rows = table(&["dimension", "value", "students"]);
            for cell in &answer.cells {
                rows.add_row(vec![
                    cell.dimension.clone(),
                    cell.value.clone(),
                    cell.students.to_string(),
                ]);
            }
            println!("{rows}");
        }
        StatsCommand::Summary { unit, date, output } => {
            let format = output.as_deref().map(format_of).transpose()?;
            let problems = problems_by_school(client_channel.clone(), &unit).await?;
            let answer = client
                .get_school_summary(pb::GetSchoolSummaryRequest { unit, date })
                .await?
                .into_inner();
            println!(
                "school summary on {} (feed position {})",
                answer.date, answer.feed_position
            );
            let mut rows = table(&[
                "school",
                "county",
                "students",
                "male",
                "female",
                "minorities",
                "migrant",
                "left-behind",
                "problems",
            ]);
            for s in &answer.schools {
                rows.add_row(vec![
                    s.school_code.clone(),
                    s.county.clone(),
                    s.students.to_string(),
                    s.male.to_string(),
                    s.female.to_string(),
                    s.ethnic_minorities.to_string(),
                    s.migrant_children.to_string(),
                    s.left_behind_children.to_string(),
                    problems
                        .get(&s.school_code)
                        .copied()
                        .unwrap_or(0)
                        .to_string(),
                ]);
            }
            println!("{rows}");
            if let (Some(path), Some(format)) = (output, format) {
                let bytes = xueji_client::export::school_summary_sheet(&answer, &problems, format)?;
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("written to {}", path.display());
            }
        }
        StatsCommand::Check { unit, month } => {
            let answer = client
                .check_reconciliation(pb::CheckReconciliationRequest { unit, month })
                .await?
                .into_inner();
            if answer.mismatches.is_empty() {
                println!("{} units checked: everything sums", answer.units_checked);
            } else {
                let mut rows = table(&["unit", "mismatch"]);
                for m in &answer.mismatches {
                    rows.add_row(vec![m.unit.clone(), m.detail.clone()]);
                }
                println!("{rows}");
                anyhow::bail!(
                    "{} mismatches in {} units",
                    answer.mismatches.len(),
                    answer.units_checked
                );
            }
        }
        StatsCommand::Dropouts { unit, as_of } => {
            let answer = client
                .list_dropouts(pb::ListDropoutsRequest { unit, as_of })
                .await?
                .into_inner();
            println!(
                "{} students unplaced for {} working days or more",
                answer.students.len(),
                answer.working_days
            );
            let mut rows = table(&[
                "registry number",
                "name",
                "school",
                "county",
                "left on",
                "kind",
                "working days",
            ]);
            for s in &answer.students {
                rows.add_row(vec![
                    s.registry_number.clone(),
                    s.name.clone(),
                    s.school_code.clone(),
                    s.county.clone(),
                    s.left_on.clone(),
                    s.kind.clone(),
                    s.working_days_unplaced.to_string(),
                ]);
            }
            println!("{rows}");
            if !answer.returned.is_empty() {
                println!(
                    "{} of them brought back this school year (劝返复学)",
                    answer.returned.len()
                );
                let mut rows = table(&[
                    "registry number",
                    "name",
                    "school left",
                    "left on",
                    "kind",
                    "back on",
                    "school now",
                    "working days out",
                ]);
                for s in &answer.returned {
                    rows.add_row(vec![
                        s.registry_number.clone(),
                        s.name.clone(),
                        s.school_code.clone(),
                        s.left_on.clone(),
                        s.kind.clone(),
                        s.returned_on.clone(),
                        s.returned_to_school.clone(),
                        s.working_days_unplaced.to_string(),
                    ]);
                }
                println!("{rows}");
            }
        }
        StatsCommand::Quality { unit, as_of } => quality(client_channel, unit, as_of).await?,
        StatsCommand::Provinces => {
            let answer = client
                .list_province_reports(pb::ListProvinceReportsRequest {})
                .await?
                .into_inner();
            let mut rows = table(&["province", "reported at", "feed position", "rows"]);
            for p in &answer.provinces {
                rows.add_row(vec![
                    p.province.clone(),
                    p.reported_at.clone(),
                    p.feed_position.to_string(),
                    p.rows.to_string(),
                ]);
            }
            println!("{rows}");
        }
    }
    Ok(())
}
