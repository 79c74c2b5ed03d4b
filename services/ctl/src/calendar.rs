//! `xuejictl transfer calendar load|years`: the official calendar on the national node (run
//! with `--node` set to the national node's address).

use anyhow::Context;
use chrono::Datelike;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_calendar::DayKind;
use xueji_proto::national::v1::{self as npb, calendar_registry_client::CalendarRegistryClient};

use xueji_client::OperatorChannel;

#[derive(Subcommand)]
pub(crate) enum CalendarAction {
    /// Load one year's official schedule on the national node (ministry operators), from a
    /// CSV file of `date,kind,name` lines (kind: holiday | workday; one header line; `#`
    /// comments), as the bundled calendar is written. Provinces pull it within a minute.
    Load {
        /// The CSV file.
        #[arg(long)]
        file: std::path::PathBuf,
        /// The year the file is for (default: the year of its dates).
        #[arg(long)]
        year: Option<i32>,
    },
    /// The years loaded on the national node.
    Years,
}

pub(crate) async fn run(
    channel: OperatorChannel,
    action: CalendarAction,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = CalendarRegistryClient::new(channel);
    match action {
        CalendarAction::Load { file, year } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let days = xueji_calendar::parse_csv(&text)
                .with_context(|| format!("{} is not a calendar file", file.display()))?;
            let year = match year {
                Some(year) => year,
                None => {
                    let mut years: Vec<i32> = days.iter().map(|d| d.date.year()).collect();
                    years.dedup();
                    match years.as_slice() {
                        [year] => *year,
                        [] => anyhow::bail!("{} names no day", file.display()),
                        _ => anyhow::bail!(
                            "{} names days of several years; load one year at a time (--year)",
                            file.display()
                        ),
                    }
                }
            };
            let request = npb::LoadCalendarYearRequest {
                year,
                days: days
                    .into_iter()
                    .map(|day| npb::CalendarDay {
                        date: day.date.to_string(),
                        kind: match day.kind {
                            DayKind::Holiday => npb::CalendarDayKind::Holiday,
                            DayKind::Workday => npb::CalendarDayKind::Workday,
                        } as i32,
                        name: day.name,
                    })
                    .collect(),
            };
            let answer = client.load_calendar_year(request).await?.into_inner();
            let loaded = answer.year.unwrap_or_default();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "year": loaded.year,
                        "days": loaded.days.len(),
                        "version": loaded.version,
                        "changed": answer.changed,
                    })
                );
            } else if answer.changed {
                println!(
                    "loaded {}: {} days, version {}; provinces take it at their next calendar sync",
                    loaded.year,
                    loaded.days.len(),
                    loaded.version
                );
            } else {
                println!(
                    "{} was already loaded with this schedule (version {}); nothing changed",
                    loaded.year, loaded.version
                );
            }
        }
        CalendarAction::Years => {
            let years = client
                .list_calendar_years(npb::ListCalendarYearsRequest::default())
                .await?
                .into_inner()
                .years;
            if json {
                let rows: Vec<_> = years
                    .iter()
                    .map(|y| {
                        serde_json::json!({
                            "year": y.year, "days": y.days.len(), "version": y.version,
                            "loaded_by": y.loaded_by, "loaded_at": y.loaded_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if years.is_empty() {
                println!(
                    "no year loaded on the national node (provinces count on the bundled years)"
                );
            } else {
                let mut table = Table::new();
                table.load_preset(UTF8_FULL_CONDENSED).set_header([
                    "year",
                    "days",
                    "version",
                    "loaded by",
                    "loaded at",
                ]);
                for y in &years {
                    table.add_row([
                        y.year.to_string(),
                        y.days.len().to_string(),
                        y.version.to_string(),
                        y.loaded_by.clone(),
                        y.loaded_at.clone(),
                    ]);
                }
                println!("{table}");
            }
        }
    }
    Ok(())
}
