//! Work at national scale that must stay bounded: a publication of half a million schools goes
//! out in pages and a province's replica takes it whole. In a test binary of its own, so that
//! its load does not crowd the timing of other tests.

use std::time::Duration;

use prost::Message;
use xueji_auth::{Level, Role};
use xueji_proto::schools::v1 as spb;
use xueji_tests::federation::Federation;

#[tokio::test]
async fn a_national_size_publication_is_replicated_in_pages() {
    if !xueji_tests::slow_suite_runs("the national-size publication") {
        return;
    }
    const SCHOOLS: i64 = 500_000;
    let federation = Federation::start().await;
    let national = &federation.national.pool;
    // Half a million new schools in the national registry, each with its "added" change,
    // copied from a real one (the registry's own paths issue codes one application at a time).
    sqlx::query(
        "INSERT INTO schools_national.schools (code, name, category, province, stages, division,
             registry_authority, operator_type, address, status, open_from)
         SELECT '2135' || lpad(n::text, 6, '0'), '测试学校' || n, '21', '35', t.stages,
                t.division, t.registry_authority, t.operator_type, t.address, 'open', t.open_from
         FROM generate_series(100000, 100000 + $1 - 1) AS n,
              (SELECT * FROM schools_national.schools WHERE code LIKE '2135%' LIMIT 1) AS t",
    )
    .bind(SCHOOLS)
    .execute(national)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO schools_national.changes (kind, code, school, effective_date, reason)
         SELECT 'added', s.code,
                jsonb_set(jsonb_set(t.school, '{code}', to_jsonb(s.code)), '{profile,name}',
                          to_jsonb(s.name)),
                current_date, '批量测试'
         FROM schools_national.schools s,
              (SELECT school FROM schools_national.changes WHERE code LIKE '2135%' LIMIT 1) AS t
         WHERE s.code >= '2135100000' AND s.code < '2135600000'
         ORDER BY s.code",
    )
    .execute(national)
    .await
    .unwrap();
    let ministry = federation.token(Level::Ministry, "", Role::Approver);
    let mut authority = xueji_client::authority_client(
        &federation.national.address(),
        &federation.pki("national"),
        &ministry,
    )
    .await
    .unwrap();
    let published = authority
        .publish(spb::PublishRequest {
            note: "half a million schools".into(),
        })
        .await
        .expect("published")
        .into_inner()
        .publication
        .expect("publication");
    assert!(
        !published.complete,
        "the answer carries the first page only"
    );
    assert!(
        published.encoded_len() < xueji_rpc::MAX_MESSAGE_BYTES / 2,
        "a page stays well inside the message limit"
    );

    // Fujian's replica takes it: the sync outlives the request that started it.
    let mut intake = federation.intake("35").await;
    let _ = intake.sync_replica(spb::SyncReplicaRequest {}).await;
    let replica = &federation.province("35").pool;
    let mut version = 0i64;
    for _ in 0..1200 {
        version = sqlx::query_scalar("SELECT version FROM schools_provincial.replica_state")
            .fetch_one(replica)
            .await
            .unwrap();
        if version == published.version as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        version, published.version as i64,
        "the replica reached the publication"
    );
    let replicated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM schools_provincial.schools WHERE published_in = $1",
    )
    .bind(version)
    .fetch_one(replica)
    .await
    .unwrap();
    assert_eq!(replicated, SCHOOLS);
    let one: String = sqlx::query_scalar(
        "SELECT record->'profile'->>'name' FROM schools_provincial.schools WHERE code = '2135345678'",
    )
    .fetch_one(replica)
    .await
    .unwrap();
    assert_eq!(one, "测试学校345678");
}
