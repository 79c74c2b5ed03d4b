//! The lists an operator reads as tables (or JSON): problem records, refused messages.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_proto::identity::v1 as pb;

use crate::{IdentityClient, kind_name};

/// Open problem records in `jurisdiction` (empty: the caller's own).
pub(crate) async fn problems(
    client: &mut IdentityClient,
    jurisdiction: String,
    json: bool,
) -> anyhow::Result<()> {
    let problems = client
        .list_problem_records(pb::ListProblemRecordsRequest {
            jurisdiction,
            page_size: 500,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .problems;
    if json {
        let rows: Vec<_> = problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "kind": kind_name(p.kind()),
                    "registry_number": p.registry_number,
                    "name": p.name,
                    "school_code": p.school_code,
                    "related_registry_numbers": p.related_registry_numbers,
                    "detail": p.detail,
                    "flagged_at": p.flagged_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if problems.is_empty() {
        println!("no open problem records");
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header([
            "kind",
            "registry number",
            "name",
            "school",
            "related",
        ]);
        for p in &problems {
            table.add_row([
                kind_name(p.kind()),
                p.registry_number.clone(),
                p.name.clone(),
                p.school_code.clone(),
                p.related_registry_numbers.join(", "),
            ]);
        }
        println!("{table}");
    }
    Ok(())
}

/// Outbox messages the national node refused for good.
pub(crate) async fn rejected(client: &mut IdentityClient, json: bool) -> anyhow::Result<()> {
    let mut messages = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_rejected_messages(pb::ListRejectedMessagesRequest {
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
                    "sequence": m.sequence,
                    "message_id": m.message_id,
                    "kind": m.kind,
                    "registry_number": m.registry_number,
                    "reason": m.reason,
                    "written_at": m.written_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if messages.is_empty() {
        println!("the national node has refused no message of this province");
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header([
            "sequence",
            "kind",
            "registry number",
            "written",
            "reason",
        ]);
        for m in &messages {
            table.add_row([
                m.sequence.to_string(),
                m.kind.clone(),
                m.registry_number.clone(),
                m.written_at.clone(),
                m.reason.clone(),
            ]);
        }
        println!("{table}");
    }
    Ok(())
}
