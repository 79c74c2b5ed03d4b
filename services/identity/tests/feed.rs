//! The change feed on a real PostgreSQL: every change of where a student counts writes its
//! row in the change's own transaction (the triggers of migration 0015), with the kind the
//! state change means; positions are handed out in commit order; a transfer's two rows (the
//! old enrollment closed, the new one opened) read back as one event.

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use futures::FutureExt;
use sqlx::PgPool;
use xueji_identity::{domain::feed::join_rows, store::Store};

async fn database() -> PgPool {
    xueji_testkit::database("identity-feed", |pool| {
        async move { Ok(xueji_identity::store::migrate(&pool).await?) }.boxed()
    })
    .await
    .pool
}

async fn student(pool: &PgPool, number: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO identity.students
             (registry_number, name, gender, birth_date, ethnicity, document_type, name_key,
              guardian, idempotency_key, request_hash, registered_by)
         VALUES ($1, '林小雨', 'female', '2019-05-01', '01', 'none', $1, '{}', $1, '\\x00',
                 'test')
         RETURNING id",
    )
    .bind(number)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn enroll(pool: &PgPool, student: i64, school: &str, status: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO identity.enrollments
             (student_id, school_code, school_division, grade, entry_date, entry_route, status)
         VALUES ($1, $2, '350102', 1, '2025-09-01', 'nearby_admission', $3) RETURNING id",
    )
    .bind(student)
    .bind(school)
    .bind(status)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn set_status(pool: &PgPool, enrollment: i64, status: &str, left_reason: Option<&str>) {
    sqlx::query("UPDATE identity.enrollments SET status = $2, left_reason = $3 WHERE id = $1")
        .bind(enrollment)
        .bind(status)
        .bind(left_reason)
        .execute(pool)
        .await
        .unwrap();
}

/// The kinds of the events after `after`, with their schools before and after.
async fn events(store: &Store, after: u64) -> Vec<(String, Option<String>, Option<String>)> {
    store.stamp_feed().await.unwrap();
    join_rows(store.feed_rows(after, 1000).await.unwrap())
        .into_iter()
        .map(|e| (e.kind, e.from.map(|p| p.school), e.to.map(|p| p.school)))
        .collect()
}

fn kinds(events: &[(String, Option<String>, Option<String>)]) -> Vec<&str> {
    events.iter().map(|(kind, _, _)| kind.as_str()).collect()
}

#[tokio::test]
async fn every_change_of_where_a_student_counts_is_an_event_of_its_kind() {
    let pool = database().await;
    let store = Store::new(pool.clone());
    let a = student(&pool, "L1").await;
    let enrollment = enroll(&pool, a, "2135000101", "pending").await;
    assert!(
        events(&store, 0).await.is_empty(),
        "a pending record counts nowhere"
    );

    set_status(&pool, enrollment, "active", None).await;
    set_status(&pool, enrollment, "suspended", None).await;
    set_status(&pool, enrollment, "active", None).await;
    set_status(&pool, enrollment, "left", Some("abroad")).await;
    set_status(&pool, enrollment, "active", None).await;
    set_status(&pool, enrollment, "dropped_out", None).await;
    set_status(&pool, enrollment, "active", None).await;
    sqlx::query("UPDATE identity.students SET gender = 'male' WHERE id = $1")
        .bind(a)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE identity.enrollments SET grade = 2, promoted_in = 2026 WHERE id = $1")
        .bind(enrollment)
        .execute(&pool)
        .await
        .unwrap();
    let seen = events(&store, 0).await;
    assert_eq!(
        kinds(&seen),
        [
            "registration",
            "suspension",
            "resumption",
            "abroad",
            "return_from_abroad",
            "dropout",
            "return",
            "correction",
            "promotion",
        ]
    );

    // A transfer inside the province: the old enrollment closed and the new one opened in
    // one transaction read back as one event, from the old school to the new.
    let position = store.stamp_feed().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "UPDATE identity.enrollments SET status = 'transferred_out', is_current = false
         WHERE id = $1",
    )
    .bind(enrollment)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO identity.enrollments
             (student_id, school_code, school_division, grade, entry_date, entry_route, status,
              transfer_task)
         VALUES ($1, '2135000104', '350102', 2, '2026-10-08', 'other', 'active',
                 gen_random_uuid())",
    )
    .bind(a)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        events(&store, position).await,
        [(
            "transfer".to_owned(),
            Some("2135000101".to_owned()),
            Some("2135000104".to_owned())
        )]
    );

    // A graduation takes effect on its closing day, never before the enrollment's last
    // decision; the next stage's enrollment, once approved, is a progression.
    let position = store.stamp_feed().await.unwrap();
    sqlx::query(
        "UPDATE identity.enrollments SET status = 'graduated', closed_on = '2027-07-01'
         WHERE student_id = $1 AND is_current",
    )
    .bind(a)
    .execute(&pool)
    .await
    .unwrap();
    let b = student(&pool, "L4").await;
    let early = enroll(&pool, b, "2135000101", "active").await;
    // Approved in March 2026; its closing day is written as an earlier summer's.
    sqlx::query(
        "UPDATE identity.enrollments SET decided_at = '2026-03-02T10:00:00Z' WHERE id = $1",
    )
    .bind(early)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE identity.enrollments SET status = 'graduated', closed_on = '2020-07-01'
         WHERE id = $1",
    )
    .bind(early)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE identity.enrollments SET is_current = false WHERE id = $1")
        .bind(early)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO identity.enrollments
             (student_id, school_code, school_division, grade, entry_date, entry_route, status,
              continues)
         VALUES ($1, '3135000101', '350102', 7, '2026-09-01', 'nearby_admission', 'pending', $2)",
    )
    .bind(b)
    .bind(early)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE identity.enrollments SET status = 'active' WHERE student_id = $1 AND is_current",
    )
    .bind(b)
    .execute(&pool)
    .await
    .unwrap();
    store.stamp_feed().await.unwrap();
    let rows = store.feed_rows(position, 10).await.unwrap();
    let seen: Vec<(&str, String)> = rows
        .iter()
        .map(|r| (r.kind.as_str(), r.on.to_string()))
        .collect();
    assert_eq!(seen[0], ("graduation", "2027-07-01".to_owned()));
    assert_eq!(
        seen[1].0, "migration",
        "b's first enrollment, inserted active"
    );
    assert_eq!(seen[2], ("graduation", "2026-03-02".to_owned()));
    assert_eq!(seen[3].0, "progression");
    assert_eq!(seen.len(), 4);
}

#[tokio::test]
async fn a_transaction_committed_later_gets_a_later_position_than_any_read() {
    let pool = database().await;
    let store = Store::new(pool.clone());
    // An open transaction writes its row first; another commits after it.
    let slow = student(&pool, "L2").await;
    let fast = student(&pool, "L3").await;
    let mut open = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO identity.enrollments
             (student_id, school_code, school_division, grade, entry_date, entry_route, status)
         VALUES ($1, '2135000101', '350102', 1, '2025-09-01', 'nearby_admission', 'active')",
    )
    .bind(slow)
    .execute(&mut *open)
    .await
    .unwrap();
    enroll(&pool, fast, "2135000101", "active").await;
    // A reader sees the committed row and moves past it…
    let head = store.stamp_feed().await.unwrap();
    let read = store.feed_rows(0, 100).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].student, fast);
    // …and the row committed later still comes after that position: nothing is skipped.
    open.commit().await.unwrap();
    store.stamp_feed().await.unwrap();
    let later = store.feed_rows(head, 100).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].student, slow);
    assert!(later[0].position > head);
}

/// A backlog (a bulk migration's rows) is stamped in rounds of whole transactions, each
/// transaction's rows consecutive, every round after the one before.
#[tokio::test]
async fn a_backlog_is_stamped_in_rounds_of_whole_transactions() {
    let pool = database().await;
    let store = Store::new(pool.clone());
    for transaction in 0..3 {
        sqlx::query(
            "INSERT INTO identity.change_feed (student_id, happened_on, kind, to_place)
             SELECT $1 * 100000 + n, '2026-09-01', 'migration', '{}'::jsonb
             FROM generate_series(1, 30000) AS n",
        )
        .bind(transaction as i64)
        .execute(&pool)
        .await
        .unwrap();
    }
    // The first round reaches 50,000 rows inside the second transaction: it takes both whole.
    assert_eq!(store.stamp_feed().await.unwrap(), 60_000);
    assert_eq!(store.stamp_feed().await.unwrap(), 90_000);
    let runs: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT min(position), max(position), count(*) FROM identity.change_feed GROUP BY xid
         ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        runs,
        [
            (1, 30_000, 30_000),
            (30_001, 60_000, 30_000),
            (60_001, 90_000, 30_000)
        ]
    );
}
