//! The transfer saga inside one province, end to end: real nodes, real mTLS, real PostgreSQL.

use std::time::Duration;

use futures::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as ipb, transfers::v1 as tpb};
use xueji_tests::{
    federation::Federation,
    transfers::{
        active_student, approve_all, check_invariants, parties, party_client, start_request,
        student_seen_by, two_schools,
    },
};

async fn school_client(federation: &Federation, school: &str) -> xueji_client::TransfersClient {
    federation
        .transfers("35", Level::School, school, Role::Operator)
        .await
}

fn national_code(status: &tonic::Status) -> Option<String> {
    xueji_rpc::national_code(status)
}

/// Waits until `check` holds (the background sweep and effects run every second).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 15 s");
}

#[tokio::test]
async fn a_transfer_runs_through_its_parties_in_order_and_moves_the_record() {
    let federation = Federation::start().await;
    let (receiving, sending) = two_schools(&federation).await;
    let (number, name, birth) = active_student(&federation, "35", &sending).await;

    let mut receiving_school = school_client(&federation, &receiving).await;
    let started = receiving_school
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("started")
        .into_inner()
        .transfer
        .expect("transfer");
    assert_eq!(started.state(), tpb::TransferState::InProgress);
    // The receiving school sees what it typed and the progress, not where the student is.
    assert_eq!(started.sending_school_code, "");
    assert_eq!(started.registry_number, "");
    assert_eq!(started.steps.len(), 3);
    assert_eq!(started.steps[0].party, "receiving_authority");
    assert_eq!(
        started.steps[1].jurisdiction, "",
        "the sending school stays hidden"
    );
    assert_eq!(
        started.steps[0].timeout_action, "escalate",
        "Fujian's policy"
    );
    assert!(!started.steps[0].deadline.is_empty());

    let id = started.id.clone();
    let jurisdictions = parties(&federation, "35", &id).await;
    assert_eq!(jurisdictions[1], sending);

    // Out of turn: the sending school cannot decide before the receiving authority.
    let early = party_client(&federation, "35", &jurisdictions[1])
        .await
        .approve_transfer(tpb::ApproveTransferRequest {
            transfer_id: id.clone(),
            step: 1,
            remark: String::new(),
        })
        .await
        .expect_err("out of turn");
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    assert!(early.message().contains("turn"), "{early:?}");

    // A school operator is not the receiving authority: not its step.
    let not_party = receiving_school
        .approve_transfer(tpb::ApproveTransferRequest {
            transfer_id: id.clone(),
            step: 0,
            remark: String::new(),
        })
        .await
        .expect_err("not the party");
    assert_eq!(not_party.code(), Code::FailedPrecondition, "{not_party:?}");

    // The same approval, sent eight times at once, is applied once.
    let approvals = (0..8).map(|_| {
        let federation = &federation;
        let party = jurisdictions[0].clone();
        let id = id.clone();
        async move {
            party_client(federation, "35", &party)
                .await
                .approve_transfer(tpb::ApproveTransferRequest {
                    transfer_id: id,
                    step: 0,
                    remark: "同意".into(),
                })
                .await
        }
    });
    for answer in futures::future::join_all(approvals).await {
        answer.expect("a concurrent duplicate approval answers the transfer");
    }

    let done = approve_all(&federation, "35", &id).await;
    assert_eq!(done.state(), tpb::TransferState::Completed, "{done:?}");

    // After completion the receiving school sees the record: same number, at its school.
    let shown = receiving_school
        .get_transfer(tpb::GetTransferRequest {
            transfer_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(shown.registry_number, number);
    assert_eq!(shown.sending_school_code, sending);
    assert!(
        shown
            .steps
            .iter()
            .all(|s| s.state() == tpb::StepState::Approved)
    );
    let student = student_seen_by(&federation, "35", &receiving, &number).await;
    assert_eq!(student.school_code, receiving);
    assert_eq!(student.registry_number, number);
    assert_eq!(student.status(), ipb::EnrollmentStatus::Active);
    let archived: (String, bool) = sqlx::query_as(
        "SELECT e.status, e.is_current FROM identity.enrollments e
         JOIN identity.registry_numbers r ON r.student_id = e.student_id
         WHERE r.number = $1 AND e.school_code = $2",
    )
    .bind(&number)
    .bind(&sending)
    .fetch_one(&federation.province("35").pool)
    .await
    .unwrap();
    assert_eq!(archived, ("transferred_out".to_owned(), false));
    // The sending school still reads its archived copy.
    let copy = student_seen_by(&federation, "35", &sending, &number).await;
    assert_eq!(copy.school_code, sending);
    assert_eq!(copy.status(), ipb::EnrollmentStatus::TransferredOut);

    // The receiving school later corrects the name (what an approved correction writes): the
    // sending school's copy stays as it stood at the move; the receiving school reads the new.
    sqlx::query(
        "UPDATE identity.students SET name = '林更正后' WHERE id =
             (SELECT student_id FROM identity.registry_numbers WHERE number = $1)",
    )
    .bind(&number)
    .execute(&federation.province("35").pool)
    .await
    .unwrap();
    let copy_after = student_seen_by(&federation, "35", &sending, &number).await;
    assert_eq!(
        copy_after.name, copy.name,
        "the archive is frozen at the move"
    );
    assert_ne!(copy_after.name, "林更正后");
    let live = student_seen_by(&federation, "35", &receiving, &number).await;
    assert_eq!(live.name, "林更正后");

    // Each decision was audited once; the invariants hold.
    check_invariants(&federation, "35").await;
}

#[tokio::test]
async fn refusals_carry_their_national_codes_and_reveal_nothing() {
    let federation = Federation::start().await;
    let (receiving, sending) = two_schools(&federation).await;
    let (number, name, birth) = active_student(&federation, "35", &sending).await;
    let mut client = school_client(&federation, &receiving).await;

    // 2001: a name that does not match, and a number nobody holds, answer alike.
    let wrong_name = client
        .start_transfer(start_request(&receiving, &number, "别人", &birth))
        .await
        .expect_err("mismatch");
    assert_eq!(wrong_name.code(), Code::FailedPrecondition);
    assert_eq!(national_code(&wrong_name).as_deref(), Some("2001"));
    let nobody = client
        .start_transfer(start_request(
            &receiving,
            "L350102201501019999",
            &name,
            &birth,
        ))
        .await
        .expect_err("nobody");
    assert_eq!(national_code(&nobody).as_deref(), Some("2001"));
    assert_eq!(
        nobody.message(),
        wrong_name.message(),
        "a mismatch says nothing more"
    );

    // Bad input names its fields and writes nothing.
    let mut bad = start_request(&receiving, &number, &name, "2015-02-30");
    bad.target_grade = 0;
    let invalid = client.start_transfer(bad).await.expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let fields = xueji_tests::violated_fields(&invalid);
    assert_eq!(fields, ["birth_date", "target_grade"], "{invalid:?}");

    // NOT_ACTIVE: a registration still pending.
    let pending = federation
        .identity("35", Level::School, &sending, Role::Operator)
        .await
        .register_student(xueji_tests::federation::registration_at(
            "pending-one",
            "待审",
            &sending,
            &xueji_tests::resident_id("35010220150505001"),
        ))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    let not_active = client
        .start_transfer(start_request(
            &receiving,
            &pending.registry_number,
            "待审",
            "2015-05-05",
        ))
        .await
        .expect_err("not active");
    assert_eq!(not_active.code(), Code::FailedPrecondition);
    assert!(
        not_active.message().contains("not active"),
        "{not_active:?}"
    );

    // 2002: a second transfer while the first is pending.
    let first = client
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("first");
    let first = first.into_inner().transfer.unwrap();
    let second = client
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect_err("pending task");
    assert_eq!(national_code(&second).as_deref(), Some("2002"));

    // A retry of the first start answers the same transfer.
    let mut again = start_request(&receiving, &number, &name, &birth);
    again.idempotency_key = "retried-key".into();
    let once = client.start_transfer(again.clone()).await;
    let twice = client.start_transfer(again).await;
    // (The first of these is refused with 2002 as well; both answers agree.)
    assert_eq!(
        once.map(|r| r.into_inner().transfer.unwrap().id)
            .map_err(|s| national_code(&s)),
        twice
            .map(|r| r.into_inner().transfer.unwrap().id)
            .map_err(|s| national_code(&s)),
    );

    // 2003: an open problem record (two live records with one name, gender and birth date, one
    // of them without an ID number).
    let (twin, twin_name, twin_birth) = active_student(&federation, "35", &sending).await;
    let mut namesake = xueji_tests::federation::registration_at(
        "namesake",
        &twin_name,
        &sending,
        &xueji_tests::resident_id(&format!("350103{}123", twin_birth.replace('-', ""))),
    );
    namesake.grade = 3;
    // Without an ID number: it may be the same child (DESIGN §4 (3)); namesakes with ID
    // numbers of their own are two children and no problem.
    namesake.document_type = xueji_proto::identity::v1::DocumentType::None as i32;
    namesake.document_number.clear();
    federation
        .identity("35", Level::School, &sending, Role::Operator)
        .await
        .register_student(namesake)
        .await
        .expect("the namesake registers (and both are flagged)");
    let problem = client
        .start_transfer(start_request(&receiving, &twin, &twin_name, &twin_birth))
        .await
        .expect_err("problem record");
    assert_eq!(
        national_code(&problem).as_deref(),
        Some("2003"),
        "{problem:?}"
    );

    // Cancelling releases the student: a new transfer may start.
    let cancelled = client
        .cancel_transfer(tpb::CancelTransferRequest {
            transfer_id: first.id.clone(),
            reason: "家长撤回".into(),
        })
        .await
        .expect("cancelled")
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(cancelled.state(), tpb::TransferState::Cancelled);
    let unexplained = client
        .cancel_transfer(tpb::CancelTransferRequest {
            transfer_id: first.id.clone(),
            reason: String::new(),
        })
        .await;
    assert!(
        unexplained.is_ok(),
        "cancelling a cancelled transfer changes nothing"
    );
    let next = client
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("the student is free again")
        .into_inner()
        .transfer
        .unwrap();

    // A rejection needs a reason, then ends the transfer and releases the student.
    let authority = parties(&federation, "35", &next.id).await[0].clone();
    let mut authority_client = party_client(&federation, "35", &authority).await;
    let no_reason = authority_client
        .reject_transfer(tpb::RejectTransferRequest {
            transfer_id: next.id.clone(),
            step: 0,
            reason: " ".into(),
        })
        .await
        .expect_err("reason required");
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let rejected = authority_client
        .reject_transfer(tpb::RejectTransferRequest {
            transfer_id: next.id.clone(),
            step: 0,
            reason: "学位已满".into(),
        })
        .await
        .expect("rejected")
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(rejected.state(), tpb::TransferState::Rejected);
    assert_eq!(rejected.steps[1].state(), tpb::StepState::Skipped);
    client
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("released after the rejection");

    // A province rule: no transfers start between 7/15 and 8/14 (moved there on the clock).
    let (other, other_name, other_birth) = active_student(&federation, "35", &sending).await;
    let today = (federation.clock.now() + chrono::Duration::hours(8)).date_naive();
    let mut july = chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&today), 7, 20).unwrap();
    if july < today {
        july = chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&today) + 1, 7, 20).unwrap();
    }
    federation
        .clock
        .advance(chrono::Duration::days((july - today).num_days()));
    let window = school_client(&federation, &receiving)
        .await
        .start_transfer(start_request(&receiving, &other, &other_name, &other_birth))
        .await
        .expect_err("window");
    assert_eq!(window.code(), Code::FailedPrecondition);
    assert!(window.message().contains("transfer_window"), "{window:?}");
    eventually("the refused start's hold released", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM identity.pending_tasks p JOIN identity.registry_numbers r
             ON r.student_id = p.student_id WHERE r.number = $1",
        )
        .bind(&other)
        .fetch_one(&federation.province("35").pool)
        .await
        .unwrap()
            == 0
    })
    .await;
    check_invariants(&federation, "35").await;
}

#[tokio::test]
async fn deadlines_escalate_in_fujian_and_approve_in_anhui_on_the_clock() {
    let federation = Federation::start().await;
    let (receiving, sending) = two_schools(&federation).await;
    let (number, name, birth) = active_student(&federation, "35", &sending).await;
    let started = school_client(&federation, &receiving)
        .await
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let county = parties(&federation, "35", &started.id).await[0].clone();

    // Fujian: the county's turn passes to the city when its 10 working days pass.
    federation.clock.advance(chrono::Duration::days(20));
    eventually("the county's step escalated", async || {
        parties(&federation, "35", &started.id).await[0] != county
    })
    .await;
    let city = parties(&federation, "35", &started.id).await[0].clone();
    assert_eq!(city, format!("{}00", &county[..4]));
    // The city's fresh deadline reaches 2027, a year the bundled calendar does not hold: it is
    // counted on weekends only and flagged on the step and in the metrics.
    let shown = party_client(&federation, "35", &city)
        .await
        .get_transfer(tpb::GetTransferRequest {
            transfer_id: started.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let step = &shown.steps[0];
    assert_eq!(step.escalations, 1);
    assert!(step.deadline.as_str() > "2026-12-31", "{step:?}");
    assert!(step.deadline_estimated, "{step:?}");
    let fujian = federation.province("35");
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = federation.metrics(fujian).await;
        if metrics.contains("xueji_transfer_deadlines_estimated 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains("xueji_transfer_deadlines_estimated 1"),
        "{metrics}"
    );
    // Overdue counts are per authority; the city's inbox holds it now.
    let inbox = party_client(&federation, "35", &city)
        .await
        .list_transfers(tpb::ListTransfersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transfers;
    assert!(inbox.iter().any(|t| t.id == started.id));

    // Anhui: 20 working days, then the system approves, step after step, to completion.
    let anhui_schools = federation.primary_schools("34").await;
    let anhui_sending = anhui_schools
        .iter()
        .find(|s| *s != &anhui_schools[0])
        .cloned()
        .unwrap();
    let (a_number, a_name, a_birth) = active_student(&federation, "34", &anhui_sending).await;
    let a_started = federation
        .transfers("34", Level::School, &anhui_schools[0], Role::Operator)
        .await
        .start_transfer(start_request(
            &anhui_schools[0],
            &a_number,
            &a_name,
            &a_birth,
        ))
        .await;
    let Ok(a_started) = a_started else {
        // Both schools in one township would be refused; the fixture's schools are not.
        panic!("Anhui transfer refused: {a_started:?}");
    };
    let a_id = a_started.into_inner().transfer.unwrap().id;
    for _ in 0..3 {
        federation.clock.advance(chrono::Duration::days(40));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    eventually(
        "Anhui's transfer approved by policy and completed",
        async || {
            sqlx::query_scalar::<_, String>(
                "SELECT state FROM transfers.transfers WHERE id = $1::uuid",
            )
            .bind(&a_id)
            .fetch_one(&federation.province("34").pool)
            .await
            .unwrap()
                == "completed"
        },
    )
    .await;
    let timeouts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM transfers.steps WHERE transfer_id = $1::uuid AND on_timeout
         AND verdict = 'approve' AND decided_by = 'system'",
    )
    .bind(&a_id)
    .fetch_one(&federation.province("34").pool)
    .await
    .unwrap();
    assert_eq!(timeouts, 3);
    check_invariants(&federation, "34").await;
    check_invariants(&federation, "35").await;
}

#[tokio::test]
async fn five_hundred_deadlines_passed_while_the_province_is_down_are_each_acted_on_once() {
    let mut federation = Federation::start().await;
    let schools = federation.primary_schools("34").await;
    let receiving = schools[0].clone();
    // 500 transfers, started 16 at a time.
    let senders: Vec<String> = schools[1..].iter().cycle().take(500).cloned().collect();
    let started: Vec<String> = futures::stream::iter(senders.into_iter().enumerate())
        .map(|(i, sending)| {
            let federation = &federation;
            let receiving = receiving.clone();
            async move {
                let (number, name, birth) = active_student(federation, "34", &sending).await;
                federation
                    .transfers("34", Level::School, &receiving, Role::Operator)
                    .await
                    .start_transfer(start_request(&receiving, &number, &name, &birth))
                    .await
                    .unwrap_or_else(|e| panic!("transfer {i}: {e:?}"))
                    .into_inner()
                    .transfer
                    .unwrap()
                    .id
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    federation.kill_province("34").await;
    // Every first deadline passes while Anhui is down.
    federation.clock.advance(chrono::Duration::days(40));
    federation.restart_province("34").await;
    let pool = federation.province("34").pool.clone();
    eventually("every passed deadline acted on", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM transfers.steps WHERE position = 0 AND on_timeout",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            == started.len() as i64
    })
    .await;
    // Exactly once each: one deadline audit entry per transfer, one timeout decision each.
    let entries: Vec<(String, i64)> = sqlx::query_as(
        "SELECT object, count(*) FROM audit.entries WHERE action = 'transfers.deadline'
         GROUP BY object",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(entries.len(), started.len());
    assert!(entries.iter().all(|(_, n)| *n == 1), "{entries:?}");
    check_invariants(&federation, "34").await;
}

/// A township ban is a province's rule, not a national default: Fujian's documents state none,
/// so its schools of one township exchange pupils; once the deployment's policy file gives
/// Fujian the rule (as Shandong's documents give Shandong), the node refuses the move inside
/// one township after a restart, and still takes one from another township.
#[tokio::test]
async fn a_township_ban_is_a_provinces_own_rule() {
    let mut federation = Federation::start().await;
    let fujian = federation.province("35").pool.clone();
    // A primary and a special-education school of one township (both teach compulsory
    // grades: a grade-3 pupil moves between them), and a primary school of the same county in
    // another township (the township code comes with the published school record).
    let (primary, special, township): (String, String, String) = sqlx::query_as(
        "SELECT p.code, j.code, p.record->'profile'->>'township'
         FROM schools_provincial.schools p JOIN schools_provincial.schools j
           ON j.record->'profile'->>'township' = p.record->'profile'->>'township'
         WHERE p.code LIKE '2135%' AND j.code LIKE '5135%'
           AND p.record->>'status' = 'open' AND j.record->>'status' = 'open'
         ORDER BY p.code LIMIT 1",
    )
    .fetch_one(&fujian)
    .await
    .expect("a township with a primary and a special school");
    let other_township: String = sqlx::query_scalar(
        "SELECT code FROM schools_provincial.schools
         WHERE code LIKE '2135%' AND record->>'status' = 'open'
           AND record->'profile'->>'division' = left($1, 6)
           AND record->'profile'->>'township' <> $1
         ORDER BY code LIMIT 1",
    )
    .bind(&township)
    .fetch_one(&fujian)
    .await
    .expect("a primary school of the county in another township");

    // The bundled rules: no ban inside one township.
    let (number, name, birth) = active_student(&federation, "35", &primary).await;
    school_client(&federation, &special)
        .await
        .start_transfer(start_request(&special, &number, &name, &birth))
        .await
        .expect("no national ban inside one township");

    // The deployment's own rules give Fujian the ban.
    let policy_dir = federation.dir.path().join("fujian-policy");
    std::fs::create_dir_all(policy_dir.join("transfers")).unwrap();
    std::fs::write(
        policy_dir.join("transfers/rules.toml"),
        format!(
            "{}\n[province.35]\ncompulsory_within_township = true\n",
            include_str!("../../../services/transfers/policy/rules.toml")
        ),
    )
    .unwrap();
    federation.kill_province("35").await;
    federation
        .provinces
        .get_mut("35")
        .unwrap()
        .config
        .policy_dir = Some(policy_dir);
    federation.restart_province("35").await;

    let mut special_school = school_client(&federation, &special).await;
    let (number, name, birth) = active_student(&federation, "35", &primary).await;
    let refused = special_school
        .start_transfer(start_request(&special, &number, &name, &birth))
        .await
        .expect_err("same township");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("same_township"), "{refused:?}");
    let info = refused.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(
        info.metadata.get("rule").map(String::as_str),
        Some("same_township")
    );

    // The same county, another township: the rule does not apply.
    let (number, name, birth) = active_student(&federation, "35", &other_township).await;
    special_school
        .start_transfer(start_request(&special, &number, &name, &birth))
        .await
        .expect("another township of the same county");
    check_invariants(&federation, "35").await;
}

/// A transfer keeps the pupil's stage and moves into the pupil's grade or one beside it: a
/// grade-3 pupil is refused grade 6 and grade 1, and the refusal names its rule in the
/// ErrorInfo's `rule` metadata; grade 4 (a summer move before the cycle) is taken.
#[tokio::test]
async fn a_transfer_moves_into_the_pupils_grade_or_one_beside_it() {
    let federation = Federation::start().await;
    let (sending, receiving) = two_schools(&federation).await;
    let mut client = school_client(&federation, &receiving).await;
    for target in [6, 1] {
        // A pupil of its own each: a refused start releases its pupil in the background.
        let (number, name, birth) = active_student(&federation, "35", &sending).await;
        let mut request = start_request(&receiving, &number, &name, &birth);
        request.target_grade = target;
        let refused = client.start_transfer(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        let info = refused.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.reason, "PROVINCE_RULE");
        assert_eq!(
            info.metadata.get("rule").map(String::as_str),
            Some("target_grade"),
            "{refused:?}"
        );
    }
    let (number, name, birth) = active_student(&federation, "35", &sending).await;
    let mut request = start_request(&receiving, &number, &name, &birth);
    request.target_grade = 4;
    client
        .start_transfer(request)
        .await
        .expect("one grade up is a transfer");
    check_invariants(&federation, "35").await;
}

/// Two approvers at one desk: the second approval of a step already approved answers the
/// transfer unchanged (the first decision stays the one recorded); a rejection of it is
/// refused.
#[tokio::test]
async fn a_second_approver_of_an_approved_step_gets_the_transfer_unchanged() {
    let federation = Federation::start().await;
    let (sending, receiving) = two_schools(&federation).await;
    let (number, name, birth) = active_student(&federation, "35", &sending).await;
    let started = school_client(&federation, &receiving)
        .await
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let authority = parties(&federation, "35", &started.id).await[0].clone();
    let first = party_client(&federation, "35", &authority)
        .await
        .approve_transfer(tpb::ApproveTransferRequest {
            transfer_id: started.id.clone(),
            step: 0,
            remark: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let mut colleague = xueji_client::transfers_client(
        &federation.province("35").address(),
        &federation.pki("35"),
        &federation.token_of("colleague", Level::County, &authority, Role::Approver),
    )
    .await
    .unwrap();
    let second = colleague
        .approve_transfer(tpb::ApproveTransferRequest {
            transfer_id: started.id.clone(),
            step: 0,
            remark: String::new(),
        })
        .await
        .expect("the same decision again changes nothing")
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(second.steps, first.steps);
    assert!(second.steps[0].decided_by.contains("tester"), "{second:?}");
    let rejected = colleague
        .reject_transfer(tpb::RejectTransferRequest {
            transfer_id: started.id.clone(),
            step: 0,
            reason: "材料不全".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(rejected.code(), Code::FailedPrecondition);
}
