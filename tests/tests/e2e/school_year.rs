//! The school year turning over, end to end on a running federation: the dry run, the annual
//! cycle (graduation and promotion) run on demand and run again, and a graduate continuing at
//! the junior school with the same registry number (升学).

use std::time::Duration;

use chrono::Datelike;
use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_identity::domain::school_year::SchoolYearPolicy;
use xueji_proto::identity::v1 as ipb;
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id, violated_fields,
};

/// The last summer whose graduation day has come (the cycle an operator may run now).
fn last_summer(federation: &Federation) -> u32 {
    let today = xueji_calendar::china_today(federation.clock.now());
    SchoolYearPolicy::bundled().dates("35").last_summer(today) as u32
}

/// The junior school of the county a primary school lies in.
async fn junior_school_of(federation: &Federation, county: &str) -> String {
    sqlx::query_scalar(
        "SELECT code FROM schools_provincial.schools WHERE code LIKE '3135%' \
         AND record->'profile'->>'registry_authority' = $1 AND record->>'status' = 'open' \
         ORDER BY code LIMIT 1",
    )
    .bind(county)
    .fetch_one(&federation.province("35").pool)
    .await
    .expect("a junior school in the county")
}

/// Registers and approves a student at `school` in `grade`, entered the September before the
/// summer; answers the registry number.
/// Where the students of the test are: the primary school, its county, the summer.
struct Place {
    school: String,
    county: String,
    summer: u32,
}

async fn enrolled(
    federation: &Federation,
    place: &Place,
    (key, name, id): (&str, &str, &str),
    grade: u32,
) -> String {
    let Place {
        school,
        county,
        summer,
    } = place;
    let mut request = registration_at(key, name, school, id);
    request.grade = grade;
    request.entry_date = format!("{}-09-01", summer - 1);
    let student = federation
        .identity("35", Level::School, school, Role::Operator)
        .await
        .register_student(request)
        .await
        .expect("registered")
        .into_inner()
        .student
        .expect("student");
    let mut approver = federation
        .identity("35", Level::County, county, Role::Approver)
        .await;
    let approved = xueji_tests::approve_until_active(&mut approver, &student.registry_number).await;
    assert_eq!(approved.status(), ipb::EnrollmentStatus::Active);
    approved.registry_number
}

async fn student(
    federation: &Federation,
    jurisdiction: (Level, &str),
    number: &str,
) -> ipb::Student {
    federation
        .identity("35", jurisdiction.0, jurisdiction.1, Role::Operator)
        .await
        .get_student(ipb::GetStudentRequest {
            number: number.into(),
        })
        .await
        .expect("student")
        .into_inner()
        .student
        .expect("student")
}

#[tokio::test]
async fn a_school_year_turns_over_and_a_graduate_continues_at_the_junior_school() {
    let federation = Federation::start().await;
    let summer = last_summer(&federation);
    let primary = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &primary).await;
    let junior = junior_school_of(&federation, &county).await;
    let born = 2013 + (summer as i32 - 2026);
    let graduate_id = resident_id(&format!("{county}{born}0611{:03}", 3));
    let place = Place {
        school: primary.clone(),
        county: county.clone(),
        summer,
    };
    let graduate = enrolled(&federation, &place, ("grad", "毕业生", &graduate_id), 6).await;
    let pupil_id = resident_id(&format!("{county}{}0611{:03}", born + 3, 5));
    let pupil = enrolled(&federation, &place, ("pupil", "在校生", &pupil_id), 3).await;
    // A fifth-grader reaches the graduating grade this summer: not a graduate of it.
    let fifth_id = resident_id(&format!("{county}{}0611{:03}", born + 1, 9));
    enrolled(&federation, &place, ("fifth", "五年级", &fifth_id), 5).await;

    // Who may run it: a province operator, not a county.
    let mut operator = federation
        .school_year("35", Level::Province, "350000", Role::Operator)
        .await;
    let denied = federation
        .school_year("35", Level::County, &county, Role::Operator)
        .await
        .run_cycle(ipb::RunCycleRequest { year: summer })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // Next summer's cycle cannot run before its graduation day.
    let early = operator
        .run_cycle(ipb::RunCycleRequest { year: summer + 1 })
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    let bad_year = operator
        .preview_cycle(ipb::PreviewCycleRequest { year: 1999 })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_year), ["year"]);

    // The dry run names what the cycle would do, and changes nothing.
    let preview = operator
        .preview_cycle(ipb::PreviewCycleRequest { year: summer })
        .await
        .unwrap()
        .into_inner();
    assert!(
        preview.will_graduate >= 1 && preview.will_promote >= 1,
        "{preview:?}"
    );
    assert_eq!(preview.already_promoted, 0);
    assert_eq!(
        student(&federation, (Level::School, &primary), &pupil)
            .await
            .grade,
        3
    );

    // The run, followed to its end.
    let started = operator
        .run_cycle(ipb::RunCycleRequest { year: summer })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.steps, ["graduation", "promotion"]);
    let done = wait_done(&mut operator, summer).await;
    let promoted = done.steps.iter().find(|s| s.step == "promotion").unwrap();
    assert!(
        promoted.changed >= 1 && promoted.processed == promoted.total,
        "{done:?}"
    );

    let graduated = student(&federation, (Level::School, &primary), &graduate).await;
    assert_eq!(graduated.status(), ipb::EnrollmentStatus::Graduated);
    assert_eq!(graduated.grade, 6);
    // 小升初: once the intake deadline after the summer has passed, the county's list names
    // the graduate who holds no junior-school place; the pupils still in school are not on it.
    let deadline_passed = intake_deadline_passed(&federation, summer);
    let unplaced = watch_list(
        &federation,
        &county,
        ipb::WatchList::PrimaryGraduatesUnplaced,
    )
    .await;
    assert_eq!(
        listed(&unplaced),
        if deadline_passed {
            vec![graduate.clone()]
        } else {
            vec![]
        },
        "{unplaced:?}"
    );
    if deadline_passed {
        assert!(
            unplaced.entries[0].detail.contains("小升初未升学"),
            "{unplaced:?}"
        );
    }
    assert_eq!(
        student(&federation, (Level::School, &primary), &pupil)
            .await
            .grade,
        4
    );

    // Run again: nothing moves.
    operator
        .run_cycle(ipb::RunCycleRequest { year: summer })
        .await
        .unwrap();
    let again = wait_done(&mut operator, summer).await;
    assert_eq!(again.steps, done.steps);
    // The dry run of the finished summer predicts what the re-run did: nothing.
    let predicted = operator
        .preview_cycle(ipb::PreviewCycleRequest { year: summer })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (predicted.will_graduate, predicted.will_promote),
        (0, 0),
        "{predicted:?}"
    );
    assert!(predicted.already_promoted >= 1 && predicted.already_graduated >= 1);
    assert_eq!(
        student(&federation, (Level::School, &primary), &pupil)
            .await
            .grade,
        4
    );

    // Progression: the junior school registers the graduate by ID number.
    let mut junior_school = federation
        .identity("35", Level::School, &junior, Role::Operator)
        .await;
    let mut request = registration_at("continue", "毕业生", &junior, &graduate_id);
    request.entry_date = format!("{summer}-09-01");
    request.grade = 8;
    let wrong_grade = junior_school
        .register_student(request.clone())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&wrong_grade), ["grade"], "{wrong_grade:?}");
    request.grade = 7;
    // A progression the county refuses gives the finished record back its place.
    let mut refused_request = request.clone();
    refused_request.idempotency_key = "continue-refused".into();
    junior_school
        .register_student(refused_request)
        .await
        .expect("progression");
    federation
        .identity("35", Level::County, &county, Role::Approver)
        .await
        .reject_registration(ipb::RejectRegistrationRequest {
            registry_number: graduate.clone(),
            reason: "材料不全".into(),
        })
        .await
        .expect("rejected");
    let back = student(&federation, (Level::School, &primary), &graduate).await;
    assert_eq!(back.status(), ipb::EnrollmentStatus::Graduated);
    assert_eq!(back.school_code, primary);
    let continued = junior_school
        .register_student(request.clone())
        .await
        .expect("progression")
        .into_inner();
    assert!(continued.continued);
    let record = continued.student.unwrap();
    assert_eq!(
        record.registry_number, graduate,
        "the registry number is kept"
    );
    assert_eq!(record.status(), ipb::EnrollmentStatus::Pending);
    assert_eq!(record.school_code, junior);
    // A retry answers the same and opens nothing more.
    let retry = junior_school
        .register_student(request)
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed && retry.continued);

    let mut approver = federation
        .identity("35", Level::County, &county, Role::Approver)
        .await;
    let approved = xueji_tests::approve_until_active(&mut approver, &graduate).await;
    assert_eq!(approved.status(), ipb::EnrollmentStatus::Active);
    assert_eq!(approved.registry_number, graduate);
    assert_eq!(approved.grade, 7);
    // The primary school still reads its graduate's record, as it ended there.
    let archived = student(&federation, (Level::School, &primary), &graduate).await;
    assert_eq!(archived.status(), ipb::EnrollmentStatus::Graduated);
    assert_eq!(archived.school_code, primary);
    // Placed at the junior school, the graduate leaves the 小升初 list.
    let unplaced = watch_list(
        &federation,
        &county,
        ipb::WatchList::PrimaryGraduatesUnplaced,
    )
    .await;
    assert_eq!(listed(&unplaced), Vec::<String>::new(), "{unplaced:?}");

    // A student still in school does not continue elsewhere: the ID number is taken.
    let mut taken = registration_at("taken", "在校生", &junior, &pupil_id);
    taken.grade = 7;
    taken.entry_date = format!("{summer}-09-01");
    let refused = junior_school.register_student(taken).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
}

/// Whether the intake deadline (9/30) after `summer` has passed on the federation's clock.
fn intake_deadline_passed(federation: &Federation, summer: u32) -> bool {
    let today = xueji_calendar::china_today(federation.clock.now());
    SchoolYearPolicy::bundled()
        .dates("35")
        .intake_by
        .in_year(summer as i32)
        < today
}

/// The whole of one watch list of the county.
pub(crate) async fn watch_list(
    federation: &Federation,
    county: &str,
    list: ipb::WatchList,
) -> ipb::ListWatchListResponse {
    federation
        .school_year("35", Level::County, county, Role::Operator)
        .await
        .list_watch_list(ipb::ListWatchListRequest {
            list: list as i32,
            scope: String::new(),
            page_size: 500,
            page_token: String::new(),
        })
        .await
        .expect("the watch list")
        .into_inner()
}

/// The registry numbers a list names.
pub(crate) fn listed(list: &ipb::ListWatchListResponse) -> Vec<String> {
    list.entries
        .iter()
        .map(|e| e.student.as_ref().unwrap().registry_number.clone())
        .collect()
}

pub(crate) async fn wait_done(
    client: &mut xueji_client::SchoolYearClient,
    year: u32,
) -> ipb::GetCycleStatusResponse {
    for _ in 0..300 {
        let status = client
            .get_cycle_status(ipb::GetCycleStatusRequest { year })
            .await
            .unwrap()
            .into_inner();
        if !status.running
            && status
                .steps
                .iter()
                .all(|s| s.state == ipb::CycleStepState::Done as i32)
        {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cycle did not finish within 30 s");
}

/// The next 5 July, on the federation's clock: inside the freeze, before the transfer window
/// closes.
fn next_fifth_of_july(federation: &Federation) -> chrono::Duration {
    let now = federation.clock.now();
    let today = xueji_calendar::china_today(now);
    let mut day = chrono::NaiveDate::from_ymd_opt(today.year(), 7, 5).unwrap();
    if day <= today {
        day = chrono::NaiveDate::from_ymd_opt(today.year() + 1, 7, 5).unwrap();
    }
    xueji_calendar::end_of_day(day) - chrono::Duration::hours(12) - now
}

/// A primary school of Fujian with an active pupil of grade 6 (graduating next summer) and one
/// of grade 3, born on `month_day` of their years: the school, then (number, ID number) of each.
async fn sixth_and_third_graders(
    federation: &Federation,
    month_day: &str,
) -> (String, [(String, String); 2]) {
    let primary = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &primary).await;
    let summer = last_summer(federation) + 1;
    let place = Place {
        school: primary.clone(),
        county: county.clone(),
        summer,
    };
    let born = 2013 + (summer as i32 - 2026);
    let sixth_id = resident_id(&format!("{county}{born}{month_day}{:03}", 7));
    let sixth_key = format!("sixth-{month_day}");
    let sixth = enrolled(federation, &place, (&sixth_key, "六年级", &sixth_id), 6).await;
    let third_id = resident_id(&format!("{county}{}{month_day}{:03}", born + 3, 9));
    let third_key = format!("third-{month_day}");
    let third = enrolled(federation, &place, (&third_key, "三年级", &third_id), 3).await;
    (primary, [(sixth, sixth_id), (third, third_id)])
}

#[tokio::test]
async fn graduating_grades_take_no_new_task_from_the_freeze() {
    let federation = Federation::start().await;
    let (primary, [(sixth, sixth_id), (third, third_id)]) =
        sixth_and_third_graders(&federation, "0611").await;

    federation.clock.advance(next_fifth_of_july(&federation));
    let receiving = federation
        .primary_schools("35")
        .await
        .into_iter()
        .find(|s| *s != primary)
        .unwrap();
    let mut transfers = federation
        .transfers("35", Level::School, &receiving, Role::Operator)
        .await;
    let start = |number: &str, name: &str, id: &str| {
        let mut request = xueji_tests::transfers::start_request(
            &receiving,
            number,
            name,
            &id.parse::<xueji_codes::ResidentId>()
                .unwrap()
                .birth_date()
                .to_string(),
        );
        request.target_grade = 6;
        request
    };
    let frozen = transfers
        .start_transfer(start(&sixth, "六年级", &sixth_id))
        .await
        .unwrap_err();
    assert_eq!(frozen.code(), Code::FailedPrecondition, "{frozen:?}");
    assert!(frozen.message().contains("graduating grade"), "{frozen:?}");
    let mut open = start(&third, "三年级", &third_id);
    open.target_grade = 3;
    transfers
        .start_transfer(open)
        .await
        .expect("a grade-3 pupil is not frozen");

    // A status change of the graduating pupil is refused alike, and nothing is written.
    let refused = federation
        .status_changes("35", Level::School, &primary, Role::Operator)
        .await
        .request_status_change(ipb::RequestStatusChangeRequest {
            idempotency_key: "frozen".into(),
            registry_number: sixth.clone(),
            kind: ipb::StatusChangeKind::Missing as i32,
            reason: "离家".into(),
            effective_date: xueji_calendar::china_today(federation.clock.now()).to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.pending_tasks p JOIN identity.registry_numbers r \
         ON r.student_id = p.student_id WHERE r.number = $1",
    )
    .bind(&sixth)
    .fetch_one(&federation.province("35").pool)
    .await
    .unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn the_clearing_day_ends_graduating_grades_tasks_and_tells_each_party() {
    let federation = Federation::start().await;
    let (primary, [(sixth, _), (third, _)]) = sixth_and_third_graders(&federation, "0612").await;

    // Before the freeze both pupils' departures are asked; neither is decided.
    let desk = federation
        .status_changes("35", Level::School, &primary, Role::Operator)
        .await;
    let ask = |key: &'static str, number: String| {
        let today = xueji_calendar::china_today(federation.clock.now()).to_string();
        let request = ipb::RequestStatusChangeRequest {
            idempotency_key: key.into(),
            registry_number: number,
            kind: ipb::StatusChangeKind::OtherDeparture as i32,
            reason: "随父母外出".into(),
            effective_date: today,
            ..Default::default()
        };
        let mut desk = desk.clone();
        async move {
            desk.request_status_change(request)
                .await
                .expect("asked")
                .into_inner()
                .change
                .expect("change")
                .id
        }
    };
    let graduating_task = ask("c-6", sixth.clone()).await;
    let other_task = ask("c-3", third.clone()).await;

    // The clearing day: the sweeper ends the graduating pupil's task, the other stays open.
    let now = federation.clock.now();
    let today = xueji_calendar::china_today(now);
    let mut clearing = chrono::NaiveDate::from_ymd_opt(today.year(), 7, 16).unwrap();
    if clearing <= today {
        clearing = chrono::NaiveDate::from_ymd_opt(today.year() + 1, 7, 16).unwrap();
    }
    federation
        .clock
        .advance(xueji_calendar::end_of_day(clearing) - chrono::Duration::hours(12) - now);
    // A token minted on the moved clock.
    let reader = federation
        .status_changes("35", Level::School, &primary, Role::Operator)
        .await;
    let state_of = |id: String| {
        let mut desk = reader.clone();
        async move {
            desk.get_status_change(ipb::GetStatusChangeRequest { id })
                .await
                .expect("change")
                .into_inner()
                .change
                .expect("change")
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let cleared = loop {
        let change = state_of(graduating_task.clone()).await;
        if change.state() == ipb::StatusChangeState::Cancelled {
            break change;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the graduating pupil's task was not cleared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Each party reads why it ended on the change itself.
    assert!(
        cleared.ended_reason.contains("annual cycle")
            && cleared.ended_reason.contains("graduating grade"),
        "{cleared:?}"
    );
    // The grade-3 pupil's task is not the clearing's (its own deadline passed meanwhile, and
    // the timeout acted on it as the province's policy says).
    let other = state_of(other_task).await;
    assert_ne!(
        other.state(),
        ipb::StatusChangeState::Cancelled,
        "{other:?}"
    );
    assert!(!other.ended_reason.contains("annual cycle"), "{other:?}");
    let pool = &federation.province("35").pool;
    let locked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.pending_tasks p JOIN identity.registry_numbers r \
         ON r.student_id = p.student_id WHERE r.number = $1",
    )
    .bind(&sixth)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        locked, 0,
        "the lock is released: graduation is no longer blocked"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit.entries WHERE action = 'identity.clear_status_change'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

/// An Anhui pupil graduated by Anhui's cycle and delivered to the national index: the
/// federation, the summer, the ID number, the registry number and an Anhui county approver.
async fn anhui_graduate() -> (
    Federation,
    u32,
    String,
    String,
    xueji_client::IdentityClient,
) {
    let federation = Federation::start().await;
    let today = xueji_calendar::china_today(federation.clock.now());
    let summer = SchoolYearPolicy::bundled().dates("34").last_summer(today) as u32;
    let anhui_primary = federation.a_primary_school("34").await;
    let anhui_county = federation.school_county("34", &anhui_primary).await;
    let born = 2013 + (summer as i32 - 2026);
    let id = resident_id(&format!("{anhui_county}{born}0611{:03}", 7));
    let mut request = registration_at("anhui-grad", "升学生", &anhui_primary, &id);
    request.grade = 6;
    request.entry_date = format!("{}-09-01", summer - 1);
    let registered = federation
        .identity("34", Level::School, &anhui_primary, Role::Operator)
        .await
        .register_student(request)
        .await
        .expect("registered")
        .into_inner()
        .student
        .unwrap();
    let mut anhui_approver = federation
        .identity("34", Level::County, &anhui_county, Role::Approver)
        .await;
    let graduate =
        xueji_tests::approve_until_active(&mut anhui_approver, &registered.registry_number)
            .await
            .registry_number;
    let mut anhui_operator = federation
        .school_year("34", Level::Province, "340000", Role::Operator)
        .await;
    anhui_operator
        .run_cycle(ipb::RunCycleRequest { year: summer })
        .await
        .unwrap();
    wait_done(&mut anhui_operator, summer).await;
    let finished = anhui_approver
        .get_student(ipb::GetStudentRequest {
            number: graduate.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!(finished.status(), ipb::EnrollmentStatus::Graduated);
    federation.delivered("34").await;

    (federation, summer, id, graduate, anhui_approver)
}

/// 升学 across provinces (籍随人走、终身不变): an Anhui primary graduate registered by resident ID
/// at a Fujian junior school continues with the number Anhui gave; the national entry moves to
/// Fujian, Anhui is told and keeps its finished record as history, and neither record becomes a
/// problem record.
#[tokio::test]
async fn an_anhui_graduate_continues_at_a_fujian_junior_school_with_the_same_number() {
    let (federation, summer, id, graduate, mut anhui_approver) = anhui_graduate().await;
    // A Fujian junior school registers the child by ID: a new registration, approved.
    let fujian_primary = federation.a_primary_school("35").await;
    let fujian_county = federation.school_county("35", &fujian_primary).await;
    let junior = junior_school_of(&federation, &fujian_county).await;
    let mut request = registration_at("fujian-junior", "升学生", &junior, &id);
    request.grade = 7;
    request.entry_date = format!("{summer}-09-01");
    let pending = federation
        .identity("35", Level::School, &junior, Role::Operator)
        .await
        .register_student(request)
        .await
        .expect("registered in Fujian")
        .into_inner()
        .student
        .unwrap();
    let mut fujian_approver = federation
        .identity("35", Level::County, &fujian_county, Role::Approver)
        .await;
    let continued =
        xueji_tests::approve_until_active(&mut fujian_approver, &pending.registry_number).await;
    assert_eq!(
        continued.status(),
        ipb::EnrollmentStatus::Active,
        "{continued:?}"
    );
    assert_eq!(
        continued.registry_number, graduate,
        "the number follows the child"
    );
    assert!(continued.aliases.contains(&pending.registry_number));
    assert!(continued.problems.is_empty(), "{continued:?}");

    // The national entry is Fujian's; Anhui is told and keeps its record, no problem on it.
    let province: String =
        sqlx::query_scalar("SELECT province FROM national.students WHERE registry_number = $1")
            .bind(&graduate)
            .fetch_one(&federation.national.pool)
            .await
            .unwrap();
    assert_eq!(province, "35");
    let mut told = None;
    for _ in 0..300 {
        told = sqlx::query_scalar::<_, String>(
            "SELECT c.province FROM identity.continued_elsewhere c
             JOIN identity.registry_numbers r ON r.student_id = c.student_id
             WHERE r.number = $1",
        )
        .bind(&graduate)
        .fetch_optional(&federation.province("34").pool)
        .await
        .unwrap();
        if told.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        told.as_deref(),
        Some("35"),
        "Anhui learns where the child went"
    );
    let kept = anhui_approver
        .get_student(ipb::GetStudentRequest {
            number: graduate.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!(kept.status(), ipb::EnrollmentStatus::Graduated);
    assert!(kept.problems.is_empty(), "{kept:?}");
}

/// A province is trusted for its own students only: a Fujian registration that carries the
/// Anhui graduate's ID number under another name does not take the finished record over. The
/// claim is answered as a duplicate and the national entry stays Anhui's.
#[tokio::test]
async fn a_finished_record_moves_only_for_the_child_it_describes() {
    let (federation, summer, id, graduate, _) = anhui_graduate().await;
    let fujian_primary = federation.a_primary_school("35").await;
    let fujian_county = federation.school_county("35", &fujian_primary).await;
    let junior = junior_school_of(&federation, &fujian_county).await;
    let mut request = registration_at("impostor", "冒名生", &junior, &id);
    request.grade = 7;
    request.entry_date = format!("{summer}-09-01");
    let pending = federation
        .identity("35", Level::School, &junior, Role::Operator)
        .await
        .register_student(request)
        .await
        .expect("registered in Fujian")
        .into_inner()
        .student
        .unwrap();
    let refused = federation
        .identity("35", Level::County, &fujian_county, Role::Approver)
        .await
        .approve_registration(ipb::ApproveRegistrationRequest {
            registry_number: pending.registry_number.clone(),
        })
        .await;
    match refused {
        Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        // The national check answered after the approval's patience: wait for its verdict.
        Ok(answer) => {
            let student = answer.into_inner().student.unwrap();
            assert_ne!(
                student.status(),
                ipb::EnrollmentStatus::Active,
                "{student:?}"
            );
        }
    }
    federation.delivered("35").await;
    let province: String =
        sqlx::query_scalar("SELECT province FROM national.students WHERE registry_number = $1")
            .bind(&graduate)
            .fetch_one(&federation.national.pool)
            .await
            .unwrap();
    assert_eq!(province, "34", "the finished record stays Anhui's");
}
