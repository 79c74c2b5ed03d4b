//! The stats store on a real PostgreSQL: a feed applied in batches of any size, with batches
//! delivered again in part or whole, and batches lost mid-way, gives exactly the in-memory
//! ledger's reports.

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use futures::FutureExt;
use xueji_stats::{
    domain::{Ledger, Month, Unit, recount, synthetic},
    store::Store,
};

async fn store() -> Store {
    let database = xueji_testkit::database("stats", |pool| {
        async move { Ok(xueji_stats::store::migrate(&pool).await?) }.boxed()
    })
    .await;
    Store::new(database.pool)
}

/// A fixed pseudo-random choice list (a linear congruential generator: the same every run).
fn choices(count: usize, seed: u64) -> Vec<(usize, u8, usize, u32)> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    (0..count)
        .map(|_| (next() % 120, next() as u8, next() % 5, (next() % 6) as u32))
        .collect()
}

fn units() -> Vec<Unit> {
    let mut units = vec![
        Unit::Nation,
        Unit::Province("35".into()),
        Unit::Province("34".into()),
        Unit::City("3501".into()),
        Unit::City("3502".into()),
    ];
    for (school, county) in synthetic::SCHOOLS {
        units.push(Unit::School(school.into()));
        units.push(Unit::County(county.into()));
    }
    units
}

#[tokio::test]
async fn batches_redelivered_or_lost_count_each_event_once() {
    let store = store().await;
    let events = synthetic::history(&choices(1_500, 7), 120);
    assert!(events.len() > 300, "{}", events.len());
    let mut ledger = Ledger::default();
    for event in &events {
        ledger.apply(event);
    }

    // Batches of varying size; every third one is delivered again, in whole and from half-way,
    // as a consumer that crashed after committing (before it learned so) would see it.
    let mut at = 0;
    let mut size = 1;
    let mut redelivered = 0;
    while at < events.len() {
        let end = (at + size).min(events.len());
        let batch = &events[at..end];
        let applied = store.apply("identity", batch).await.unwrap();
        assert_eq!(applied.applied, batch.len());
        if size % 3 == 0 {
            let again = store.apply("identity", batch).await.unwrap();
            assert_eq!((again.applied, again.redelivered), (0, batch.len()));
            let overlap = &events[at + batch.len() / 2..(end + 5).min(events.len())];
            let partly = store.apply("identity", overlap).await.unwrap();
            redelivered += partly.redelivered;
            at = (end + 5).min(events.len());
        } else {
            at = end;
        }
        size = size % 17 + 1;
    }
    assert!(redelivered > 0);
    assert_eq!(
        store.position("identity").await.unwrap(),
        events.last().unwrap().position
    );

    let first = Month::of(events.first().unwrap().on).first_day();
    let last = events.last().unwrap().on;
    let mut month = first;
    while month <= last {
        let month_key = Month::of(month);
        for unit in units() {
            let stored = store.monthly_report(&unit, month_key).await.unwrap();
            assert!(stored.reconciles(), "{stored:?}");
            assert_eq!(
                stored,
                ledger.monthly_report(&unit, month_key),
                "{unit:?} {month_key:?}"
            );
            assert_eq!(stored, recount::monthly_report(&events, &unit, month_key));
        }
        month = month.checked_add_months(chrono::Months::new(1)).unwrap();
    }
}

#[tokio::test]
async fn a_batch_lost_mid_way_leaves_nothing_and_is_applied_whole_later() {
    let store = store().await;
    let events = synthetic::history(&choices(200, 11), 30);
    // A consumer killed mid-batch: its transaction never commits. Simulated by applying the
    // batch on a store whose pool is closed half-way: nothing of it may stay.
    let database = xueji_testkit::database("stats", |pool| {
        async move { Ok(xueji_stats::store::migrate(&pool).await?) }.boxed()
    })
    .await;
    let doomed = Store::new(database.pool.clone());
    doomed.apply("identity", &events[..50]).await.unwrap();
    database.pool.close().await;
    assert!(doomed.apply("identity", &events[50..]).await.is_err());

    // The real store: the same feed, the first part, then everything (the lost batch again).
    store.apply("identity", &events[..50]).await.unwrap();
    let applied = store.apply("identity", &events).await.unwrap();
    assert_eq!(applied.redelivered, 50);
    assert_eq!(applied.applied, events.len() - 50);
    let mut ledger = Ledger::default();
    for event in &events {
        ledger.apply(event);
    }
    let month = Month::of(events.last().unwrap().on);
    for unit in units() {
        assert_eq!(
            store.monthly_report(&unit, month).await.unwrap(),
            ledger.monthly_report(&unit, month)
        );
    }
}

/// The dropout rule through the store: a pupil who drops out is listed for the county of the
/// school they left once the province's working days have passed (holidays not counted), and
/// no longer once a school takes them back; a graduate or a transferred pupil never is.
#[tokio::test]
async fn dropouts_are_listed_after_the_working_days_and_cleared_when_picked_up() {
    use chrono::NaiveDate;
    use xueji_stats::domain::{ChangeKind, Event, Gender, Person};

    let store = store().await;
    let calendar = xueji_calendar::WorkingCalendar::bundled();
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let at = |school| synthetic::placement(school, 4, Gender::Female);
    let event = |position, student: &str, on, kind, from, to| Event {
        position,
        student: student.into(),
        on,
        kind,
        from,
        to,
        person: Person {
            registry_number: format!("G{student}"),
            name: "林小雨".into(),
        },
    };
    let events = vec![
        event(
            1,
            "a",
            day(9, 1),
            ChangeKind::Registration,
            None,
            Some(at(0)),
        ),
        event(
            2,
            "b",
            day(9, 1),
            ChangeKind::Registration,
            None,
            Some(at(0)),
        ),
        event(
            3,
            "c",
            day(9, 1),
            ChangeKind::Registration,
            None,
            Some(at(0)),
        ),
        // a drops out on the eve of the Mid-Autumn and National Day holidays.
        event(4, "a", day(9, 24), ChangeKind::Dropout, Some(at(0)), None),
        // b moves to another school: a transfer, never a dropout.
        event(
            5,
            "b",
            day(9, 24),
            ChangeKind::Transfer,
            Some(at(0)),
            Some(at(2)),
        ),
        // c leaves (departure) and is taken back a week later.
        event(6, "c", day(9, 24), ChangeKind::Departure, Some(at(0)), None),
    ];
    store.apply("identity", &events).await.unwrap();
    let county = Unit::County(synthetic::SCHOOLS[0].1.into());
    let listed = |as_of| {
        let store = store.clone();
        let county = county.clone();
        async move {
            xueji_stats::figures::dropouts(&store, calendar, &county, as_of, 10)
                .await
                .unwrap()
                .unplaced
                .into_iter()
                .map(|(d, days)| (d.registry_number, days))
                .collect::<Vec<_>>()
        }
    };
    // Ten weekdays after 24 September would be 9 October, but 25 September to 7 October
    // holds the holidays: on 9 October fewer than ten working days have passed.
    assert!(listed(day(10, 9)).await.is_empty());
    let tenth = calendar.add_working_days(day(9, 24), 10);
    assert_eq!(
        listed(tenth).await,
        [("Ga".to_owned(), 10), ("Gc".to_owned(), 10)]
    );
    // The other county's view holds nobody; c is taken back by a school.
    assert!(
        xueji_stats::figures::dropouts(&store, calendar, &Unit::County("350203".into()), tenth, 10)
            .await
            .unwrap()
            .unplaced
            .is_empty()
    );
    store
        .apply(
            "identity",
            &[event(
                7,
                "c",
                day(10, 12),
                ChangeKind::Reinstatement,
                None,
                Some(at(1)),
            )],
        )
        .await
        .unwrap();
    assert_eq!(listed(tenth).await, [("Ga".to_owned(), 10)]);
    // c came back within the allowance: never listed, so not on the returned list either.
    let returned = |as_of| {
        let store = store.clone();
        let county = county.clone();
        async move {
            xueji_stats::figures::dropouts(&store, calendar, &county, as_of, 10)
                .await
                .unwrap()
                .returned
                .into_iter()
                .map(|(d, days)| (d.registry_number, d.returned, days))
                .collect::<Vec<_>>()
        }
    };
    assert!(returned(tenth).await.is_empty());

    // a is brought back (劝返) by another school after being listed, in a later batch; d
    // leaves and is brought back within one batch, long after the allowance.
    let back = calendar.add_working_days(day(9, 24), 15);
    let school_now = synthetic::SCHOOLS[1].0.to_owned();
    store
        .apply(
            "identity",
            &[
                event(8, "a", back, ChangeKind::Return, None, Some(at(1))),
                event(
                    9,
                    "d",
                    day(9, 1),
                    ChangeKind::Registration,
                    None,
                    Some(at(0)),
                ),
                event(10, "d", day(9, 24), ChangeKind::Dropout, Some(at(0)), None),
                event(11, "d", back, ChangeKind::Transfer, None, Some(at(1))),
                // A later change of a returned pupil keeps the return.
                event(
                    12,
                    "a",
                    back,
                    ChangeKind::Correction,
                    Some(at(1)),
                    Some(at(1)),
                ),
            ],
        )
        .await
        .unwrap();
    let later = day(12, 1);
    assert!(listed(later).await.is_empty(), "nobody is out any more");
    assert_eq!(
        returned(later).await,
        [
            ("Ga".to_owned(), Some((back, school_now.clone())), 15),
            ("Gd".to_owned(), Some((back, school_now.clone())), 15),
        ]
    );
    // Asked as of a day before they came back, they were still out.
    let before_back = calendar.add_working_days(day(9, 24), 12);
    assert_eq!(
        listed(before_back).await,
        [("Ga".to_owned(), 12), ("Gd".to_owned(), 12)]
    );
    // The next school year no longer shows them.
    assert!(
        returned(NaiveDate::from_ymd_opt(2027, 9, 1).unwrap())
            .await
            .is_empty()
    );
}
