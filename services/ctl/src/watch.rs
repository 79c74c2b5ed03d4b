//! `xuejictl watch …`: the authority's watch lists against the year's deadlines (休学期满,
//! 小升初, registrations after the intake deadline, problems open after the problems deadline).

use clap::{Args, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_proto::identity::v1::{self as pb, school_year_service_client::SchoolYearServiceClient};

use xueji_client::OperatorChannel;

/// The lists, as the command line names them.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ListName {
    /// Suspensions past their term (休学期满未复学).
    Suspensions,
    /// Primary graduates with no junior-school place after the intake deadline (小升初未升学).
    UnplacedGraduates,
    /// Registrations after the intake deadline, or still waiting when it passed.
    LateRegistrations,
    /// Problem records still open after the problems deadline.
    LateProblems,
}

impl ListName {
    fn wire(self) -> pb::WatchList {
        match self {
            Self::Suspensions => pb::WatchList::SuspensionsPastTerm,
            Self::UnplacedGraduates => pb::WatchList::PrimaryGraduatesUnplaced,
            Self::LateRegistrations => pb::WatchList::LateRegistrations,
            Self::LateProblems => pb::WatchList::ProblemsOpenLate,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Suspensions => "suspensions past their term (休学期满未复学)",
            Self::UnplacedGraduates => "primary graduates without a junior school (小升初未升学)",
            Self::LateRegistrations => "registrations after the intake deadline",
            Self::LateProblems => "problem records open after the deadline",
        }
    }
}

#[derive(Args)]
pub(crate) struct WatchArgs {
    /// Which list.
    list: ListName,
    /// A division or school code inside your jurisdiction (default: all of it).
    #[arg(long, default_value = "")]
    scope: String,
    /// How many records to print at most (the whole list is counted).
    #[arg(long, default_value_t = 500)]
    limit: u32,
}

pub(crate) async fn run(
    channel: OperatorChannel,
    args: WatchArgs,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = SchoolYearServiceClient::new(channel);
    let listed = client
        .list_watch_list(pb::ListWatchListRequest {
            list: args.list.wire() as i32,
            scope: args.scope,
            page_size: args.limit.clamp(1, 500),
            page_token: String::new(),
        })
        .await?
        .into_inner();
    if json {
        let entries: Vec<_> = listed
            .entries
            .iter()
            .map(|entry| {
                serde_json::json!({
                    "student": entry.student.as_ref().map(crate::students::to_json),
                    "since": entry.since,
                    "detail": entry.detail,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "deadline": listed.deadline, "total": listed.total, "entries": entries,
            }))?
        );
        return Ok(());
    }
    println!(
        "{}: {} (deadline {})",
        args.list.title(),
        listed.total,
        listed.deadline
    );
    if listed.entries.is_empty() {
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "registry number",
        "name",
        "school",
        "grade",
        "since",
        "why",
    ]);
    for entry in &listed.entries {
        let student = entry.student.clone().unwrap_or_default();
        table.add_row([
            student.registry_number,
            student.name,
            student.school_code,
            student.grade.to_string(),
            entry.since.clone(),
            entry.detail.clone(),
        ]);
    }
    println!("{table}");
    if !listed.next_page_token.is_empty() {
        eprintln!("(more on the list: narrow with --scope)");
    }
    Ok(())
}
