//! How `xuejictl school` shows what the registry answers: tables, or JSON with `--json`.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};
use xueji_proto::schools::v1::{self as pb};

pub(super) fn word(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

pub(super) fn school_json(school: &pb::School) -> Value {
    let profile = school.profile.clone().unwrap_or_default();
    json!({
        "code": school.code,
        "name": profile.name,
        "category": profile.category,
        "stages": profile.stages.iter().map(|s| format!("{}:{}", word(s.stage().as_str_name(), "STAGE_"), s.years)).collect::<Vec<_>>(),
        "division": profile.division,
        "registry_authority": profile.registry_authority,
        "operator_type": word(profile.operator_type().as_str_name(), "OPERATOR_TYPE_"),
        "address": profile.address,
        "township": profile.township,
        "status": word(school.status().as_str_name(), "SCHOOL_STATUS_"),
        "open_from": school.open_from,
        "open_until": school.open_until,
        "former_names": school.former_names.iter().map(|f| json!({"name": f.name, "until": f.effective_date})).collect::<Vec<_>>(),
        "successors": school.successors,
        "published_in": school.published_in,
    })
}

pub(super) fn application_json(application: &pb::Application) -> Value {
    let profile = application.profile.clone().unwrap_or_default();
    json!({
        "id": application.id,
        "status": word(application.status().as_str_name(), "APPLICATION_STATUS_"),
        "name": profile.name,
        "category": profile.category,
        "division": profile.division,
        "open_from": application.open_from,
        "code": application.code,
        "filed_by": application.filed_by,
        "steps": application.steps.iter().map(|s| json!({"action": s.action, "actor": s.actor, "reason": s.reason, "at": s.at})).collect::<Vec<_>>(),
    })
}

pub(super) fn change_json(change: &pb::Change) -> Value {
    json!({
        "version": change.version,
        "kind": word(change.kind().as_str_name(), "CHANGE_KIND_"),
        "code": change.code,
        "name": change.school.as_ref().and_then(|s| s.profile.as_ref()).map(|p| p.name.clone()).unwrap_or_default(),
        "predecessors": change.predecessors,
        "effective_date": change.effective_date,
        "reason": change.reason,
    })
}

/// Prints rows as JSON, or as a table of the given columns.
pub(super) fn print(rows: Vec<Value>, columns: &[&str], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("(none)");
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(columns.iter().map(|c| c.replace('_', " ")));
    for row in &rows {
        table.add_row(columns.iter().map(|column| cell(&row[*column])));
    }
    println!("{table}");
    Ok(())
}

/// A JSON value as a table cell: text as is, lists comma-separated.
pub(super) fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(fields) => fields.values().map(cell).collect::<Vec<_>>().join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) const SCHOOL_COLUMNS: &[&str] = &[
    "code",
    "name",
    "category",
    "division",
    "registry_authority",
    "status",
    "open_from",
    "successors",
];

pub(super) const APPLICATION_COLUMNS: &[&str] =
    &["id", "status", "name", "category", "division", "code"];

pub(super) const CHANGE_COLUMNS: &[&str] = &[
    "version",
    "kind",
    "code",
    "name",
    "predecessors",
    "effective_date",
    "reason",
];

pub(super) fn print_school(school: Option<pb::School>, json: bool) -> anyhow::Result<()> {
    print(
        school.iter().map(school_json).collect(),
        SCHOOL_COLUMNS,
        json,
    )
}

pub(super) fn print_application(
    application: Option<pb::Application>,
    json: bool,
) -> anyhow::Result<()> {
    print(
        application.iter().map(application_json).collect(),
        APPLICATION_COLUMNS,
        json,
    )
}
