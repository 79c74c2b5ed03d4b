//! `xuejictl change update`: the non-key fields the school keeps without approval, and what
//! the update changed.

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_client::OperatorChannel;
use xueji_proto::identity::v1::{
    self as pb, status_change_service_client::StatusChangeServiceClient,
};

pub(crate) async fn update(
    client: &mut StatusChangeServiceClient<OperatorChannel>,
    request: pb::UpdateStudentDetailsRequest,
    json: bool,
) -> anyhow::Result<()> {
    let answer = client.update_student_details(request).await?.into_inner();
    if json {
        let changes: Vec<_> = answer
            .changes
            .iter()
            .map(|c| serde_json::json!({"field": c.field, "from": c.from, "to": c.to}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "replayed": answer.replayed,
                "changes": changes,
                "student": answer.student.as_ref().map(crate::students::to_json),
            }))?
        );
        return Ok(());
    }
    if answer.replayed {
        println!("(already updated with this idempotency key)");
    }
    if answer.changes.is_empty() {
        println!("nothing changed: the record already holds these values");
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["field", "was", "now"]);
    for change in &answer.changes {
        table.add_row([change.field.clone(), change.from.clone(), change.to.clone()]);
    }
    println!("{table}");
    Ok(())
}

/// `--set field=value` pairs as the API takes them.
pub(crate) fn field_values(pairs: &[String]) -> anyhow::Result<Vec<pb::FieldValue>> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(field, value)| pb::FieldValue {
                    field: field.trim().to_owned(),
                    value: value.to_owned(),
                })
                .with_context(|| format!("--set {pair:?}: write it as field=value"))
        })
        .collect()
}
