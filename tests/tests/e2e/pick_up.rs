//! Picking up a child who left (劝返复学, 接收): a school takes a pupil whose record is 辍学 or
//! 休学 at another school with a transfer from that state, the statistics count a return, the
//! county's dropout list shows the child brought back, and the history names the transfer and
//! its deciders.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as ipb, stats::v1 as stpb, transfers::v1 as tpb};
use xueji_tests::{
    federation::{Federation, registration_at},
    transfers::{
        active_student, approve_all, approved_status_change, eventually, start_request,
        student_seen_by, two_schools,
    },
};

/// Records `kind` for the pupil at `school`, approved by the school's approver and its
/// county; answers once the record shows `expected`.
async fn leave_school(
    federation: &Federation,
    school: &str,
    number: &str,
    kind: ipb::StatusChangeKind,
    expected: ipb::EnrollmentStatus,
) {
    let today = xueji_calendar::china_today(federation.clock.now());
    approved_status_change(federation, school, number, kind, today).await;
    assert_eq!(
        student_seen_by(federation, "35", school, number)
            .await
            .status(),
        expected
    );
}

async fn dropouts(federation: &Federation, county: &str) -> stpb::ListDropoutsResponse {
    federation
        .stats("35", Level::County, county, Role::Operator)
        .await
        .list_dropouts(stpb::ListDropoutsRequest {
            unit: String::new(),
            as_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// `receiving` takes the pupil (number, name, birth date) with a transfer every party
/// approves, and the record moves there, in school; answers the transfer.
async fn pick_up(
    federation: &Federation,
    receiving: &str,
    (number, name, birth): (&str, &str, &str),
) -> tpb::Transfer {
    let started = federation
        .transfers("35", Level::School, receiving, Role::Operator)
        .await
        .start_transfer(start_request(receiving, number, name, birth))
        .await
        .unwrap_or_else(|status| panic!("{number} is taken with a transfer: {status:?}"))
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(started.state(), tpb::TransferState::InProgress);
    approve_all(federation, "35", &started.id).await;
    eventually("the record moves", async || {
        let now = student_seen_by(federation, "35", receiving, number).await;
        now.school_code == receiving && now.status() == ipb::EnrollmentStatus::Active
    })
    .await;
    started
}

/// The kind of the last change the statistics' feed holds for the pupil.
async fn last_feed_kind(federation: &Federation, number: &str) -> String {
    sqlx::query_scalar(
        "SELECT f.kind FROM identity.change_feed f JOIN identity.students s ON s.id = f.student_id
         WHERE s.registry_number = $1 ORDER BY f.id DESC LIMIT 1",
    )
    .bind(number)
    .fetch_one(&federation.province("35").pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_dropout_is_picked_up_by_another_school_and_counted_back() {
    let federation = Federation::start().await;
    let (receiving, sending) = two_schools(&federation).await;
    let sending_county = federation.school_county("35", &sending).await;
    let (number, name, birth) = active_student(&federation, "35", &sending).await;
    leave_school(
        &federation,
        &sending,
        &number,
        ipb::StatusChangeKind::Dropout,
        ipb::EnrollmentStatus::DroppedOut,
    )
    .await;

    // Three weeks out: past Fujian's ten working days, the county's list holds the child.
    federation.clock.advance(chrono::Duration::days(21));
    eventually("the dropout reaches the county's list", async || {
        dropouts(&federation, &sending_county)
            .await
            .students
            .iter()
            .any(|s| s.registry_number == number)
    })
    .await;

    // A new registration of the child is refused (one record per child), and says how.
    let student = student_seen_by(&federation, "35", &sending, &number).await;
    let mut again = registration_at(
        "pick-up-register",
        &name,
        &receiving,
        &student.document_number,
    );
    again.grade = 3;
    let refused = federation
        .identity("35", Level::School, &receiving, Role::Operator)
        .await
        .register_student(again)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().contains("StartTransfer"), "{refused:?}");

    // The receiving school takes the child with a transfer from the dropout record.
    let started = federation
        .transfers("35", Level::School, &receiving, Role::Operator)
        .await
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("a dropout is taken with a transfer")
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(started.state(), tpb::TransferState::InProgress);
    // One clock: what the database stamps follows the node's clock, three weeks on.
    let today = xueji_calendar::china_today(federation.clock.now()).to_string();
    let china_day = |stamp: &str| {
        chrono::DateTime::parse_from_rfc3339(stamp)
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
            .date_naive()
            .to_string()
    };
    assert_eq!(china_day(&started.started_at), today, "{started:?}");
    let done = approve_all(&federation, "35", &started.id).await;
    eventually("the record moves", async || {
        let now = student_seen_by(&federation, "35", &receiving, &number).await;
        now.school_code == receiving && now.status() == ipb::EnrollmentStatus::Active
    })
    .await;
    assert_eq!(done.id, started.id);

    // The county's list shows the child brought back, with the day and the school.
    eventually("the return reaches the county's list", async || {
        let lists = dropouts(&federation, &sending_county).await;
        let still_out = lists.students.iter().any(|s| s.registry_number == number);
        let back = lists.returned.iter().find(|s| s.registry_number == number);
        !still_out
            && back.is_some_and(|s| {
                s.returned_on == today
                    && s.returned_to_school == receiving
                    && s.school_code == sending
                    && s.kind == "dropout"
                    && s.working_days_unplaced >= 10
            })
    })
    .await;

    // The history: in school, dropped out, then back at the new school by the transfer, named
    // with its deciders.
    let history = federation
        .status_changes("35", Level::School, &receiving, Role::Operator)
        .await
        .get_student_history(ipb::GetStudentHistoryRequest {
            registry_number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let statuses: Vec<&str> = history
        .fields
        .iter()
        .filter(|f| f.field == "status")
        .map(|f| f.value.as_str())
        .collect();
    assert_eq!(
        statuses,
        ["active", "dropped_out", "active"],
        "{history:#?}"
    );
    let arrival = history
        .fields
        .iter()
        .find(|f| f.field == "school" && f.value == receiving)
        .expect("the new school in the history");
    assert_eq!(arrival.change_id, started.id);
    assert!(
        arrival.reason.contains("picked up from dropped_out"),
        "{arrival:?}"
    );
    let receiving_county = federation.school_county("35", &receiving).await;
    for party in [&sending, &receiving_county, &sending_county] {
        assert!(
            arrival.approved_by.contains(party.as_str()),
            "every step's decider is named ({party}): {arrival:?}"
        );
    }
    assert_eq!(
        arrival.changed_by,
        format!("receiving_school {receiving}: school:{receiving}/operator/tester"),
        "the school that took the child, not the service that moved the record"
    );

    // The statistics count a return (复学), not a transfer in without a transfer out.
    assert_eq!(last_feed_kind(&federation, &number).await, "return");
}

#[tokio::test]
async fn suspended_and_missing_pupils_are_picked_up_and_a_deceased_one_is_not() {
    let federation = Federation::start().await;
    let (receiving, sending) = two_schools(&federation).await;
    let (suspended, name, birth) = active_student(&federation, "35", &sending).await;
    leave_school(
        &federation,
        &sending,
        &suspended,
        ipb::StatusChangeKind::Suspension,
        ipb::EnrollmentStatus::Suspended,
    )
    .await;
    let mut transfers = federation
        .transfers("35", Level::School, &receiving, Role::Operator)
        .await;
    pick_up(&federation, &receiving, (&suspended, &name, &birth)).await;
    assert_eq!(last_feed_kind(&federation, &suspended).await, "resumption");

    // A missing pupil (失踪) counts as missing, their own kind of the form, and found (失踪恢复)
    // when another school takes them.
    let (missing, name, birth) = active_student(&federation, "35", &sending).await;
    leave_school(
        &federation,
        &sending,
        &missing,
        ipb::StatusChangeKind::Missing,
        ipb::EnrollmentStatus::Left,
    )
    .await;
    assert_eq!(last_feed_kind(&federation, &missing).await, "missing");
    pick_up(&federation, &receiving, (&missing, &name, &birth)).await;
    assert_eq!(last_feed_kind(&federation, &missing).await, "found");

    let (deceased, name, birth) = active_student(&federation, "35", &sending).await;
    leave_school(
        &federation,
        &sending,
        &deceased,
        ipb::StatusChangeKind::Death,
        ipb::EnrollmentStatus::Deceased,
    )
    .await;
    let refused = transfers
        .start_transfer(start_request(&receiving, &deceased, &name, &birth))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
}
