// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]
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

/// The id of the entry at chain position `seq`.
async fn entry_at(pool: &PgPool, seq: i64) -> i64 {
    sqlx::query_scalar("SELECT entry_id FROM audit.chain WHERE seq = $1")
        .bind(seq)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn sealed_database(entries: usize) -> TestDatabase {
    let db = database().await;
    write(&db.pool, entries).await;
    xueji_audit::seal_all(&db.pool).await.unwrap();
    db
}

/// Runs `sql` as someone with the database owner's rights who switches the append-only
/// triggers off: what the chain (and, beyond it, the witness) must catch.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn entries_and_seals_are_append_only() {
    let db = sealed_database(3).await;
    for sql in [
        "UPDATE audit.entries SET actor = 'someone-else'",
        "DELETE FROM audit.entries",
        "TRUNCATE audit.entries CASCADE",
        "UPDATE audit.seals SET sealed_at = now()",
        "DELETE FROM audit.seals",
    ] {
        let error = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    assert!(problems(&db.pool).await.is_empty());
}

async fn problems(pool: &PgPool) -> Vec<ChainProblem> {
    xueji_audit::verify(pool, |_| {}).await.unwrap().problems
}

#[tokio::test]
async fn edits_deletions_reorderings_insertions_and_truncation_are_detected() {
    let db = sealed_database(10).await;
    let third = entry_at(&db.pool, 3).await;
    tamper(
        &db.pool,
        &format!("UPDATE audit.entries SET after = '{{\"name\": \"李四\"}}' WHERE id = {third}"),
    )
    .await;
    assert_eq!(
        problems(&db.pool).await,
        [ChainProblem::Edited { seq: 3, id: third }]
    );

    let db = sealed_database(10).await;
    let fifth = entry_at(&db.pool, 5).await;
    tamper(
        &db.pool,
        &format!("DELETE FROM audit.entries WHERE id = {fifth}"),
    )
    .await;
    assert_eq!(
        problems(&db.pool).await,
        [ChainProblem::Deleted { seq: 5, id: fifth }]
    );

    // Swap the contents of two entries: each now sits where the other was sealed.
    let db = sealed_database(10).await;
    let (fourth, seventh) = (entry_at(&db.pool, 4).await, entry_at(&db.pool, 7).await);
    tamper(
        &db.pool,
        &format!(
            "UPDATE audit.entries AS e SET object = o.object, after = o.after
             FROM audit.entries o
             WHERE (e.id, o.id) IN (({fourth}, {seventh}), ({seventh}, {fourth}))"
        ),
    )
    .await;
    assert_eq!(
        problems(&db.pool).await,
        [
            ChainProblem::Edited { seq: 4, id: fourth },
            ChainProblem::Edited {
                seq: 7,
                id: seventh
            }
        ]
    );

    // An entry slipped in among sealed ones, under an old transaction id.
    let db = sealed_database(10).await;
    let forged: i64 = sqlx::query_scalar(
        "INSERT INTO audit.entries (xid, actor, jurisdiction, action, object, request_id)
         SELECT xid, 'x', 'x', 'x', 'x', 'x' FROM audit.entries WHERE id = $1 RETURNING id",
    )
    .bind(entry_at(&db.pool, 2).await)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        problems(&db.pool).await,
        [ChainProblem::Unchained { id: forged }]
    );

    // Sealing rounds: one deleted from the middle, or the last one removed.
    let db = database().await;
    for _ in 0..3 {
        write(&db.pool, 4).await;
        xueji_audit::seal_all(&db.pool).await.unwrap();
    }
    tamper(&db.pool, "DELETE FROM audit.seals WHERE first_seq = 5").await;
    let found = problems(&db.pool).await;
    assert!(
        found.contains(&ChainProblem::Gap {
            expected_seq: 5,
            found_seq: 9
        }),
        "{found:?}"
    );
    assert!(
        found.contains(&ChainProblem::BrokenLink { seq: 9 }),
        "{found:?}"
    );

    let db = sealed_database(10).await;
    tamper(&db.pool, "DELETE FROM audit.seals").await;
    assert_eq!(
        problems(&db.pool).await[0],
        ChainProblem::HeadMismatch {
            head_seq: 10,
            last_seq: 0
        }
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

/// Migration 0003 made documents json instead of jsonb. Entries sealed while they were jsonb
/// were hashed over jsonb's printing of them (`{"i": 0, …}`, where the writer sent `{"i":0,…}`);
/// the conversion must keep exactly that text, or every old entry would fail verification.
#[tokio::test]
async fn entries_sealed_as_jsonb_still_verify_once_documents_are_json() {
    let db = database().await;
    let pool = &db.pool;
    let documents = |kind: &'static str| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = 'audit.entries'::regclass AND attname = $1",
        )
        .bind(kind)
        .fetch_one(pool)
        .await
        .unwrap()
    };
    // Back to the schema before the migration, and a sealed chain written under it.
    sqlx::raw_sql(
        "ALTER TABLE audit.entries
             ALTER COLUMN before TYPE jsonb USING before::jsonb,
             ALTER COLUMN after TYPE jsonb USING after::jsonb",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    write(&db.pool, 10).await;
    assert_eq!(xueji_audit::seal_all(&db.pool).await.unwrap(), 10);

    sqlx::raw_sql(include_str!("../migrations/0003_documents_as_json.sql"))
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(documents("after").await, "json");
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.sealed, 10);

    // Entries written as json chain on.
    write(&db.pool, 5).await;
    xueji_audit::seal_all(&db.pool).await.unwrap();
    let report = xueji_audit::verify(&db.pool, |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.sealed, 15);
}

/// Drops every seal and rebuilds the chain from the entries as they now are: a rewriter with
/// the owner's rights covering an edit by recomputing every hash.
async fn rebuild_chain(pool: &PgPool) {
    tamper(pool, "DELETE FROM audit.seals").await;
    tamper(
        pool,
        "UPDATE audit.chain_head SET seq = 0, hash = '\\x0000000000000000000000000000000000000000000000000000000000000000', last_xid = '0', last_id = 0",
    )
    .await;
    xueji_audit::seal_all(pool).await.unwrap();
}

#[tokio::test]
async fn a_rewrite_with_recomputed_hashes_shows_against_the_witnessed_heads() {
    let db = sealed_database(6).await;
    let mut witnessed = std::collections::BTreeMap::new();
    let head = xueji_audit::head(&db.pool).await.unwrap();
    witnessed.insert(head.seq, head.hash.clone());
    write(&db.pool, 4).await;
    xueji_audit::seal_all(&db.pool).await.unwrap();
    let later = xueji_audit::head(&db.pool).await.unwrap();
    witnessed.insert(later.seq, later.hash.clone());
    let report = xueji_audit::verify_witnessed(&db.pool, &witnessed, |_| {})
        .await
        .unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);

    // Entry 3 edited, then the chain rebuilt: it verifies on its own...
    let third = entry_at(&db.pool, 3).await;
    tamper(
        &db.pool,
        &format!("UPDATE audit.entries SET actor = 'someone-else' WHERE id = {third}"),
    )
    .await;
    rebuild_chain(&db.pool).await;
    assert!(problems(&db.pool).await.is_empty(), "a consistent rewrite");
    // ...but not against what the national node saw.
    let report = xueji_audit::verify_witnessed(&db.pool, &witnessed, |_| {})
        .await
        .unwrap();
    assert_eq!(
        report.problems,
        [
            ChainProblem::Rewritten { seq: 6 },
            ChainProblem::Rewritten { seq: 10 }
        ]
    );

    // Entries removed and the chain rebuilt shorter.
    let db = sealed_database(6).await;
    let head = xueji_audit::head(&db.pool).await.unwrap();
    let witnessed = std::collections::BTreeMap::from([(head.seq, head.hash)]);
    tamper(
        &db.pool,
        &format!(
            "DELETE FROM audit.entries WHERE id = {}",
            entry_at(&db.pool, 6).await
        ),
    )
    .await;
    rebuild_chain(&db.pool).await;
    assert!(problems(&db.pool).await.is_empty(), "a consistent rewrite");
    let report = xueji_audit::verify_witnessed(&db.pool, &witnessed, |_| {})
        .await
        .unwrap();
    assert_eq!(
        report.problems,
        [ChainProblem::RolledBack {
            witnessed_seq: 6,
            last_seq: 5
        }]
    );
}
