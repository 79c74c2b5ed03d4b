//! The federation: the national node and two provinces on real sockets with real mutual TLS
//! from a federation PKI (national root, an intermediate per province, per-service
//! certificates).

use std::time::Duration;

use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use xueji_auth::{Level, Role};
use xueji_pki::{CertificateAuthority, Validity};
use xueji_proto::{
    identity::v1 as pb,
    national::v1::{self as npb, national_index_client::NationalIndexClient},
};
use xueji_rpc::{BearerToken, ClientConfig, ExpectedServer, TlsFiles, TlsSource};
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id,
};

/// Registers at `school` in `province` as the school's operator; answers the L number.
async fn register(
    federation: &Federation,
    province: &str,
    school: &str,
    request: pb::RegisterStudentRequest,
) -> String {
    let mut client = federation
        .identity(province, Level::School, school, Role::Operator)
        .await;
    client
        .register_student(request)
        .await
        .expect("registered")
        .into_inner()
        .student
        .expect("student")
        .registry_number
}

async fn approve(
    federation: &Federation,
    province: &str,
    county: &str,
    number: &str,
) -> Result<pb::Student, tonic::Status> {
    let mut client = federation
        .identity(province, Level::County, county, Role::Approver)
        .await;
    client
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: number.into(),
        })
        .await
        .map(|r| r.into_inner().student.expect("student"))
}

async fn problems(federation: &Federation, province: &str) -> Vec<pb::ProblemRecord> {
    let mut client = federation
        .identity(
            province,
            Level::Province,
            &format!("{province}0000"),
            Role::Operator,
        )
        .await;
    client
        .list_problem_records(pb::ListProblemRecordsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("problems")
        .into_inner()
        .problems
}

/// Waits until `province` lists a problem of `kind` for `number`.
async fn flagged(federation: &Federation, province: &str, number: &str, kind: pb::ProblemKind) {
    for _ in 0..100 {
        let found = problems(federation, province).await.into_iter().any(|p| {
            p.kind == kind as i32
                && (p.registry_number == number
                    || p.related_registry_numbers.iter().any(|r| r == number))
        });
        if found {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("province {province} never flagged {number} as {kind:?}");
}

/// Scans every column of every table of the national index: none holds `id_number` or `name`.
/// The registry number `G` + ID number is the student's identifier, which the index exists to
/// route (its format is DESIGN §2's), so it is taken out of each value before the scan.
async fn assert_no_clear_personal_data(pool: &sqlx::PgPool, id_number: &str, name: &str) {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'national'
           AND data_type IN ('text', 'bytea', 'jsonb', 'character varying')",
    )
    .fetch_all(pool)
    .await
    .expect("columns");
    assert!(
        columns.len() > 10,
        "the scan sees the national tables: {columns:?}"
    );
    for (table, column) in columns {
        let found: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM national.{table}
             WHERE replace({column}::text, 'G' || $1, '') LIKE '%' || $1 || '%'
                OR {column}::text LIKE '%' || $2 || '%'
                OR {column}::text LIKE '%' || encode(convert_to($1, 'UTF8'), 'hex') || '%'"
        ))
        .bind(id_number)
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("scan");
        assert_eq!(
            found, 0,
            "national.{table}.{column} holds the ID number or the name in clear"
        );
    }
}

#[tokio::test]
async fn approval_claims_the_id_number_nationally_and_the_ministry_finds_the_student() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let id = resident_id("35010220180307001");
    let l = register(
        &federation,
        "35",
        &school,
        registration_at("f-1", "林小雨", &school, &id),
    )
    .await;
    assert!(l.starts_with('L'));

    let mut approver = federation
        .identity("35", Level::County, &county, Role::Approver)
        .await;
    let student = xueji_tests::approve_until_active(&mut approver, &l).await;
    assert_eq!(student.registry_number, format!("G{id}"));
    assert_eq!(student.status, pb::EnrollmentStatus::Active as i32);
    assert_eq!(student.aliases, vec![l.clone()]);

    // The national index knows the owner, the numbers and the claim, and nothing personal.
    let ministry = federation.token(Level::Ministry, "", Role::Operator);
    let mut national = federation.directory("national", &ministry).await;
    let entry = national
        .get_index_entry(npb::GetIndexEntryRequest { number: l.clone() })
        .await
        .expect("entry")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.province, "35");
    assert_eq!(entry.registry_number, format!("G{id}"));
    assert_eq!(entry.aliases, vec![l.clone()]);
    assert_eq!(entry.claimed_id_number, id);
    assert_no_clear_personal_data(&federation.national.pool, &id, "林小雨").await;

    // The ministry finds the student anywhere, by number or by ID number; the national node
    // asks the owning province.
    for number in [format!("G{id}"), l.clone(), id.clone()] {
        let found = national
            .find_student(npb::FindStudentRequest { number })
            .await
            .expect("found")
            .into_inner();
        assert_eq!(found.province, "35");
        assert_eq!(found.student.expect("student").name, "林小雨");
    }
    // A province operator finds its own students, and another province's not at all.
    let fujian = federation.token(Level::Province, "350000", Role::Operator);
    let mut as_fujian = federation.directory("35", &fujian).await;
    assert!(
        as_fujian
            .find_student(npb::FindStudentRequest { number: id.clone() })
            .await
            .is_ok()
    );
    let anhui = federation.token(Level::Province, "340000", Role::Operator);
    let mut as_anhui = federation.directory("34", &anhui).await;
    let status = as_anhui
        .find_student(npb::FindStudentRequest { number: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let missing = as_anhui
        .find_student(npb::FindStudentRequest {
            number: "L340102201803070000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.message(),
        missing.message().replace("L340102201803070000", &id)
    );

    let provinces = national
        .list_provinces(npb::ListProvincesRequest {})
        .await
        .expect("directory")
        .into_inner()
        .provinces;
    let codes: Vec<_> = provinces.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["34", "35"]);
    assert_eq!(provinces[1].address, federation.province("35").address());
    assert_eq!(provinces[1].identity, "spiffe://xueji/province/35/identity");
    assert_eq!(provinces[1].indexed_students, 1);
}

#[tokio::test]
async fn a_second_province_claiming_a_live_id_number_is_refused_and_both_are_flagged() {
    let federation = Federation::start().await;
    let fujian_school = federation.a_primary_school("35").await;
    let anhui_school = federation.a_primary_school("34").await;
    let fujian_county = federation.school_county("35", &fujian_school).await;
    let anhui_county = federation.school_county("34", &anhui_school).await;
    let id = resident_id("35010220180307003");
    let fujian = register(
        &federation,
        "35",
        &fujian_school,
        registration_at("a", "陈思", &fujian_school, &id),
    )
    .await;
    let anhui = register(
        &federation,
        "34",
        &anhui_school,
        registration_at("b", "陈思", &anhui_school, &id),
    )
    .await;

    approve(&federation, "35", &fujian_county, &fujian)
        .await
        .expect("first claim wins");
    let refused = approve(&federation, "34", &anhui_county, &anhui)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    // The county approver learns that another province holds the record, not which, nor its
    // number.
    assert!(
        refused.message().contains("another province")
            && !refused.message().contains("province 35"),
        "{}",
        refused.message()
    );

    let mut client = federation
        .identity("34", Level::County, &anhui_county, Role::Approver)
        .await;
    let student = client
        .get_student(pb::GetStudentRequest {
            number: anhui.clone(),
        })
        .await
        .expect("still there")
        .into_inner()
        .student
        .expect("student");
    assert_eq!(
        student.status,
        pb::EnrollmentStatus::Pending as i32,
        "back to pending"
    );
    assert_eq!(student.registry_number, anhui, "no G issued");

    let g = format!("G{id}");
    flagged(
        &federation,
        "34",
        &anhui,
        pb::ProblemKind::DuplicateIdNumber,
    )
    .await;
    flagged(&federation, "35", &g, pb::ProblemKind::DuplicateIdNumber).await;
    // The same name, gender and birth date met in the index as well, but both records carry
    // an ID number: the ID duplicate is the problem, not a name duplicate (DESIGN §4 (3)).
    federation.delivered("34").await;
    federation.delivered("35").await;
    for (province, number) in [("34", &anhui), ("35", &g)] {
        let names = problems(&federation, province)
            .await
            .into_iter()
            .filter(|p| {
                p.kind == pb::ProblemKind::DuplicateName as i32
                    && (p.registry_number == *number
                        || p.related_registry_numbers.iter().any(|r| r == number))
            });
        assert_eq!(names.count(), 0, "province {province}");
    }

    // Approving again asks again (a new claim) and is refused again; nothing doubles.
    assert!(
        approve(&federation, "34", &anhui_county, &anhui)
            .await
            .is_err()
    );
    let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM national.id_claims")
        .fetch_one(&federation.national.pool)
        .await
        .unwrap();
    assert_eq!(claims, 1);
}

#[tokio::test]
async fn the_same_id_number_claimed_concurrently_gets_exactly_one_owner() {
    let federation = Federation::start().await;
    let mut owners = 0;
    for round in 0..5 {
        let fujian_school = federation.a_primary_school("35").await;
        let anhui_school = federation.a_primary_school("34").await;
        let fujian_county = federation.school_county("35", &fujian_school).await;
        let anhui_county = federation.school_county("34", &anhui_school).await;
        let id = resident_id(&format!("3501022018030710{round}"));
        let fujian = register(
            &federation,
            "35",
            &fujian_school,
            registration_at(&format!("f{round}"), "周", &fujian_school, &id),
        )
        .await;
        let anhui = register(
            &federation,
            "34",
            &anhui_school,
            registration_at(&format!("a{round}"), "周", &anhui_school, &id),
        )
        .await;
        let (a, b) = tokio::join!(
            approve(&federation, "35", &fujian_county, &fujian),
            approve(&federation, "34", &anhui_county, &anhui),
        );
        let granted = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(granted, 1, "round {round}: {a:?} / {b:?}");
        for refusal in [&a, &b].into_iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(refusal.code(), Code::FailedPrecondition);
        }
        owners += granted;
    }
    let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM national.id_claims")
        .fetch_one(&federation.national.pool)
        .await
        .unwrap();
    assert_eq!(claims, owners as i64);
}

/// A client of the national index with an arbitrary certificate.
async fn index_client(
    federation: &Federation,
    cert: &xueji_pki::CertifiedKey,
    token: &str,
) -> Result<NationalIndexClient<InterceptedService<Channel, BearerToken>>, String> {
    let files = TlsFiles {
        ca_pem: std::fs::read_to_string(federation.pki("national").join("ca.pem")).unwrap(),
        cert_pem: cert.cert_pem.clone(),
        key_pem: cert.key_pem.clone(),
    };
    let config = ClientConfig {
        tls: TlsSource::fixed(&files).map_err(|e| e.to_string())?,
        server: ExpectedServer::national("national"),
        request_timeout: Duration::from_secs(5),
    };
    let channel = xueji_rpc::connect(&federation.national.address(), &config)
        .await
        .map_err(|e| e.to_string())?;
    Ok(NationalIndexClient::with_interceptor(
        channel,
        BearerToken::new(token).unwrap(),
    ))
}

fn index_message(number: &str) -> npb::DeliverRequest {
    npb::DeliverRequest {
        messages: vec![npb::OutboxMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            body: Some(npb::outbox_message::Body::IndexStudent(npb::IndexStudent {
                registry_number: number.into(),
                aliases: vec![],
                id_number: String::new(),
                duplicate_digest: "0".repeat(64),
                status: npb::IndexStatus::Pending as i32,
                migrated: false,
            })),
        }],
    }
}

/// Province `province`'s CA, as the province holds it (apart from its nodes' folders).
fn province_ca(federation: &Federation, province: &str) -> CertificateAuthority {
    let dir = federation.pki(xueji_pki::files::AUTHORITIES);
    let stem = xueji_pki::files::province_ca(province);
    CertificateAuthority::load_intermediate(
        &std::fs::read_to_string(dir.join(format!("{stem}.pem"))).unwrap(),
        &std::fs::read_to_string(dir.join(format!("{stem}.key"))).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_national_node_refuses_every_certificate_it_must() {
    let federation = Federation::start().await;
    let fujian_token = federation.token(Level::Province, "350000", Role::Operator);
    let refused = |result: Result<_, tonic::Status>| match result {
        Err(status) => matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Unauthenticated | Code::Internal
        ),
        Ok(_) => false,
    };
    // The real identity certificate works: the baseline the refusals are measured against.
    let identity = xueji_pki::CertifiedKey {
        cert_pem: std::fs::read_to_string(federation.pki("35").join("identity.pem")).unwrap(),
        key_pem: std::fs::read_to_string(federation.pki("35").join("identity.key")).unwrap(),
    };
    let mut client = index_client(&federation, &identity, &fujian_token)
        .await
        .unwrap();
    client
        .deliver(index_message("L350102201803071234"))
        .await
        .expect("a genuine province identity delivers");

    let intermediate = province_ca(&federation, "35");
    let spiffe = "spiffe://xueji/province/35/identity";
    let now = chrono::Utc::now();
    let expired = Validity {
        not_before: now - chrono::Duration::days(10),
        not_after: now - chrono::Duration::days(1),
    };
    let not_yet = Validity {
        not_before: now + chrono::Duration::days(1),
        not_after: now + chrono::Duration::days(10),
    };
    let other_root = CertificateAuthority::new_root("another root", Validity::days(1)).unwrap();
    let cases = [
        ("expired", intermediate.issue(spiffe, &[], expired).unwrap()),
        (
            "not yet valid",
            intermediate.issue(spiffe, &[], not_yet).unwrap(),
        ),
        (
            "another root",
            other_root.issue(spiffe, &[], Validity::days(1)).unwrap(),
        ),
        (
            "no URI SAN",
            intermediate
                .issue_with_uris(&[], &[], Validity::days(1))
                .unwrap(),
        ),
        (
            "two URI SANs",
            intermediate
                .issue_with_uris(
                    &[spiffe, "spiffe://xueji/province/35/schools"],
                    &[],
                    Validity::days(1),
                )
                .unwrap(),
        ),
        (
            "outside the trust domain",
            intermediate
                .issue(
                    "spiffe://elsewhere/province/35/identity",
                    &[],
                    Validity::days(1),
                )
                .unwrap(),
        ),
    ];
    for (what, cert) in cases {
        let outcome = match index_client(&federation, &cert, &fujian_token).await {
            Err(_) => true,
            Ok(mut client) => refused(client.deliver(index_message("L350102201803071235")).await),
        };
        assert!(outcome, "a certificate with {what} was accepted");
    }
    // And no certificate at all.
    let no_cert = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read_to_string(federation.pki("national").join("ca.pem")).unwrap(),
        ))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "https://{}",
        federation.national.address()
    ))
    .unwrap()
    .tls_config(no_cert)
    .unwrap()
    .connect()
    .await;
    if let Ok(channel) = channel {
        let mut client = NationalIndexClient::with_interceptor(
            channel,
            BearerToken::new(&fujian_token).unwrap(),
        );
        assert!(refused(
            client.deliver(index_message("L350102201803071236")).await
        ));
    }
    let indexed: i64 = sqlx::query_scalar("SELECT count(*) FROM national.students")
        .fetch_one(&federation.national.pool)
        .await
        .unwrap();
    assert_eq!(indexed, 1, "only the genuine delivery was applied");
}

#[tokio::test]
async fn a_province_certificate_acts_for_its_own_province_only() {
    let federation = Federation::start().await;
    let identity = xueji_pki::CertifiedKey {
        cert_pem: std::fs::read_to_string(federation.pki("35").join("identity.pem")).unwrap(),
        key_pem: std::fs::read_to_string(federation.pki("35").join("identity.key")).unwrap(),
    };
    // Fujian's certificate with a token for Anhui, or for the whole nation: refused at the door.
    for (level, jurisdiction) in [(Level::Province, "340000"), (Level::Ministry, "")] {
        let token = federation.token(level, jurisdiction, Role::Operator);
        let mut client = index_client(&federation, &identity, &token).await.unwrap();
        let status = client
            .deliver(index_message("L340102201803071234"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    // Fujian speaking for itself about an Anhui number: rejected by the index for good (the
    // province keeps the reason and delivers on).
    let token = federation.token(Level::Province, "350000", Role::Operator);
    let mut client = index_client(&federation, &identity, &token).await.unwrap();
    let outcomes = client
        .deliver(index_message("L340102201803071234"))
        .await
        .expect("answered")
        .into_inner()
        .outcomes;
    assert!(
        matches!(
            outcomes[0].result,
            Some(npb::delivery_outcome::Result::Rejected(_))
        ),
        "{outcomes:?}"
    );

    // Fujian's operator certificate reaching Anhui's node with an Anhui token: refused.
    let anhui_school = federation.a_primary_school("34").await;
    let anhui_token = federation.token(Level::School, &anhui_school, Role::Operator);
    let mut crossing = xueji_client::identity_client(
        &federation.province("34").address(),
        &federation.pki("35"),
        &anhui_token,
    )
    .await
    .unwrap();
    let status = crossing
        .register_student(registration_at(
            "x",
            "吴",
            &anhui_school,
            &resident_id("34010220180307001"),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let students: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.students")
        .fetch_one(&federation.province("34").pool)
        .await
        .unwrap();
    assert_eq!(students, 0);
}

/// (messages applied, index entries, claims) on the national node: a message is applied once it
/// has an inbox row or introduced an index entry.
async fn national_counts(federation: &Federation) -> (i64, i64, i64) {
    let pool = &federation.national.pool;
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    (
        count(
            "SELECT (SELECT count(*) FROM national.inbox)
                    + (SELECT count(*) FROM national.students WHERE introduced_by IS NOT NULL)",
        )
        .await,
        count("SELECT count(*) FROM national.students").await,
        count("SELECT count(*) FROM national.id_claims").await,
    )
}

async fn outbox_total(federation: &Federation, province: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM identity.outbox")
        .fetch_one(&federation.province(province).pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn provinces_keep_registering_while_the_national_node_is_down_and_every_claim_lands_once() {
    let mut federation = Federation::start().await;
    let fujian_school = federation.a_primary_school("35").await;
    let anhui_school = federation.a_primary_school("34").await;
    let fujian_county = federation.school_county("35", &fujian_school).await;
    federation.kill_national().await;

    let mut fujian_numbers = Vec::new();
    for n in 0..12u32 {
        let id = resident_id(&format!("35010220180307{:03}", 200 + n * 2 + 1));
        fujian_numbers.push(
            register(
                &federation,
                "35",
                &fujian_school,
                registration_at(
                    &format!("down-f{n}"),
                    &format!("学生{n}"),
                    &fujian_school,
                    &id,
                ),
            )
            .await,
        );
    }
    for n in 0..6u32 {
        let id = resident_id(&format!("34010220180307{:03}", 200 + n * 2 + 1));
        register(
            &federation,
            "34",
            &anhui_school,
            registration_at(
                &format!("down-a{n}"),
                &format!("学员{n}"),
                &anhui_school,
                &id,
            ),
        )
        .await;
    }
    // Approvals go through too, waiting for the national check.
    for number in &fujian_numbers[..5] {
        let student = approve(&federation, "35", &fujian_county, number)
            .await
            .expect("approved locally");
        assert_eq!(
            student.status,
            pb::EnrollmentStatus::AwaitingNationalCheck as i32
        );
        assert!(student.registry_number.starts_with('L'));
    }
    assert_eq!(national_counts(&federation).await.0, 0);

    federation.restart_national().await;
    federation.delivered("35").await;
    federation.delivered("34").await;
    let expected = outbox_total(&federation, "35").await + outbox_total(&federation, "34").await;
    assert_eq!(expected, 12 + 6 + 5);
    let (applied, indexed, claims) = national_counts(&federation).await;
    assert_eq!(applied, expected, "every message applied exactly once");
    assert_eq!(indexed, 18);
    assert_eq!(claims, 5);
    let mut client = federation
        .identity("35", Level::County, &fujian_county, Role::Approver)
        .await;
    for number in &fujian_numbers[..5] {
        let student = client
            .get_student(pb::GetStudentRequest {
                number: number.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .student
            .unwrap();
        assert_eq!(student.status, pb::EnrollmentStatus::Active as i32);
        assert!(student.registry_number.starts_with('G'));
    }
}

#[tokio::test]
async fn a_province_killed_mid_delivery_loses_and_doubles_nothing() {
    let mut federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    federation.kill_national().await;
    let total = 600u32;
    let mut client = federation
        .identity("35", Level::School, &school, Role::Operator)
        .await;
    for chunk in (0..total).collect::<Vec<_>>().chunks(50) {
        let calls = chunk.iter().map(|n| {
            let mut client = client.clone();
            let id = resident_id(&format!(
                "3501022017{:02}{:02}{:03}",
                1 + n / 280,
                1 + (n / 10) % 28,
                1 + (n % 10) * 2
            ));
            let request = registration_at(&format!("bulk-{n}"), &format!("批{n}"), &school, &id);
            async move { client.register_student(request).await.map(|_| ()) }
        });
        for result in futures::future::join_all(calls).await {
            result.expect("registered");
        }
    }
    client = federation
        .identity("35", Level::School, &school, Role::Operator)
        .await;
    drop(client);

    federation.restart_national().await;
    // Kill the province as soon as the national node has applied part of the backlog.
    for _ in 0..600 {
        if national_counts(&federation).await.0 > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    federation.kill_province("35").await;
    let applied_before_restart = national_counts(&federation).await.0;
    federation.restart_province("35").await;
    federation.delivered("35").await;

    let (applied, indexed, _) = national_counts(&federation).await;
    assert_eq!(
        applied,
        i64::from(total),
        "no message lost or applied twice (killed after {applied_before_restart})"
    );
    assert_eq!(indexed, i64::from(total));
    let (undelivered, delivered) =
        xueji_identity::store::outbox::backlog(&federation.province("35").pool)
            .await
            .unwrap();
    assert_eq!((undelivered, delivered), (0, i64::from(total)));
}
