//! The stats store on a real PostgreSQL: a feed applied in batches of any size, with batches
//! delivered again in part or whole, and batches lost mid-way, gives exactly the in-memory
//! ledger's reports.

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
