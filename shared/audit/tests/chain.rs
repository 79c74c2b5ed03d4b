use futures::FutureExt;
use sqlx::PgPool;
use xueji_audit::{ChainProblem, Entry};
use xueji_testkit::TestDatabase;

async fn database() -> TestDatabase {
    xueji_testkit::database("audit", |pool| {
        async move { Ok(xueji_audit::migrate(&pool).await?) }.boxed()
    })
    .await
}

async fn write(pool: &PgPool, n: usize) {
    for i in 0..n {
        let mut conn = pool.acquire().await.unwrap();
        xueji_audit::record(
            &mut conn,
            &Entry {
                actor: "school:2135000001/operator/alice",
                jurisdiction: "2135000001",
                action: "identity.register_student",
                object: &format!("student:{i}"),
                before: None,
                after: Some(serde_json::json!({"name": "张𠮷", "i": i})),
                request_id: "req",
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let db = database().await;
    write(&db.pool, 25).await;
    assert_eq!(xueji_audit::seal_all(&db.pool).await.unwrap(), 25);
    write(&db.pool, 5).await;
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!((report.sealed, report.unsealed), (25, 5));
    xueji_audit::seal_all(&db.pool).await.unwrap();
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.sealed, 30);
}

#[tokio::test]
async fn edits_deletions_reorderings_and_truncation_are_detected() {
    let db = database().await;
    write(&db.pool, 10).await;
    xueji_audit::seal_all(&db.pool).await.unwrap();

    sqlx::query("UPDATE audit.entries SET after = '{\"name\": \"李四\"}' WHERE seq = 3")
        .execute(&db.pool)
        .await
        .unwrap();
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert!(matches!(
        report.problems[..],
        [ChainProblem::Edited { seq: 3, .. }]
    ));

    let db = database().await;
    write(&db.pool, 10).await;
    xueji_audit::seal_all(&db.pool).await.unwrap();
    sqlx::query("DELETE FROM audit.entries WHERE seq = 5")
        .execute(&db.pool)
        .await
        .unwrap();
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert!(report.problems.contains(&ChainProblem::Gap {
        expected_seq: 5,
        found_seq: 6
    }));

    let db = database().await;
    write(&db.pool, 10).await;
    xueji_audit::seal_all(&db.pool).await.unwrap();
    // Swap the positions of two entries (the hashes move with them).
    sqlx::query("UPDATE audit.entries SET seq = -seq WHERE seq IN (4, 7)")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit.entries SET seq = CASE seq WHEN -4 THEN 7 ELSE 4 END WHERE seq IN (-4, -7)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, ChainProblem::BrokenLink { seq: 4, .. })),
        "{:?}",
        report.problems
    );

    let db = database().await;
    write(&db.pool, 10).await;
    xueji_audit::seal_all(&db.pool).await.unwrap();
    sqlx::query("DELETE FROM audit.entries WHERE seq = 10")
        .execute(&db.pool)
        .await
        .unwrap();
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert_eq!(
        report.problems,
        vec![ChainProblem::HeadMismatch {
            head_seq: 10,
            last_seq: 9
        }]
    );
}

#[tokio::test]
async fn concurrent_writers_and_two_sealers_make_one_chain() {
    let db = database().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move { write(&pool, 50).await }));
    }
    for _ in 0..2 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..40 {
                xueji_audit::seal_batch(&pool, 37).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    xueji_audit::seal_all(&db.pool).await.unwrap();
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.sealed, 400);
}
