//! The demo's transfer: a Fujian student moves to a school in another county, through the
//! receiving authority, the sending school and the sending authority, each deciding in turn.

use std::time::Duration;

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as pb, transfers::v1 as tpb};

use super::{DemoKeys, mint, step};

use xueji_client::{identity_client, transfers_client};

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
    let started = start_for(
        &mut receiving_school,
        "demo-transfer",
        receiving,
        student,
        "随父母工作调动",
        "居住证明 2025-001",
    )
    .await?;
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
    // The last approval moves the record at once, unless the background sweeper claimed the
    // move first: then it lands a moment later.
    let mut shown;
    let patience = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        shown = receiving_school
            .get_transfer(tpb::GetTransferRequest {
                transfer_id: last.id.clone(),
            })
            .await?
            .into_inner()
            .transfer
            .context("no transfer in the answer")?;
        if shown.state() != tpb::TransferState::Approved || tokio::time::Instant::now() >= patience
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    print_steps(&shown);
    let state = state_name(&shown);
    println!(
        "  transfer {state}: {} now studies at {receiving} (from {})",
        shown.registry_number, shown.sending_school_code
    );
    Ok(Some((state, receiving.clone())))
}

/// Two Anhui students: one moves to Fujian through all four parties (the receiving school
/// starts; the receiving authority in Fujian, the sending school and authority in Anhui approve,
/// each at its own node), one moves inside Anhui while nobody decides, its deadlines passing on
/// the federation's clock: Anhui's policy approves on the parties' behalf. Answers whether each
/// completed.
pub(super) async fn from_anhui(
    fujian: &str,
    anhui: &str,
    pki_root: &std::path::Path,
    keys: &DemoKeys,
) -> anyhow::Result<(bool, bool)> {
    step(
        "A transfer from Anhui to Fujian: four parties, two provinces, through the national relay",
    );
    let anhui_pki = pki_root.join("34");
    let fujian_pki = pki_root.join("35");
    let province = mint(keys, "anhui", Level::Province, "340000", Role::Operator)?;
    let primaries: Vec<(String, String)> =
        xueji_client::intake_client(anhui, &anhui_pki, &province)
            .await?
            .list_schools(xueji_proto::schools::v1::ListSchoolsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner()
            .schools
            .into_iter()
            .filter(|s| s.code.starts_with("2134"))
            .filter_map(|s| Some((s.code.clone(), s.profile?.registry_authority)))
            .collect();
    let (sending, sending_county) = primaries
        .first()
        .cloned()
        .context("Anhui has no primary school in its replica")?;
    let (inside, inside_county) = primaries
        .iter()
        .find(|(_, county)| *county != sending_county)
        .cloned()
        .context("Anhui has no primary school in a second county")?;
    let school_token = |school: &str| {
        mint(
            keys,
            &format!("operator@{school}"),
            Level::School,
            school,
            Role::Operator,
        )
    };
    let approver_token = |division: &str| {
        let level = if division.ends_with("00") {
            Level::City
        } else {
            Level::County
        };
        mint(
            keys,
            &format!("approver@{division}"),
            level,
            division,
            Role::Approver,
        )
    };

    // Two students enrolled in Anhui (registered and approved there).
    let names = ["王皖闽", "赵皖安"];
    let students = enroll(keys, anhui, &anhui_pki, &sending, &sending_county, 2, |n| {
        names[n].to_owned()
    })
    .await?;
    for student in &students {
        println!(
            "  Anhui enrolled {} {} at {sending}",
            student.registry_number, student.name
        );
    }

    // Fujian's Gulou primary school receives the first.
    let receiving = "2135000101";
    let receiving_county = "350102";
    let mut receiving_school =
        transfers_client(fujian, &fujian_pki, &school_token(receiving)?).await?;
    let student = &students[0];
    let started = start_for(
        &mut receiving_school,
        "demo-across",
        receiving,
        student,
        "随父母迁居福州",
        "居住证明 2025-002",
    )
    .await?;
    println!(
        "  Fujian school {receiving} started transfer {} for {} (Anhui held the student: {})",
        started.id,
        student.registry_number,
        started
            .state()
            .as_str_name()
            .trim_start_matches("TRANSFER_STATE_")
            .to_lowercase()
    );
    let parties = [
        (
            fujian,
            &fujian_pki,
            approver_token(receiving_county)?,
            "receiving authority (Fujian)",
        ),
        (
            anhui,
            &anhui_pki,
            school_token(&sending)?,
            "sending school (Anhui)",
        ),
        (
            anhui,
            &anhui_pki,
            approver_token(&sending_county)?,
            "sending authority (Anhui)",
        ),
    ];
    for (position, (node, pki, token, label)) in parties.iter().enumerate() {
        let mut client = transfers_client(node, pki, token).await?;
        // The step reaches the party's own node through the relay.
        approve_when_open(
            &mut client,
            &started.id,
            position,
            Duration::from_millis(100),
        )
        .await
        .with_context(|| format!("step {position} at the {label}"))?;
        println!("  step {position}: {label} approved at its own node");
    }
    let shown = wait_for_end(
        &mut receiving_school,
        &started.id,
        Duration::from_millis(100),
    )
    .await?;
    print_steps(&shown);
    let across = shown.state() == tpb::TransferState::Completed;
    println!(
        "  transfer {}: {} now studies at {receiving} in Fujian (from {} in Anhui); the national index names Fujian",
        state_name(&shown),
        shown.registry_number,
        shown.sending_school_code
    );

    step("A transfer inside Anhui whose deadlines pass: Anhui's policy approves on timeout");
    let student = &students[1];
    let mut inside_school = transfers_client(anhui, &anhui_pki, &school_token(&inside)?).await?;
    let started = start_for(
        &mut inside_school,
        "demo-timeout",
        &inside,
        student,
        "随父母迁居",
        "居住证明 2025-003",
    )
    .await?;
    println!(
        "  school {inside} ({inside_county}) started transfer {}; nobody decides",
        started.id
    );
    let mut shown = started;
    for round in 0..3 {
        // Past the open step's deadline (20 working days in Anhui).
        keys.clock.advance(chrono::Duration::days(35));
        let mut watcher = transfers_client(anhui, &anhui_pki, &school_token(&inside)?).await?;
        for _ in 0..100 {
            shown = watcher
                .get_transfer(tpb::GetTransferRequest {
                    transfer_id: shown.id.clone(),
                })
                .await?
                .into_inner()
                .transfer
                .context("no transfer in the answer")?;
            let decided = shown
                .steps
                .iter()
                .filter(|s| !s.decided_by.is_empty())
                .count();
            if decided > round || shown.state() != tpb::TransferState::InProgress {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        println!(
            "  the clock moves 35 days on: {}",
            shown
                .steps
                .iter()
                .map(|s| format!(
                    "{} {}",
                    s.party,
                    if s.decided_by.is_empty() {
                        "waiting"
                    } else {
                        "approved on timeout"
                    }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut watcher = transfers_client(anhui, &anhui_pki, &school_token(&inside)?).await?;
    let shown = wait_for_end(&mut watcher, &shown.id, Duration::from_millis(100)).await?;
    print_steps(&shown);
    println!(
        "  transfer {} without a single human decision",
        state_name(&shown)
    );
    Ok((across, shown.state() == tpb::TransferState::Completed))
}

pub(crate) fn state_name(transfer: &tpb::Transfer) -> String {
    transfer
        .state()
        .as_str_name()
        .trim_start_matches("TRANSFER_STATE_")
        .to_lowercase()
}

/// Reads the transfer every `every` until it leaves `in_progress` / `approved` (or about ten
/// seconds pass); answers it as last read.
pub(crate) async fn wait_for_end(
    client: &mut xueji_client::TransfersClient,
    id: &str,
    every: Duration,
) -> anyhow::Result<tpb::Transfer> {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let transfer = client
            .get_transfer(tpb::GetTransferRequest {
                transfer_id: id.to_owned(),
            })
            .await?
            .into_inner()
            .transfer
            .context("no transfer in the answer")?;
        let running = matches!(
            transfer.state(),
            tpb::TransferState::InProgress | tpb::TransferState::Approved
        );
        if !running || tokio::time::Instant::now() >= until {
            return Ok(transfer);
        }
        tokio::time::sleep(every).await;
    }
}

/// Approves step `step` of `id` once it is open at the client's node (a step of another
/// province arrives through the relay): retried every `every` while the node answers that it
/// is not there or not its turn yet, for about ten seconds.
pub(crate) async fn approve_when_open(
    client: &mut xueji_client::TransfersClient,
    id: &str,
    step: usize,
    every: Duration,
) -> anyhow::Result<tpb::Transfer> {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = client
            .approve_transfer(tpb::ApproveTransferRequest {
                transfer_id: id.to_owned(),
                step: step as u32,
                remark: "同意".into(),
            })
            .await;
        match answer {
            Ok(done) => {
                return done
                    .into_inner()
                    .transfer
                    .context("no transfer in the answer");
            }
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::NotFound
                ) && tokio::time::Instant::now() < until =>
            {
                tokio::time::sleep(every).await
            }
            Err(status) => return Err(status.into()),
        }
    }
}

/// Starts a transfer of `student` (enrolled by [`enroll`]) into `school`, with what the family
/// brings; the idempotency key is `key_prefix` and the student's number.
pub(crate) async fn start_for(
    client: &mut xueji_client::TransfersClient,
    key_prefix: &str,
    school: &str,
    student: &pb::Student,
    reason: &str,
    evidence: &str,
) -> anyhow::Result<tpb::Transfer> {
    client
        .start_transfer(tpb::StartTransferRequest {
            idempotency_key: format!("{key_prefix}-{}", student.registry_number),
            receiving_school_code: school.to_owned(),
            registry_number: student.registry_number.clone(),
            name: student.name.clone(),
            birth_date: student.birth_date.clone(),
            target_grade: student.grade,
            reason: reason.to_owned(),
            evidence: vec![evidence.to_owned()],
            ..Default::default()
        })
        .await?
        .into_inner()
        .transfer
        .context("no transfer in the answer")
}

/// Registers `count` students at `school` (names from `name_of`, distinct resident ID numbers
/// of the county `county`) and has the county's approver approve them: active students.
pub(crate) async fn enroll(
    keys: &DemoKeys,
    node: &str,
    pki: &std::path::Path,
    school: &str,
    county: &str,
    count: usize,
    name_of: impl Fn(usize) -> String,
) -> anyhow::Result<Vec<pb::Student>> {
    let registrar_token = mint(keys, "enroll", Level::School, school, Role::Operator)?;
    let approver_token = mint(keys, "enroll", Level::County, county, Role::Approver)?;
    let mut registrar = identity_client(node, pki, &registrar_token).await?;
    let mut approver = identity_client(node, pki, &approver_token).await?;
    let mut students = Vec::with_capacity(count);
    for n in 0..count {
        let birth = chrono::NaiveDate::from_ymd_opt(2016, 1, 1).expect("a date")
            + chrono::Days::new((n / 400) as u64);
        // Odd sequence digits: male.
        let id = xueji_codes::ResidentId::from_body(&format!(
            "{county}{}{:03}",
            birth.format("%Y%m%d"),
            (n % 400) * 2 + 1
        ))
        .map_err(|e| anyhow::anyhow!("sample ID number: {e}"))?;
        let registered = registrar
            .register_student(pb::RegisterStudentRequest {
                class_name: String::new(),
                migrant_child: false,
                left_behind_child: false,
                continues_registry_number: String::new(),
                provincial_fields: Default::default(),
                idempotency_key: format!("enroll-{school}-{n}"),
                name: name_of(n),
                gender: pb::Gender::Male as i32,
                birth_date: birth.to_string(),
                ethnicity: "01".into(),
                document_type: pb::DocumentType::ResidentIdCard as i32,
                document_number: id.to_string(),
                school_code: school.to_owned(),
                grade: 3,
                entry_date: "2023-09-01".into(),
                entry_route: pb::EntryRoute::NearbyAdmission as i32,
                guardian: Some(pb::Guardian {
                    name: "家长".into(),
                    relation: "父亲".into(),
                    phone: "13900000000".into(),
                }),
            })
            .await?
            .into_inner()
            .student
            .context("registration without a student")?;
        let approved = approver
            .approve_registration(pb::ApproveRegistrationRequest {
                registry_number: registered.registry_number,
            })
            .await?
            .into_inner()
            .student
            .context("approval without a student")?;
        students.push(approved);
    }
    Ok(students)
}

fn print_steps(shown: &tpb::Transfer) {
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
}
