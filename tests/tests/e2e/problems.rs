//! Problem-record resolution end to end: twins confirmed one by one (a name duplicate may have
//! several genuine members), and an ID-number duplicate across two provinces where only the
//! claim holder could be confirmed, the other is deleted (kept for its authority, gone for its
//! school) and the flag clears in both provinces.

use std::time::Duration;

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::identity::v1 as ipb;
use xueji_tests::{
    federation::{Federation, registration_at},
    png_evidence, resident_id,
};

/// The student as an authority over `school` reads it.
async fn student(
    federation: &Federation,
    province: &str,
    school: &str,
    number: &str,
) -> ipb::Student {
    let county = federation.school_county(province, school).await;
    federation
        .identity(province, Level::County, &county, Role::Operator)
        .await
        .get_student(ipb::GetStudentRequest {
            number: number.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
}

fn has(student: &ipb::Student, kind: ipb::ProblemKind) -> bool {
    student.problems.contains(&(kind as i32))
}

/// Waits until the record's problems satisfy `wanted`.
async fn until(
    federation: &Federation,
    province: &str,
    school: &str,
    number: &str,
    what: &str,
    wanted: impl Fn(&ipb::Student) -> bool,
) -> ipb::Student {
    for _ in 0..150 {
        let read = student(federation, province, school, number).await;
        if wanted(&read) {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{number} in province {province}: never {what}");
}

async fn register(
    federation: &Federation,
    province: &str,
    school: &str,
    request: ipb::RegisterStudentRequest,
) -> String {
    federation
        .identity(province, Level::School, school, Role::Operator)
        .await
        .register_student(request)
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
        .registry_number
}

/// Asks for a resolution with fresh evidence and has both approvers approve it.
async fn resolve(
    federation: &Federation,
    province: &str,
    school: &str,
    number: &str,
    problem: ipb::ProblemKind,
    action: ipb::ResolutionAction,
) -> Result<ipb::StatusChange, tonic::Status> {
    let county = federation.school_county(province, school).await;
    let mut desk = federation
        .status_changes(province, Level::School, school, Role::Operator)
        .await;
    let evidence = png_evidence(&mut desk, number, "出生证明.png").await?;
    let change = desk
        .request_problem_resolution(ipb::RequestProblemResolutionRequest {
            idempotency_key: format!("resolve-{number}-{}", problem as i32),
            registry_number: number.into(),
            problem: problem as i32,
            action: action as i32,
            reason: "核实后处理".into(),
            evidence_ids: vec![evidence],
        })
        .await?
        .into_inner()
        .change
        .unwrap();
    assert_eq!(change.kind(), ipb::StatusChangeKind::ProblemResolution);
    for (level, jurisdiction, step) in [(Level::School, school, 0), (Level::County, &county[..], 1)]
    {
        federation
            .status_changes(province, level, jurisdiction, Role::Approver)
            .await
            .decide_status_change(ipb::DecideStatusChangeRequest {
                id: change.id.clone(),
                step,
                approve: true,
                remark: String::new(),
            })
            .await?;
    }
    Ok(change)
}

#[tokio::test]
async fn twins_are_confirmed_one_by_one() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let twin = |key: &str, passport: &str| {
        let mut request = registration_at(key, "王双", &school, &resident_id("35010220180505001"));
        request.document_type = ipb::DocumentType::Passport as i32;
        request.document_number = passport.into();
        request
    };
    let first = register(&federation, "35", &school, twin("twin-1", "E0000001")).await;
    let second = register(&federation, "35", &school, twin("twin-2", "E0000002")).await;
    for number in [&first, &second] {
        assert!(has(
            &student(&federation, "35", &school, number).await,
            ipb::ProblemKind::DuplicateName
        ));
    }

    // A problem the record does not have is refused at once.
    let refused = resolve(
        &federation,
        "35",
        &school,
        &first,
        ipb::ProblemKind::DuplicateIdNumber,
        ipb::ResolutionAction::Confirm,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    resolve(
        &federation,
        "35",
        &school,
        &first,
        ipb::ProblemKind::DuplicateName,
        ipb::ResolutionAction::Confirm,
    )
    .await
    .unwrap();
    assert!(!has(
        &student(&federation, "35", &school, &first).await,
        ipb::ProblemKind::DuplicateName
    ));
    assert!(
        has(
            &student(&federation, "35", &school, &second).await,
            ipb::ProblemKind::DuplicateName
        ),
        "the other twin is still to be confirmed"
    );
    resolve(
        &federation,
        "35",
        &school,
        &second,
        ipb::ProblemKind::DuplicateName,
        ipb::ResolutionAction::Confirm,
    )
    .await
    .unwrap();
    assert!(!has(
        &student(&federation, "35", &school, &second).await,
        ipb::ProblemKind::DuplicateName
    ));
}

#[tokio::test]
async fn deleting_the_duplicate_clears_the_flag_in_both_provinces() {
    let federation = Federation::start().await;
    let fujian_school = federation.a_primary_school("35").await;
    let anhui_school = federation.a_primary_school("34").await;
    let fujian_county = federation.school_county("35", &fujian_school).await;
    let anhui_county = federation.school_county("34", &anhui_school).await;
    let id = resident_id("35010220180307005");
    let fujian = register(
        &federation,
        "35",
        &fujian_school,
        registration_at("p-a", "陈问", &fujian_school, &id),
    )
    .await;
    let anhui = register(
        &federation,
        "34",
        &anhui_school,
        registration_at("p-b", "陈问", &anhui_school, &id),
    )
    .await;
    // Fujian's claim reaches the national index first (waited for, not assumed).
    let mut fujian_approver = federation
        .identity("35", Level::County, &fujian_county, Role::Approver)
        .await;
    xueji_tests::approve_until_active(&mut fujian_approver, &fujian).await;
    let refused = federation
        .identity("34", Level::County, &anhui_county, Role::Approver)
        .await
        .approve_registration(ipb::ApproveRegistrationRequest {
            registry_number: anhui.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let g = format!("G{id}");
    let flagged = |s: &ipb::Student| has(s, ipb::ProblemKind::DuplicateIdNumber);
    until(&federation, "34", &anhui_school, &anhui, "flagged", flagged).await;
    until(&federation, "35", &fujian_school, &g, "flagged", flagged).await;

    // Only the claim holder may be confirmed: Anhui's copy is refused.
    let refused = resolve(
        &federation,
        "34",
        &anhui_school,
        &anhui,
        ipb::ProblemKind::DuplicateIdNumber,
        ipb::ResolutionAction::Confirm,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("only one record"), "{refused:?}");

    // Anhui deletes its copy: kept for the county, gone for the school.
    resolve(
        &federation,
        "34",
        &anhui_school,
        &anhui,
        ipb::ProblemKind::DuplicateIdNumber,
        ipb::ResolutionAction::Delete,
    )
    .await
    .unwrap();
    let deleted = student(&federation, "34", &anhui_school, &anhui).await;
    assert_eq!(deleted.status(), ipb::EnrollmentStatus::Deleted);
    assert!(deleted.problems.is_empty(), "{deleted:?}");
    let hidden = federation
        .identity("34", Level::School, &anhui_school, Role::Operator)
        .await
        .get_student(ipb::GetStudentRequest {
            number: anhui.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    // Fujian's flags on the pair clear once the national index tells it.
    federation.delivered("34").await;
    until(&federation, "35", &fujian_school, &g, "cleared", |s| {
        s.problems.is_empty()
    })
    .await;
    let _ = anhui_county;
}

#[tokio::test]
async fn a_scan_turns_invalid_stored_id_numbers_into_problems_until_resolved() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let (good, _, _) = xueji_tests::transfers::active_student(&federation, "35", &school).await;
    let (bad, _, _) = xueji_tests::transfers::active_student(&federation, "35", &school).await;
    // Data as a bulk load from a province's previous system may leave it: a check digit that
    // does not match (registration would refuse it).
    let pool = &federation.province("35").pool;
    let stored: String = sqlx::query_scalar(
        "SELECT s.document_number FROM identity.students s
         JOIN identity.registry_numbers r ON r.student_id = s.id WHERE r.number = $1",
    )
    .bind(&bad)
    .fetch_one(pool)
    .await
    .unwrap();
    let last = stored.chars().last().unwrap();
    let wrong = if last == '0' { '1' } else { '0' };
    let corrupted = format!("{}{wrong}", &stored[..17]);
    sqlx::query(
        "UPDATE identity.students SET document_number = $2
         WHERE id = (SELECT student_id FROM identity.registry_numbers WHERE number = $1)",
    )
    .bind(&bad)
    .bind(&corrupted)
    .execute(pool)
    .await
    .unwrap();

    // Only a province (or ministry) operator scans.
    let refused = federation
        .identity("35", Level::County, &county, Role::Operator)
        .await
        .scan_id_numbers(ipb::ScanIdNumbersRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut province = federation
        .identity("35", Level::Province, "350000", Role::Operator)
        .await;
    let first = province
        .scan_id_numbers(ipb::ScanIdNumbersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(first.checked >= 2, "{first:?}");
    assert_eq!((first.found, first.open), (1, 1), "{first:?}");
    let again = province
        .scan_id_numbers(ipb::ScanIdNumbersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.found, again.open),
        (0, 1),
        "a second scan adds nothing"
    );

    // The record shows it, the county's problem list names it, the valid record is clean.
    assert!(has(
        &student(&federation, "35", &school, &bad).await,
        ipb::ProblemKind::InvalidIdNumber
    ));
    assert!(!has(
        &student(&federation, "35", &school, &good).await,
        ipb::ProblemKind::InvalidIdNumber
    ));
    let listed = federation
        .identity("35", Level::County, &county, Role::Operator)
        .await
        .list_problem_records(ipb::ListProblemRecordsRequest {
            jurisdiction: county.clone(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .problems;
    let invalid: Vec<_> = listed
        .iter()
        .filter(|p| p.kind() == ipb::ProblemKind::InvalidIdNumber)
        .collect();
    assert_eq!(invalid.len(), 1, "{listed:?}");
    assert_eq!(invalid[0].registry_number, bad);
    assert!(invalid[0].detail.contains(&corrupted), "{:?}", invalid[0]);

    // An invalid number is never confirmed; deleting the record resolves it.
    let confirmed = resolve(
        &federation,
        "35",
        &school,
        &bad,
        ipb::ProblemKind::InvalidIdNumber,
        ipb::ResolutionAction::Confirm,
    )
    .await
    .unwrap_err();
    assert_eq!(confirmed.code(), Code::FailedPrecondition, "{confirmed:?}");
    resolve(
        &federation,
        "35",
        &school,
        &bad,
        ipb::ProblemKind::InvalidIdNumber,
        ipb::ResolutionAction::Delete,
    )
    .await
    .unwrap();
    let after = province
        .scan_id_numbers(ipb::ScanIdNumbersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((after.found, after.open), (0, 0), "{after:?}");
}

/// DESIGN §4 (3): the name check is for students without an ID number. Two 王子涵 born the same
/// day with ID numbers of their own are two children: neither is a problem record, in the
/// province or across provinces, and either may transfer. A third 王子涵 of that day without an
/// ID number may be either of them: all three are flagged.
#[tokio::test]
async fn namesakes_with_their_own_id_numbers_are_two_children() {
    let federation = Federation::start().await;
    let (school, receiving) = xueji_tests::transfers::two_schools(&federation).await;
    let county = federation.school_county("35", &school).await;
    let mut approver = federation
        .identity("35", Level::County, &county, Role::Approver)
        .await;
    let namesake = |key: &str, id: &str| {
        let mut request = registration_at(key, "王子涵", &school, id);
        request.grade = 3;
        request
    };
    let mut numbers = Vec::new();
    for (n, body) in ["101", "103"].into_iter().enumerate() {
        let id = resident_id(&format!("{county}20170303{body}"));
        let number = register(
            &federation,
            "35",
            &school,
            namesake(&format!("wzh-{n}"), &id),
        )
        .await;
        let active = xueji_tests::approve_until_active(&mut approver, &number).await;
        assert_eq!(active.status(), ipb::EnrollmentStatus::Active, "{active:?}");
        assert!(active.problems.is_empty(), "{active:?}");
        numbers.push(active.registry_number);
    }
    // Anhui's 王子涵 of the same day, with an Anhui ID number: no notice either way.
    let anhui_school = federation.a_primary_school("34").await;
    let anhui_county = federation.school_county("34", &anhui_school).await;
    let anhui_id = resident_id(&format!("{anhui_county}20170303105"));
    let mut anhui_request = registration_at("wzh-anhui", "王子涵", &anhui_school, &anhui_id);
    anhui_request.grade = 3;
    let anhui_number = register(&federation, "34", &anhui_school, anhui_request).await;
    let mut anhui_approver = federation
        .identity("34", Level::County, &anhui_county, Role::Approver)
        .await;
    xueji_tests::approve_until_active(&mut anhui_approver, &anhui_number).await;
    federation.delivered("34").await;
    federation.delivered("35").await;
    for number in &numbers {
        let read = student(&federation, "35", &school, number).await;
        assert!(read.problems.is_empty(), "{number}: {read:?}");
    }
    let problems = federation
        .identity("35", Level::County, &county, Role::Operator)
        .await
        .list_problem_records(ipb::ListProblemRecordsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .problems;
    assert!(
        problems
            .iter()
            .all(|p| !numbers.contains(&p.registry_number)),
        "{problems:?}"
    );

    // Either may transfer: the start is not refused as a problem record (2003).
    let started = federation
        .transfers("35", Level::School, &receiving, Role::Operator)
        .await
        .start_transfer(xueji_tests::transfers::start_request(
            &receiving,
            &numbers[0],
            "王子涵",
            "2017-03-03",
        ))
        .await;
    assert!(started.is_ok(), "{started:?}");

    // A third 王子涵 of that day without an ID number could be either: all three are flagged.
    let mut without_id = namesake("wzh-none", &resident_id(&format!("{county}20170303107")));
    without_id.document_type = ipb::DocumentType::None as i32;
    without_id.document_number.clear();
    let third = federation
        .identity("35", Level::School, &school, Role::Operator)
        .await
        .register_student(without_id)
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert!(has(&third, ipb::ProblemKind::DuplicateName), "{third:?}");
    for number in &numbers {
        assert!(has(
            &student(&federation, "35", &school, number).await,
            ipb::ProblemKind::DuplicateName
        ));
    }
}
