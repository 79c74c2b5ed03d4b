//! The demo's transfer: a Fujian student moves to a school in another county, through the
//! receiving authority, the sending school and the sending authority, each deciding in turn.

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as pb, transfers::v1 as tpb};

use super::{DemoKeys, mint, step};
use crate::client::transfers_client;

/// Runs the transfer; answers its final state and the student's new school.
pub(super) async fn inside_fujian(
    address: &str,
    pki_dir: &std::path::Path,
    keys: &DemoKeys,
    students: &[pb::Student],
    schools: &[(String, String)],
) -> anyhow::Result<Option<(String, String)>> {
    step("A transfer inside Fujian: receiving authority → sending school → sending authority");
    let Some(student) = students.iter().find(|s| {
        s.school_code.get(2..4) == Some("35")
            && s.status() == pb::EnrollmentStatus::Active
            && s.problems.is_empty()
    }) else {
        println!("  no active Fujian student without problems to transfer");
        return Ok(None);
    };
    let sending_county = schools
        .iter()
        .find(|(code, _)| *code == student.school_code)
        .map(|(_, county)| county.clone())
        .context("the student's school is not in the sample")?;
    let Some((receiving, receiving_county)) = schools.iter().find(|(code, county)| {
        code.starts_with("21") && code.get(2..4) == Some("35") && *county != sending_county
    }) else {
        println!("  no primary school in another Fujian county");
        return Ok(None);
    };
    let as_school = |school: &str| {
        mint(
            keys,
            &format!("operator@{school}"),
            Level::School,
            school,
            Role::Operator,
        )
    };
    let as_approver = |county: &str| {
        mint(
            keys,
            &format!("approver@{county}"),
            Level::County,
            county,
            Role::Approver,
        )
    };
    let mut receiving_school = transfers_client(address, pki_dir, &as_school(receiving)?).await?;
    let started = receiving_school
        .start_transfer(tpb::StartTransferRequest {
            idempotency_key: format!("demo-transfer-{}", student.registry_number),
            receiving_school_code: receiving.clone(),
            registry_number: student.registry_number.clone(),
            name: student.name.clone(),
            birth_date: student.birth_date.clone(),
            target_grade: student.grade,
            reason: "随父母工作调动".into(),
            evidence: vec!["居住证明 2025-001".into()],
            ..Default::default()
        })
        .await?
        .into_inner()
        .transfer
        .context("no transfer in the answer")?;
    println!(
        "  school {receiving} started transfer {} for {} {}",
        started.id, student.registry_number, student.name
    );
    let parties = [
        (receiving_county.clone(), "receiving authority"),
        (student.school_code.clone(), "sending school"),
        (sending_county.clone(), "sending authority"),
    ];
    let mut last = started;
    for (position, (party, label)) in parties.iter().enumerate() {
        let token = if party.len() == 10 {
            as_school(party)?
        } else {
            as_approver(party)?
        };
        last = transfers_client(address, pki_dir, &token)
            .await?
            .approve_transfer(tpb::ApproveTransferRequest {
                transfer_id: last.id.clone(),
                step: position as u32,
                remark: "同意".into(),
            })
            .await?
            .into_inner()
            .transfer
            .context("no transfer in the answer")?;
        println!("  step {position}: {label} {party} approved");
    }
    let shown = receiving_school
        .get_transfer(tpb::GetTransferRequest {
            transfer_id: last.id.clone(),
        })
        .await?
        .into_inner()
        .transfer
        .context("no transfer in the answer")?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "step",
        "party",
        "who",
        "deadline",
        "on timeout",
        "decided by",
    ]);
    for s in &shown.steps {
        table.add_row([
            s.position.to_string(),
            s.party.clone(),
            s.jurisdiction.clone(),
            s.deadline.clone(),
            s.timeout_action.clone(),
            s.decided_by.clone(),
        ]);
    }
    println!("{table}");
    let state = shown
        .state()
        .as_str_name()
        .trim_start_matches("TRANSFER_STATE_")
        .to_lowercase();
    println!(
        "  transfer {state}: {} now studies at {receiving} (from {})",
        shown.registry_number, shown.sending_school_code
    );
    Ok(Some((state, receiving.clone())))
}
