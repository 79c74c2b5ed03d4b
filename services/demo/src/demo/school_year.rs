//! The demo's school year: a suspension and a name correction through the school's approver and
//! the county, then the summer's cycle (graduation, promotion) run by the province, and a
//! graduate continuing at the junior school with the same registry number (升学).

use std::time::Duration;

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_auth::{Level, Role};
use xueji_proto::identity::v1 as pb;

use super::{DemoKeys, mint, step};
use xueji_client::{identity_client, school_year_client, status_change_client};

/// A small PDF: what a scanned certificate looks like to the evidence check.
const CERTIFICATE: &[u8] = b"%PDF-1.4\n% demo certificate\n%%EOF\n";

/// A Xiamen pupil is suspended: evidence, request, the school's approver, the county's.
/// Answers whether the record became suspended.
pub(super) async fn suspension(
    address: &str,
    pki_dir: &std::path::Path,
    keys: &DemoKeys,
    students: &[pb::Student],
) -> anyhow::Result<bool> {
    step("A suspension (休学): evidence, the school asks, its approver and the county approve");
    let Some(student) = students.iter().find(|s| {
        s.school_code == "2135000103"
            && s.status() == pb::EnrollmentStatus::Active
            && s.problems.is_empty()
    }) else {
        println!("  no active pupil at the Xiamen school");
        return Ok(false);
    };
    let school = &student.school_code;
    let operator = mint(keys, "registrar", Level::School, school, Role::Operator)?;
    let mut desk = status_change_client(address, pki_dir, &operator).await?;
    let file = desk
        .upload_evidence(pb::UploadEvidenceRequest {
            registry_number: student.registry_number.clone(),
            file_name: "诊断证明.pdf".into(),
            content: CERTIFICATE.to_vec(),
        })
        .await?
        .into_inner()
        .file
        .context("upload without a file")?;
    println!(
        "  evidence {} ({}, {} bytes, sha256 {}…)",
        file.file_name,
        file.media_type,
        file.size,
        &file.sha256[..16]
    );
    let today = xueji_calendar::china_today(keys.now());
    let change = desk
        .request_status_change(pb::RequestStatusChangeRequest {
            idempotency_key: format!("demo-suspension-{}", student.registry_number),
            registry_number: student.registry_number.clone(),
            kind: pb::StatusChangeKind::Suspension as i32,
            reason: "因病休学一年".into(),
            grounds: String::new(),
            effective_date: today.to_string(),
            evidence_ids: vec![file.id],
        })
        .await?
        .into_inner()
        .change
        .context("request without a change")?;
    approve_both(address, pki_dir, keys, &change).await?;
    let record = identity_client(address, pki_dir, &operator)
        .await?
        .get_student(pb::GetStudentRequest {
            number: student.registry_number.clone(),
        })
        .await?
        .into_inner()
        .student
        .context("no student")?;
    println!(
        "  {} {} is now {}",
        record.registry_number,
        record.name,
        record
            .status()
            .as_str_name()
            .trim_start_matches("ENROLLMENT_STATUS_")
            .to_lowercase()
    );
    Ok(record.status() == pb::EnrollmentStatus::Suspended)
}

/// A pupil's name is corrected: evidence, the school asks, its approver and the county
/// approve; the history shows both names. Answers whether the record carries the new name.
pub(super) async fn correction(
    address: &str,
    pki_dir: &std::path::Path,
    keys: &DemoKeys,
    students: &[pb::Student],
    suspended: Option<&str>,
) -> anyhow::Result<bool> {
    step("A correction (修改留痕): a misspelt name, with evidence, through both approvers");
    // The list was read before the transfers: take a pupil still active at its school now.
    let mut chosen = None;
    for candidate in students.iter().rev().filter(|s| {
        s.status() == pb::EnrollmentStatus::Active
            && s.problems.is_empty()
            && Some(s.registry_number.as_str()) != suspended
    }) {
        let operator = mint(
            keys,
            "registrar",
            Level::School,
            &candidate.school_code,
            Role::Operator,
        )?;
        let now = identity_client(address, pki_dir, &operator)
            .await?
            .get_student(pb::GetStudentRequest {
                number: candidate.registry_number.clone(),
            })
            .await?
            .into_inner()
            .student
            .context("no student")?;
        if now.status() == pb::EnrollmentStatus::Active && now.school_code == candidate.school_code
        {
            chosen = Some((now, operator));
            break;
        }
    }
    let Some((student, operator)) = chosen else {
        println!("  no active pupil without problems");
        return Ok(false);
    };
    let mut desk = status_change_client(address, pki_dir, &operator).await?;
    let file = desk
        .upload_evidence(pb::UploadEvidenceRequest {
            registry_number: student.registry_number.clone(),
            file_name: "户口本.pdf".into(),
            content: CERTIFICATE.to_vec(),
        })
        .await?
        .into_inner()
        .file
        .context("upload without a file")?;
    let corrected_name = format!("{}华", student.name);
    let change = desk
        .request_correction(pb::RequestCorrectionRequest {
            idempotency_key: format!("demo-correction-{}", student.registry_number),
            registry_number: student.registry_number.clone(),
            values: vec![pb::FieldValue {
                field: "name".into(),
                value: corrected_name.clone(),
            }],
            reason: "户口本上的姓名与登记不符".into(),
            evidence_ids: vec![file.id],
        })
        .await?
        .into_inner()
        .change
        .context("request without a change")?;
    approve_both(address, pki_dir, keys, &change).await?;
    let history = desk
        .get_student_history(pb::GetStudentHistoryRequest {
            registry_number: student.registry_number.clone(),
        })
        .await?
        .into_inner();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["field", "value", "by", "why", "approved by"]);
    let names: Vec<&pb::FieldHistory> = history
        .fields
        .iter()
        .filter(|f| f.field == "name")
        .collect();
    for field in &names {
        table.add_row([
            field.field.clone(),
            field.value.clone(),
            field.changed_by.clone(),
            field.reason.clone(),
            field.approved_by.clone(),
        ]);
    }
    println!("  history of {}'s name:\n{table}", history.registry_number);
    Ok(names.last().is_some_and(|f| f.value == corrected_name) && names.len() == 2)
}

/// The approver of each step's party, in order, approves a request: the school's, then its
/// registry authority's (the county, or the city for a senior high school), as the change
/// itself names them.
async fn approve_both(
    address: &str,
    pki_dir: &std::path::Path,
    keys: &DemoKeys,
    change: &pb::StatusChange,
) -> anyhow::Result<()> {
    for step in &change.steps {
        let jurisdiction = step.jurisdiction.as_str();
        let level = match (step.party.as_str(), jurisdiction.len()) {
            ("school", _) => Level::School,
            (_, 6) if jurisdiction.ends_with("00") => Level::City,
            _ => Level::County,
        };
        let token = mint(keys, "approver", level, jurisdiction, Role::Approver)?;
        status_change_client(address, pki_dir, &token)
            .await?
            .decide_status_change(pb::DecideStatusChangeRequest {
                id: change.id.clone(),
                step: step.position,
                approve: true,
                remark: "同意".into(),
            })
            .await?;
        println!(
            "  step {} approved by {jurisdiction}'s approver",
            step.position
        );
    }
    Ok(())
}

/// What the school year's scene showed.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct YearTurned {
    pub graduated: u64,
    pub promoted: u64,
    /// The graduate continued at the junior school with the same registry number.
    pub continued_with_same_number: bool,
    pub summer: i32,
}

/// The summer's cycle on Fujian, and a graduate continuing at the junior school.
pub(super) async fn turn_the_year(
    address: &str,
    pki_dir: &std::path::Path,
    keys: &DemoKeys,
) -> anyhow::Result<YearTurned> {
    let today = xueji_calendar::china_today(keys.now());
    let summer = xueji_identity::domain::school_year::SchoolYearPolicy::bundled()
        .dates("35")
        .last_summer(today);
    step(&format!(
        "The school year turns: the {summer} summer's cycle, run by the province"
    ));
    // A pupil in the last primary grade, who will move on to the junior school.
    let (primary, junior, county) = ("2135000101", "3135000201", "350102");
    let birth = chrono::NaiveDate::from_ymd_opt(summer - 13, 6, 11).context("a date")?;
    let id = xueji_codes::ResidentId::from_body(&format!("{county}{}013", birth.format("%Y%m%d")))
        .map_err(|e| anyhow::anyhow!("sample ID number: {e}"))?;
    let registrar = mint(keys, "registrar", Level::School, primary, Role::Operator)?;
    let approver = mint(keys, "approver", Level::County, county, Role::Approver)?;
    let request = |school: &str, grade: u32, entry: String, key: &str| pb::RegisterStudentRequest {
        class_name: String::new(),
        migrant_child: false,
        left_behind_child: false,
        continues_registry_number: String::new(),
        provincial_fields: Default::default(),
        idempotency_key: key.into(),
        name: "林小毕".into(),
        gender: pb::Gender::Male as i32,
        birth_date: birth.to_string(),
        ethnicity: "01".into(),
        document_type: pb::DocumentType::ResidentIdCard as i32,
        document_number: id.to_string(),
        school_code: school.into(),
        grade,
        entry_date: entry,
        entry_route: pb::EntryRoute::NearbyAdmission as i32,
        guardian: Some(pb::Guardian {
            name: "林建国".into(),
            relation: "父亲".into(),
            phone: "13900000000".into(),
        }),
    };
    let pupil = identity_client(address, pki_dir, &registrar)
        .await?
        .register_student(request(
            primary,
            6,
            format!("{}-09-01", summer - 1),
            "demo-grade-6",
        ))
        .await?
        .into_inner()
        .student
        .context("no student")?;
    let mut county_approver = identity_client(address, pki_dir, &approver).await?;
    let pupil = county_approver
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: pupil.registry_number,
        })
        .await?
        .into_inner()
        .student
        .context("no student")?;
    println!(
        "  {} {} in grade 6 at {primary} (a 6-year primary school)",
        pupil.registry_number, pupil.name
    );

    let province = mint(
        keys,
        "province-operator",
        Level::Province,
        "350000",
        Role::Operator,
    )?;
    let mut cycle = school_year_client(address, pki_dir, &province).await?;
    let preview = cycle
        .preview_cycle(pb::PreviewCycleRequest {
            year: summer as u32,
        })
        .await?
        .into_inner();
    println!(
        "  dry run: {} would graduate, {} be promoted; held back: {} by a pending task, {} by a \
         problem record, {} awaiting senior high confirmation",
        preview.will_graduate,
        preview.will_promote,
        preview.blocked_by_task,
        preview.blocked_by_problem,
        preview.awaiting_confirmation
    );
    cycle
        .run_cycle(pb::RunCycleRequest {
            year: summer as u32,
        })
        .await?;
    let mut status = None;
    for _ in 0..600 {
        let now = cycle
            .get_cycle_status(pb::GetCycleStatusRequest {
                year: summer as u32,
            })
            .await?
            .into_inner();
        if !now.running
            && now
                .steps
                .iter()
                .all(|s| s.state == pb::CycleStepState::Done as i32)
        {
            status = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.context("the cycle did not finish within a minute")?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "step",
        "enrollments",
        "changed",
        "left in school",
    ]);
    for s in &status.steps {
        table.add_row([
            s.step.clone(),
            format!("{}/{}", s.processed, s.total),
            s.changed.to_string(),
            s.blocked.to_string(),
        ]);
    }
    println!("{table}");
    let changed = |name: &str| {
        status
            .steps
            .iter()
            .find(|s| s.step == name)
            .map_or(0, |s| s.changed)
    };

    // Progression: the junior school registers its new grade 7 by ID number.
    let junior_token = mint(keys, "registrar", Level::School, junior, Role::Operator)?;
    let continued = identity_client(address, pki_dir, &junior_token)
        .await?
        .register_student(request(
            junior,
            7,
            format!("{summer}-09-01"),
            "demo-grade-7",
        ))
        .await?
        .into_inner();
    let record = county_approver
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: continued
                .student
                .as_ref()
                .map(|s| s.registry_number.clone())
                .unwrap_or_default(),
        })
        .await?
        .into_inner()
        .student
        .context("no student")?;
    println!(
        "  {} graduated from {primary}; {junior} registered them for grade 7: {} (continued: {}), \
         now {} in grade {}",
        pupil.registry_number,
        record.registry_number,
        continued.continued,
        record
            .status()
            .as_str_name()
            .trim_start_matches("ENROLLMENT_STATUS_")
            .to_lowercase(),
        record.grade
    );
    Ok(YearTurned {
        summer,
        graduated: changed("graduation"),
        promoted: changed("promotion"),
        continued_with_same_number: continued.continued
            && record.registry_number == pupil.registry_number
            && record.status() == pb::EnrollmentStatus::Active,
    })
}
