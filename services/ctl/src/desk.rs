//! The registrar's desk from the command line: the September queue (with its counts by school
//! and grade), a batch approval with each outcome, and the search by what a parent says.

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_proto::identity::v1 as pb;

use crate::{IdentityClient, students::print_students};

#[derive(Args)]
pub(crate) struct QueueArgs {
    /// A division or school code inside your jurisdiction (default: all of it).
    #[arg(long, default_value = "")]
    scope: String,
    /// Only this grade (1–12).
    #[arg(long, default_value_t = 0)]
    grade: u32,
    /// Only registrations made on or after this day (YYYY-MM-DD).
    #[arg(long, default_value = "")]
    from: String,
    /// Only registrations made on or before this day (YYYY-MM-DD).
    #[arg(long, default_value = "")]
    until: String,
    /// How many registrations to list (1–500).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Approve the registrations listed, each on its own, and print each outcome.
    #[arg(long)]
    approve: bool,
}

#[derive(Args)]
pub(crate) struct SearchArgs {
    /// A division or school code inside your jurisdiction (default: all of it).
    #[arg(long, default_value = "")]
    scope: String,
    /// The pupil's full name.
    #[arg(long, default_value = "")]
    name: String,
    /// The birth date (YYYY-MM-DD).
    #[arg(long, default_value = "")]
    birth_date: String,
    /// A guardian's full name or phone number.
    #[arg(long, default_value = "")]
    guardian: String,
    /// 4–18 consecutive characters of the ID or document number.
    #[arg(long, default_value = "")]
    id_part: String,
}

/// Lists the queue and its counts; with `--approve`, approves what it listed.
pub(crate) async fn queue(
    client: &mut IdentityClient,
    args: QueueArgs,
    json: bool,
) -> anyhow::Result<()> {
    let listed = client
        .list_pending_registrations(pb::ListPendingRegistrationsRequest {
            scope: args.scope,
            grade: args.grade,
            registered_from: args.from,
            registered_until: args.until,
            page_size: args.limit,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    if !args.approve {
        if json {
            let counts: Vec<_> = listed
                .counts
                .iter()
                .map(|c| serde_json::json!({"school_code": c.school_code, "grade": c.grade, "pending": c.pending}))
                .collect();
            let registrations: Vec<_> = listed
                .registrations
                .iter()
                .map(crate::students::to_json)
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "total": listed.total, "counts": counts, "registrations": registrations,
                }))?
            );
            return Ok(());
        }
        if listed.total == 0 {
            println!("no registration waits for a decision");
            return Ok(());
        }
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_header(["school", "grade", "pending"]);
        for count in &listed.counts {
            table.add_row([
                count.school_code.clone(),
                count.grade.to_string(),
                count.pending.to_string(),
            ]);
        }
        println!("{table}");
        println!("{} registrations wait; the oldest:", listed.total);
        print_students(listed.registrations, false)?;
        if !listed.next_page_token.is_empty() {
            eprintln!(
                "(more wait: narrow with --scope, --grade, --from or --until, or raise --limit)"
            );
        }
        return Ok(());
    }
    if listed.registrations.is_empty() {
        println!("no registration waits for a decision");
        return Ok(());
    }
    let numbers = listed
        .registrations
        .iter()
        .map(|s| s.registry_number.clone())
        .collect();
    approve(client, numbers, json).await
}

/// Approves `numbers` in one call and prints each outcome.
pub(crate) async fn approve(
    client: &mut IdentityClient,
    numbers: Vec<String>,
    json: bool,
) -> anyhow::Result<()> {
    let answer = client
        .approve_registrations(pb::ApproveRegistrationsRequest {
            registry_numbers: numbers,
        })
        .await?
        .into_inner();
    if json {
        let outcomes: Vec<_> = answer
            .outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "registry_number": o.registry_number,
                    "student": o.student.as_ref().map(crate::students::to_json),
                    "error_code": o.error_code,
                    "error_message": o.error_message,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "approved": answer.approved, "refused": answer.refused, "outcomes": outcomes,
            }))?
        );
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["asked", "now", "name", "outcome"]);
    for outcome in &answer.outcomes {
        let (now, name, what) = match &outcome.student {
            Some(student) => (
                student.registry_number.clone(),
                student.name.clone(),
                crate::students::status_name(student),
            ),
            None => (
                String::new(),
                String::new(),
                format!(
                    "refused ({}): {}",
                    outcome.error_code, outcome.error_message
                ),
            ),
        };
        table.add_row([outcome.registry_number.clone(), now, name, what]);
    }
    println!("{table}");
    println!("{} approved, {} refused", answer.approved, answer.refused);
    Ok(())
}

/// Searches and prints the students found (every page).
pub(crate) async fn search(
    client: &mut IdentityClient,
    args: SearchArgs,
    json: bool,
) -> anyhow::Result<()> {
    let mut students = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .search_students(pb::SearchStudentsRequest {
                scope: args.scope.clone(),
                name: args.name.clone(),
                birth_date: args.birth_date.clone(),
                guardian: args.guardian.clone(),
                document_number_part: args.id_part.clone(),
                page_size: 100,
                page_token,
            })
            .await?
            .into_inner();
        students.extend(page.students);
        if page.next_page_token.is_empty() || students.len() >= 1_000 {
            break;
        }
        page_token = page.next_page_token;
    }
    if students.is_empty() && !json {
        println!("no student of your jurisdiction matches");
        return Ok(());
    }
    print_students(students, json)
}
