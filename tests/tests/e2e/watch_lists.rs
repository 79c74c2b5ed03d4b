//! The county's watch lists against the year's deadlines, on a running federation: a
//! suspension past its term is listed until an extension moves the term on (and a resumption
//! ends it); registrations after the intake deadline, and those still waiting when it passed,
//! are listed; problems found before the problems deadline and still open are listed; each list
//! reads only the caller's jurisdiction.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, Months, NaiveDate};
use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_identity::domain::school_year::SchoolYearPolicy;
use xueji_proto::identity::v1 as ipb;
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id,
    transfers::{active_student, approved_status_change, student_seen_by},
    violated_fields,
};

use crate::school_year::{listed, watch_list};

async fn change(
    federation: &Federation,
    school: &str,
    number: &str,
    kind: ipb::StatusChangeKind,
    effective: NaiveDate,
) {
    approved_status_change(federation, school, number, kind, effective).await;
}

fn set(numbers: &[&String]) -> BTreeSet<String> {
    numbers.iter().map(|n| (*n).clone()).collect()
}

#[tokio::test]
async fn the_countys_watch_lists_follow_the_deadlines_of_the_year() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let today = xueji_calendar::china_today(federation.clock.now());
    let dates = SchoolYearPolicy::bundled().dates("35");

    // A list must be named.
    let unnamed = federation
        .school_year("35", Level::County, &county, Role::Operator)
        .await
        .list_watch_list(ipb::ListWatchListRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unnamed), ["list"], "{unnamed:?}");

    // 休学期满: one pupil suspended a year and a day ago, one today.
    let (long_ago, _, _) = active_student(&federation, "35", &school).await;
    let (recent, _, _) = active_student(&federation, "35", &school).await;
    let effective = today - Days::new(366);
    let term_ends = effective + Months::new(12);
    change(
        &federation,
        &school,
        &long_ago,
        ipb::StatusChangeKind::Suspension,
        effective,
    )
    .await;
    change(
        &federation,
        &school,
        &recent,
        ipb::StatusChangeKind::Suspension,
        today,
    )
    .await;
    let record = student_seen_by(&federation, "35", &school, &long_ago).await;
    assert_eq!(record.status(), ipb::EnrollmentStatus::Suspended);
    assert_eq!(record.suspended_until, term_ends.to_string());
    let past = watch_list(&federation, &county, ipb::WatchList::SuspensionsPastTerm).await;
    assert_eq!(past.deadline, today.to_string());
    // (On the few days a leap day makes a year and a day exactly twelve months, nothing is
    // past its term yet.)
    let expected: Vec<String> = if term_ends < today {
        vec![long_ago.clone()]
    } else {
        vec![]
    };
    assert_eq!(listed(&past), expected, "{past:?}");
    if term_ends < today {
        assert_eq!(past.entries[0].since, term_ends.to_string());
        assert!(
            past.entries[0].detail.contains("休学期满未复学"),
            "{past:?}"
        );
    }
    // An extension (延长休学) moves the term on by a year from its end: off the list.
    change(
        &federation,
        &school,
        &long_ago,
        ipb::StatusChangeKind::SuspensionExtension,
        today,
    )
    .await;
    let extended = student_seen_by(&federation, "35", &school, &long_ago).await;
    assert_eq!(extended.status(), ipb::EnrollmentStatus::Suspended);
    assert_eq!(
        extended.suspended_until,
        (term_ends + Months::new(12)).to_string()
    );
    let past = watch_list(&federation, &county, ipb::WatchList::SuspensionsPastTerm).await;
    assert_eq!(listed(&past), Vec::<String>::new(), "{past:?}");
    // A resumption ends the term.
    change(
        &federation,
        &school,
        &recent,
        ipb::StatusChangeKind::Resumption,
        today,
    )
    .await;
    let resumed = student_seen_by(&federation, "35", &school, &recent).await;
    assert_eq!(resumed.status(), ipb::EnrollmentStatus::Active);
    assert_eq!(resumed.suspended_until, "");

    // Registrations: namesake twins with passports registered now, and a pupil registered in
    // the first days of the school year whose approval is still waiting.
    let year = if dates.year_starts.in_year(today.year()) <= today {
        today.year()
    } else {
        today.year() - 1
    };
    let intake_by = dates.intake_by.in_year(year);
    let twin = |key: &str, passport: &str| {
        let mut request = registration_at(key, "王双", &school, &resident_id("35010220180505001"));
        request.document_type = ipb::DocumentType::Passport as i32;
        request.document_number = passport.into();
        request
    };
    let mut registrar = federation
        .identity("35", Level::School, &school, Role::Operator)
        .await;
    let mut twins = Vec::new();
    for (key, passport) in [("twin-1", "E0000001"), ("twin-2", "E0000002")] {
        twins.push(
            registrar
                .register_student(twin(key, passport))
                .await
                .unwrap()
                .into_inner()
                .student
                .unwrap()
                .registry_number,
        );
    }
    let early = registrar
        .register_student(registration_at(
            "early",
            "林早",
            &school,
            &resident_id(&format!("{county}20180303001")),
        ))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
        .registry_number;
    // It was made on the fifth day of the school year (the test cannot wait for September).
    let early_day = dates.year_starts.in_year(year) + Days::new(4);
    sqlx::query(
        "UPDATE identity.enrollments SET registered_at = ($2::date + time '10:00')
                AT TIME ZONE 'Asia/Shanghai'
         WHERE is_current AND student_id =
               (SELECT id FROM identity.students WHERE registry_number = $1)",
    )
    .bind(&early)
    .bind(early_day)
    .execute(&federation.province("35").pool)
    .await
    .unwrap();
    let late = watch_list(&federation, &county, ipb::WatchList::LateRegistrations).await;
    assert_eq!(late.deadline, intake_by.to_string());
    let on_list: BTreeSet<String> = listed(&late).into_iter().collect();
    if intake_by < today {
        // Every registration of the test but the early one was made after the deadline.
        assert_eq!(
            on_list,
            set(&[&long_ago, &recent, &twins[0], &twins[1], &early]),
            "{late:?}"
        );
        let early_entry = late
            .entries
            .iter()
            .find(|e| e.student.as_ref().unwrap().registry_number == early)
            .unwrap();
        assert_eq!(early_entry.since, early_day.to_string());
        assert!(
            early_entry.detail.contains("still waiting for approval"),
            "{early_entry:?}"
        );
        assert_eq!(late.total, 5);
    } else {
        assert_eq!(on_list, BTreeSet::new(), "before the deadline: {late:?}");
    }
    // Approved, the early registration is no longer late; the late ones stay late.
    let mut approver = federation
        .identity("35", Level::County, &county, Role::Approver)
        .await;
    xueji_tests::approve_until_active(&mut approver, &early).await;
    let late = watch_list(&federation, &county, ipb::WatchList::LateRegistrations).await;
    assert!(!listed(&late).contains(&early), "{late:?}");

    // Problems: the twins' namesake problem, found (at their registration) before the last
    // problems deadline, is late while open; found after it, it is not yet.
    let problems_by = {
        let this_year = dates.problems_by.in_year(today.year());
        if this_year < today {
            this_year
        } else {
            dates.problems_by.in_year(today.year() - 1)
        }
    };
    let open = watch_list(&federation, &county, ipb::WatchList::ProblemsOpenLate).await;
    assert_eq!(open.deadline, problems_by.to_string());
    assert_eq!(listed(&open), Vec::<String>::new(), "{open:?}");
    let found_on = problems_by - Days::new(10);
    sqlx::query(
        "UPDATE identity.students SET registered_at = ($2::date + time '09:00')
                AT TIME ZONE 'Asia/Shanghai'
         WHERE registry_number = ANY($1)",
    )
    .bind(&twins)
    .bind(found_on)
    .execute(&federation.province("35").pool)
    .await
    .unwrap();
    let open = watch_list(&federation, &county, ipb::WatchList::ProblemsOpenLate).await;
    let mut expected = twins.clone();
    expected.sort();
    let mut on_list = listed(&open);
    on_list.sort();
    assert_eq!(on_list, expected, "{open:?}");
    assert_eq!(open.entries[0].since, found_on.to_string());
    assert!(
        open.entries[0].detail.contains("duplicate_name"),
        "{open:?}"
    );

    // Each list reads its caller's jurisdiction only: another school sees none of these, and a
    // scope outside the county is refused as if it did not exist.
    let other = federation
        .primary_schools("35")
        .await
        .into_iter()
        .find(|code| *code != school)
        .unwrap();
    let seen_by_other = federation
        .school_year("35", Level::School, &other, Role::Operator)
        .await
        .list_watch_list(ipb::ListWatchListRequest {
            list: ipb::WatchList::ProblemsOpenLate as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed(&seen_by_other), Vec::<String>::new());
    let outside = federation
        .school_year("35", Level::School, &other, Role::Operator)
        .await
        .list_watch_list(ipb::ListWatchListRequest {
            list: ipb::WatchList::ProblemsOpenLate as i32,
            scope: school.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(outside.code(), Code::NotFound, "{outside:?}");
}
