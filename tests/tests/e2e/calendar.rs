//! The official calendar as data: a ministry operator loads a year on the national node
//! (audited, checked, idempotent), provinces pull it and count new deadlines on it, keep it
//! across a restart, and a deadline reaching past the loaded years stays flagged.

use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_calendar::{CalendarDay, DayKind, WorkingCalendar, china_today};
use xueji_proto::{national::v1 as npb, transfers::v1 as tpb};
use xueji_tests::{
    federation::Federation,
    transfers::{active_student, start_request, two_schools},
    violated_fields,
};

fn wire_day(date: NaiveDate, kind: npb::CalendarDayKind) -> npb::CalendarDay {
    npb::CalendarDay {
        date: date.to_string(),
        kind: kind as i32,
        name: "测试假期".into(),
    }
}

/// The first step's deadline of a transfer, and whether it is estimated.
async fn first_deadline(client: &mut xueji_client::TransfersClient, id: &str) -> (String, bool) {
    let transfer = client
        .get_transfer(tpb::GetTransferRequest {
            transfer_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let step = &transfer.steps[0];
    (step.deadline.clone(), step.deadline_estimated)
}

#[tokio::test]
async fn a_year_the_ministry_loads_reaches_the_provinces_and_their_deadlines() {
    let mut federation = Federation::start().await;
    // Late December, so that a 10-working-day deadline reaches into next year.
    let today = china_today(federation.clock.now());
    let late_december = NaiveDate::from_ymd_opt(today.year(), 12, 28).unwrap();
    if late_december > today {
        federation
            .clock
            .advance(chrono::Duration::days((late_december - today).num_days()));
    }
    let today = china_today(federation.clock.now());
    let next = today.year() + 1;
    let (receiving, sending) = two_schools(&federation).await;
    let mut school = federation
        .transfers("35", Level::School, &receiving, Role::Operator)
        .await;

    // Before the year is loaded: counted on weekends alone, and flagged.
    let (number, name, birth) = active_student(&federation, "35", &sending).await;
    let before = school
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let (before_deadline, estimated) = first_deadline(&mut school, &before.id).await;
    assert!(
        estimated,
        "{before_deadline} reaches {next}, which is not loaded"
    );

    // Who may load: a ministry operator, nobody else.
    let ministry = federation.token(Level::Ministry, "", Role::Operator);
    let mut registry = federation.calendar(&ministry).await;
    let holidays: Vec<NaiveDate> = (1..=14)
        .map(|day| NaiveDate::from_ymd_opt(next, 1, day).unwrap())
        .collect();
    let first_saturday = (1..=7)
        .map(|day| NaiveDate::from_ymd_opt(next, 2, day).unwrap())
        .find(|d| d.weekday() == chrono::Weekday::Sat)
        .unwrap();
    let mut days: Vec<npb::CalendarDay> = holidays
        .iter()
        .map(|d| wire_day(*d, npb::CalendarDayKind::Holiday))
        .collect();
    days.push(wire_day(first_saturday, npb::CalendarDayKind::Workday));
    let load = npb::LoadCalendarYearRequest {
        year: next,
        days: days.clone(),
    };
    for (level, jurisdiction, role) in [
        (Level::Ministry, "", Role::Approver),
        (Level::Province, "350000", Role::Operator),
    ] {
        let token = federation.token(level, jurisdiction, role);
        let refused = federation
            .calendar(&token)
            .await
            .load_calendar_year(load.clone())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }

    // Bad schedules are refused, naming the field, and nothing is written.
    let mut on_a_monday = load.clone();
    let monday = (1..=7)
        .map(|day| NaiveDate::from_ymd_opt(next, 3, day).unwrap())
        .find(|d| d.weekday() == chrono::Weekday::Mon)
        .unwrap();
    on_a_monday
        .days
        .push(wire_day(monday, npb::CalendarDayKind::Workday));
    let mut unspecified = load.clone();
    unspecified.days[0].kind = npb::CalendarDayKind::Unspecified as i32;
    let mut not_a_date = load.clone();
    not_a_date.days[0].date = format!("{next}-02-30");
    for (bad, field) in [
        (on_a_monday, "days"),
        (unspecified, "days"),
        (not_a_date, "days"),
        (
            npb::LoadCalendarYearRequest {
                year: 1999,
                days: days.clone(),
            },
            "year",
        ),
    ] {
        let refused = registry.load_calendar_year(bad).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(violated_fields(&refused), vec![field.to_owned()]);
    }
    let listed = registry
        .list_calendar_years(npb::ListCalendarYearsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .years;
    assert!(listed.is_empty(), "{listed:?}");

    // The load, and the same load again (a retry): one version, one audit entry.
    let loaded = registry
        .load_calendar_year(load.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(loaded.changed);
    let version = loaded.year.as_ref().unwrap().version;
    assert!(version > 0);
    let again = registry
        .load_calendar_year(load.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    assert_eq!(again.year.unwrap().version, version);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit.entries
         WHERE action = 'national.load_calendar_year' AND object = $1",
    )
    .bind(format!("calendar:{next}"))
    .fetch_one(&federation.national.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // The province pulls it.
    let describe = async |school: &mut xueji_client::TransfersClient| {
        school
            .describe_calendar(tpb::DescribeCalendarRequest {})
            .await
            .unwrap()
            .into_inner()
    };
    let mut pulled = false;
    for _ in 0..100 {
        let calendar = describe(&mut school).await;
        if calendar.loaded_years.contains(&next) && calendar.national_version == version {
            pulled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pulled, "Fujian did not take {next} within 10 s");

    // A deadline opened now counts on it: the two January weeks off, not estimated. The
    // transfer started before keeps the deadline it was given, still flagged.
    let (number, name, birth) = active_student(&federation, "35", &sending).await;
    let after = school
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let (after_deadline, estimated) = first_deadline(&mut school, &after.id).await;
    assert!(!estimated, "{after_deadline}");
    let mut oracle = WorkingCalendar::bundled().clone();
    let mut schedule: Vec<CalendarDay> = holidays
        .iter()
        .map(|date| CalendarDay {
            date: *date,
            kind: DayKind::Holiday,
            name: String::new(),
        })
        .collect();
    schedule.push(CalendarDay {
        date: first_saturday,
        kind: DayKind::Workday,
        name: String::new(),
    });
    oracle.load_year(next, &schedule);
    let policy = xueji_transfers::policy::SagaPolicy::bundled();
    let days = policy.approvals.step_rule("35", "receiving_authority").days;
    let expected = policy
        .approvals
        .calendar_of(&oracle, "35")
        .deadline(today, days);
    assert_eq!(after_deadline, expected.date.to_string());
    assert!(
        after_deadline > before_deadline,
        "{after_deadline} vs {before_deadline}"
    );
    assert_eq!(
        first_deadline(&mut school, &before.id).await,
        (before_deadline, true)
    );

    // The province keeps what it pulled: restarted while the national node is down, it still
    // counts on the year.
    federation.kill_national().await;
    federation.kill_province("35").await;
    federation.restart_province("35").await;
    let mut school = federation
        .transfers("35", Level::School, &receiving, Role::Operator)
        .await;
    let mut kept = false;
    for _ in 0..100 {
        if let Ok(calendar) = school
            .describe_calendar(tpb::DescribeCalendarRequest {})
            .await
            && calendar.get_ref().loaded_years.contains(&next)
        {
            kept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(kept, "Fujian forgot {next} across a restart");
    federation.restart_national().await;
}
