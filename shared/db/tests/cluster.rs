// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]
use xueji_db::{ClusterOptions, EmbeddedPostgres};

#[tokio::test]
async fn a_private_cluster_starts_answers_and_cleans_up() {
    let cluster =
        tokio::task::spawn_blocking(|| EmbeddedPostgres::start(ClusterOptions::default()))
            .await
            .unwrap()
            .expect("cluster starts");
    let root = cluster.root().to_path_buf();
    let pool = xueji_db::connect(&cluster.url("postgres"), 2)
        .await
        .unwrap();
    let answer: i32 = sqlx::query_scalar("SELECT 40 + 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(answer, 42);
    // Service connections bound every statement.
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(timeout, "1min");
    let idle: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(idle, "1min");

    xueji_db::create_database(&cluster.url("postgres"), "scratch", None)
        .await
        .unwrap();
    // Creating it again is not an error.
    xueji_db::create_database(&cluster.url("postgres"), "scratch", None)
        .await
        .unwrap();
    let scratch = xueji_db::connect(&cluster.url("scratch"), 1).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&scratch)
        .await
        .unwrap();
    assert_eq!(name, "scratch");

    // The password is required: a wrong one is refused.
    let wrong = cluster.url("postgres").replacen("xueji:", "xueji:wrong", 1);
    assert!(xueji_db::connect(&wrong, 1).await.is_err());

    pool.close().await;
    scratch.close().await;
    drop(cluster);
    assert!(!root.exists(), "temporary cluster directory is removed");
}
