//! Trust boundaries of the federation, tried as an attacker holding a province's keys would:
//! identities a CA may not grant, servers posing as someone else, tokens an issuer may not
//! sign, and a federation that must keep running for weeks on short-lived service tokens.

use std::time::Duration;

use tonic::{Code, service::RoutesBuilder, service::interceptor::InterceptedService};
use xueji_auth::{Authority, Claims, Level, Role, TokenSigner};
use xueji_node::pki;
use xueji_pki::{CertificateAuthority, CertifiedKey, Validity};
use xueji_proto::{
    identity::v1 as pb,
    national::v1::{self as npb, national_directory_client::NationalDirectoryClient},
    schools::v1 as spb,
};
use xueji_rpc::{BearerToken, ClientConfig, ExpectedServer, TlsFiles, TlsSource};
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id,
};

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The certificate `stem` of `node`'s folder.
fn member_cert(federation: &Federation, node: &str, stem: &str) -> CertifiedKey {
    CertifiedKey {
        cert_pem: read(federation.pki(node).join(format!("{stem}.pem"))),
        key_pem: read(federation.pki(node).join(format!("{stem}.key"))),
    }
}

fn tls(federation: &Federation, cert: &CertifiedKey) -> TlsSource {
    TlsSource::fixed(&TlsFiles {
        ca_pem: read(federation.pki("national").join("ca.pem")),
        cert_pem: cert.cert_pem.clone(),
        key_pem: cert.key_pem.clone(),
    })
    .expect("TLS material")
}

/// Province `province`'s CA, as the province holds it (apart from its nodes' folders).
fn province_ca(federation: &Federation, province: &str) -> CertificateAuthority {
    let dir = federation.pki(xueji_pki::files::AUTHORITIES);
    let stem = xueji_pki::files::province_ca(province);
    CertificateAuthority::load_intermediate(
        &read(dir.join(format!("{stem}.pem"))),
        &read(dir.join(format!("{stem}.key"))),
    )
    .expect("the province's CA")
}

/// A channel to `address` presenting `cert` and sending `token`, or why it failed.
async fn channel_as(
    federation: &Federation,
    address: &str,
    cert: &CertifiedKey,
    token: &str,
) -> Result<InterceptedService<tonic::transport::Channel, BearerToken>, String> {
    let config = ClientConfig {
        tls: tls(federation, cert),
        server: ExpectedServer::AnyNode,
        request_timeout: Duration::from_secs(5),
    };
    let channel = xueji_rpc::connect(address, &config)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    Ok(InterceptedService::new(
        channel,
        BearerToken::new(token).unwrap(),
    ))
}

/// `ListProvinces` on the national node with `cert` and `token`: the handshake's or the call's
/// answer.
async fn list_provinces(
    federation: &Federation,
    cert: &CertifiedKey,
    token: &str,
) -> Result<(), String> {
    let channel = channel_as(federation, &federation.national.address(), cert, token).await?;
    NationalDirectoryClient::new(channel)
        .list_provinces(npb::ListProvincesRequest {})
        .await
        .map(|_| ())
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}

/// `GetStudent` on `province`'s node with `cert` and `token`.
async fn get_student(
    federation: &Federation,
    province: &str,
    cert: &CertifiedKey,
    token: &str,
) -> Result<(), String> {
    let address = federation.province(province).address();
    let mut client = pb::identity_service_client::IdentityServiceClient::new(
        channel_as(federation, &address, cert, token).await?,
    );
    match client
        .get_student(pb::GetStudentRequest {
            number: format!("L{province}0102201803070000"),
        })
        .await
    {
        Ok(_) => Ok(()),
        // Reaching the handler at all means the caller was let in.
        Err(status) if status.code() == Code::NotFound => Ok(()),
        Err(status) => Err(format!("{:?}: {}", status.code(), status.message())),
    }
}

#[tokio::test]
async fn servers_refuse_identities_their_issuer_may_not_grant() {
    let federation = Federation::start().await;
    let ministry = federation.token(Level::Ministry, "", Role::Operator);
    let genuine = member_cert(&federation, "national", "operator");
    list_provinces(&federation, &genuine, &ministry)
        .await
        .expect("the genuine national operator certificate is let in");

    // Fujian holds its CA key to issue its own certificates; with it, it tries to be the
    // nation, and Anhui.
    let fujian_ca = province_ca(&federation, "35");
    for forged in [
        "spiffe://xueji/national/operator/cli",
        "spiffe://xueji/national/national",
        "spiffe://xueji/national/node",
    ] {
        let cert = fujian_ca.issue(forged, &[], Validity::days(1)).unwrap();
        let answer = list_provinces(&federation, &cert, &ministry).await;
        assert!(answer.is_err(), "{forged} from Fujian's CA was let in");
    }
    let anhui = federation.token(Level::Province, "340000", Role::Operator);
    get_student(
        &federation,
        "34",
        &member_cert(&federation, "34", "operator"),
        &anhui,
    )
    .await
    .expect("Anhui's own operator certificate is let in");
    for forged in [
        "spiffe://xueji/province/34/operator/cli",
        "spiffe://xueji/province/34/identity",
    ] {
        let cert = fujian_ca.issue(forged, &[], Validity::days(1)).unwrap();
        assert!(
            get_student(&federation, "34", &cert, &anhui).await.is_err(),
            "{forged} from Fujian's CA was let into Anhui's node"
        );
        assert!(
            list_provinces(&federation, &cert, &anhui).await.is_err(),
            "{forged} from Fujian's CA was let into the national node"
        );
    }
    // Fujian's CA may name only hosts under its DNS name constraints.
    let outside = fujian_ca
        .issue(
            "spiffe://xueji/province/35/operator/cli",
            &["node.elsewhere.example"],
            Validity::days(1),
        )
        .unwrap();
    let fujian = federation.token(Level::Province, "350000", Role::Operator);
    assert!(
        get_student(&federation, "35", &outside, &fujian)
            .await
            .is_err(),
        "a DNS name outside Fujian's constraints was let in"
    );
    let inside = fujian_ca
        .issue(
            "spiffe://xueji/province/35/operator/cli",
            &["p35.xueji.internal"],
            Validity::days(1),
        )
        .unwrap();
    get_student(&federation, "35", &inside, &fujian)
        .await
        .expect("a DNS name inside Fujian's constraints is let in");

    // The root may not sign a province's identity directly either: province identities come
    // through their province's CA.
    let root = CertificateAuthority::load(
        &read(federation.pki("authorities").join("root.pem")),
        &read(federation.pki("authorities").join("root.key")),
    )
    .unwrap();
    let cert = root
        .issue(
            "spiffe://xueji/province/34/operator/cli",
            &[],
            Validity::days(1),
        )
        .unwrap();
    assert!(get_student(&federation, "34", &cert, &anhui).await.is_err());

    // No CA key sits where a node runs: the authorities' keys are apart.
    let authority_keys: Vec<String> = std::fs::read_dir(federation.pki("authorities"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "key"))
        .map(read)
        .collect();
    // The root, the two running provinces' CAs and the outsider's (a province with no node).
    assert_eq!(authority_keys.len(), 4, "the root and three provinces' CAs");
    for node in ["national", "35", "34"] {
        for entry in std::fs::read_dir(federation.pki(node)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                assert!(
                    !authority_keys.contains(&read(path.clone())),
                    "{} is a CA key",
                    path.display()
                );
            }
        }
    }
}

/// Serves health only, with `cert`, until the returned sender is dropped.
async fn rogue_server(
    federation: &Federation,
    cert: &CertifiedKey,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(xueji_rpc::serve(
        xueji_rpc::ServerConfig::new(tls(federation, cert)),
        listener,
        RoutesBuilder::default().routes(),
        Vec::new(),
        async move {
            let _ = stopped.await;
        },
    ));
    (address, stop)
}

/// A health check of `address` by Fujian's identity service, expecting `server`.
async fn health_as_fujian(
    federation: &Federation,
    address: &str,
    server: ExpectedServer,
) -> Result<(), String> {
    let config = ClientConfig {
        tls: tls(federation, &member_cert(federation, "35", "identity")),
        server,
        request_timeout: Duration::from_secs(5),
    };
    let channel = xueji_rpc::connect(address, &config)
        .await
        .map_err(|e| format!("{e:?}"))?;
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .map(|_| ())
        .map_err(|status| status.to_string())
}

#[tokio::test]
async fn clients_refuse_servers_that_are_not_who_they_set_out_to_reach() {
    let federation = Federation::start().await;
    // The genuine national node passes as the national node; Anhui's genuine node does not
    // pass as Fujian's, nor as the national node.
    health_as_fujian(
        &federation,
        &federation.national.address(),
        ExpectedServer::national("national"),
    )
    .await
    .expect("the national node is who it says");
    let anhui = federation.province("34").address();
    health_as_fujian(
        &federation,
        &anhui,
        ExpectedServer::province("34", "identity"),
    )
    .await
    .expect("Anhui's node is Anhui's");
    for expected in [
        ExpectedServer::province("35", "identity"),
        ExpectedServer::national("national"),
    ] {
        let answer = health_as_fujian(&federation, &anhui, expected.clone()).await;
        assert!(answer.is_err(), "Anhui's node passed as {expected}");
    }

    // A server with a national-looking certificate from Fujian's CA, and one with another
    // province's genuine certificate.
    let forged = province_ca(&federation, "35")
        .issue(
            "spiffe://xueji/national/national",
            &["localhost"],
            Validity::days(1),
        )
        .unwrap();
    let (address, _stop) = rogue_server(&federation, &forged).await;
    let answer =
        health_as_fujian(&federation, &address, ExpectedServer::national("national")).await;
    assert!(answer.is_err(), "a province-made national identity passed");
    assert!(
        health_as_fujian(&federation, &address, ExpectedServer::AnyNode)
            .await
            .is_err(),
        "a province-made national identity passed as any node"
    );

    let anhui_identity = member_cert(&federation, "34", "identity");
    let (address, _stop_anhui) = rogue_server(&federation, &anhui_identity).await;
    assert!(
        health_as_fujian(
            &federation,
            &address,
            ExpectedServer::province("35", "schools")
        )
        .await
        .is_err()
    );
    health_as_fujian(
        &federation,
        &address,
        ExpectedServer::province("34", "identity"),
    )
    .await
    .expect("the same server is accepted as who it is");
}

fn claims(signer: &TokenSigner, level: Level, jurisdiction: &str, aud: Authority) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: signer.issuer().clone(),
        aud: vec![aud],
        kid: signer.kid(),
        sub: "mallory".into(),
        level,
        jurisdiction: jurisdiction.into(),
        role: Role::Approver,
        iat: now,
        nbf: now,
        exp: now + 3600,
    }
}

#[tokio::test]
async fn nodes_refuse_tokens_their_issuer_may_not_sign_or_that_are_out_of_date() {
    let federation = Federation::start().await;
    let national_operator = member_cert(&federation, "national", "operator");
    let national = pki::signer(&federation.pki("national")).unwrap();
    let fujian = pki::signer(&federation.pki("35")).unwrap();
    let anhui = pki::signer(&federation.pki("34")).unwrap();

    let genuine = national
        .sign(&claims(&national, Level::Ministry, "", Authority::National))
        .unwrap();
    list_provinces(&federation, &national_operator, &genuine)
        .await
        .expect("a ministry token of the national node's");

    let now = chrono::Utc::now().timestamp();
    let mut cases: Vec<(&str, String)> = Vec::new();
    // Fujian's key minting a ministry token, as itself or posing as the national node.
    cases.push((
        "a province-signed ministry token",
        fujian
            .sign(&claims(&fujian, Level::Ministry, "", Authority::National))
            .unwrap(),
    ));
    let mut posing = claims(&fujian, Level::Ministry, "", Authority::National);
    posing.iss = Authority::National;
    cases.push((
        "a province key posing as the national node",
        fujian.sign(&posing).unwrap(),
    ));
    let mut expired = claims(&national, Level::Ministry, "", Authority::National);
    expired.iat = now - 7200;
    expired.nbf = now - 7200;
    expired.exp = now - 600;
    cases.push(("an expired token", national.sign(&expired).unwrap()));
    let mut early = claims(&national, Level::Ministry, "", Authority::National);
    early.nbf = now + 3600;
    early.exp = now + 7200;
    cases.push(("a token not valid yet", national.sign(&early).unwrap()));
    let mut long = claims(&national, Level::Ministry, "", Authority::National);
    long.exp = now + 30 * 24 * 3600;
    cases.push(("a token for a month", national.sign(&long).unwrap()));
    cases.push((
        "a token for another node",
        national
            .sign(&claims(
                &national,
                Level::Ministry,
                "",
                Authority::Province("35".into()),
            ))
            .unwrap(),
    ));
    let stranger = TokenSigner::generate(Authority::National);
    cases.push((
        "a token of an unknown key",
        stranger
            .sign(&claims(&stranger, Level::Ministry, "", Authority::National))
            .unwrap(),
    ));
    for (what, token) in cases {
        let answer = list_provinces(&federation, &national_operator, &token).await;
        match answer {
            Err(message) => assert!(message.starts_with("Unauthenticated"), "{what}: {message}"),
            Ok(()) => panic!("{what} was accepted"),
        }
    }

    // At Fujian's node: its own key's tokens work; Anhui's key, even for a Fujian
    // jurisdiction, is unknown there.
    let fujian_operator = member_cert(&federation, "35", "operator");
    let own = fujian
        .sign(&claims(
            &fujian,
            Level::Province,
            "350000",
            Authority::Province("35".into()),
        ))
        .unwrap();
    get_student(&federation, "35", &fujian_operator, &own)
        .await
        .expect("Fujian's own token at Fujian's node");
    let foreign = anhui
        .sign(&claims(
            &anhui,
            Level::Province,
            "350000",
            Authority::Province("35".into()),
        ))
        .unwrap();
    let answer = get_student(&federation, "35", &fujian_operator, &foreign).await;
    assert!(answer.unwrap_err().starts_with("Unauthenticated"));
}

#[tokio::test]
async fn the_federation_runs_through_thirty_simulated_days() {
    let federation = Federation::start().await;
    let schools = federation.primary_schools("35").await;
    assert!(
        schools.len() >= 30,
        "the sample has {} schools",
        schools.len()
    );
    for day in 1..=30u32 {
        // A day later: every token minted yesterday (operators' and services' alike) expired.
        federation.clock.advance(chrono::Duration::days(1));

        // A school the identity service has not looked up yet: a replica lookup on a miss.
        let school = &schools[day as usize];
        let county = federation.school_county("35", school).await;
        let id = resident_id(&format!("35010220180307{:03}", 100 + day));
        let mut as_school = federation
            .identity("35", Level::School, school, Role::Operator)
            .await;
        let registered = as_school
            .register_student(registration_at(
                &format!("day-{day}"),
                "林小雨",
                school,
                &id,
            ))
            .await
            .unwrap_or_else(|status| panic!("day {day}: registration: {status:?}"))
            .into_inner()
            .student
            .expect("student");

        // Approval waits for the national duplicate check: the outbox delivers with the
        // identity service's own token.
        let mut approver = federation
            .identity("35", Level::County, &county, Role::Approver)
            .await;
        approver
            .approve_registration(pb::ApproveRegistrationRequest {
                registry_number: registered.registry_number.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("day {day}: approval: {status:?}"));
        // On a busy machine the answer may come after the approval's patience: the record is
        // then promoted when the delivery lands.
        federation.delivered("35").await;
        let approved = approver
            .get_student(pb::GetStudentRequest {
                number: registered.registry_number.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("day {day}: lookup: {status:?}"))
            .into_inner()
            .student
            .expect("student");
        assert_eq!(approved.registry_number, format!("G{id}"), "day {day}");

        // The ministry finds the student: the national node asks Fujian with its own token.
        let ministry = federation.token(Level::Ministry, "", Role::Operator);
        let mut directory = federation.directory("national", &ministry).await;
        let found = directory
            .find_student(npb::FindStudentRequest { number: id.clone() })
            .await
            .unwrap_or_else(|status| panic!("day {day}: ministry lookup: {status:?}"))
            .into_inner();
        assert_eq!(found.province, "35");

        // The replica syncs with the schools service's own token.
        let mut intake = federation.intake("35").await;
        intake
            .sync_replica(spb::SyncReplicaRequest {})
            .await
            .unwrap_or_else(|status| panic!("day {day}: replica sync: {status:?}"));
    }
}

#[tokio::test]
async fn a_message_the_national_node_refuses_does_not_block_the_ones_after_it() {
    let federation = Federation::start().await;
    // A message Fujian's outbox should never have held: an Anhui number.
    let poison = serde_json::json!({
        "kind": "index_student",
        "registry_number": "L340102201803071234",
        "aliases": [],
        "id_number": null,
        "duplicate_digest": "0".repeat(64),
        "status": "pending",
    });
    sqlx::query("INSERT INTO identity.outbox (payload) VALUES ($1::text::json)")
        .bind(poison.to_string())
        .execute(&federation.province("35").pool)
        .await
        .unwrap();
    // A registration after it reaches the national index all the same.
    let school = &federation.primary_schools("35").await[0];
    let id = resident_id("35010220180307301");
    let number = federation
        .identity("35", Level::School, school, Role::Operator)
        .await
        .register_student(registration_at("after-poison", "林小雨", school, &id))
        .await
        .expect("registered")
        .into_inner()
        .student
        .expect("student")
        .registry_number;
    federation.delivered("35").await;
    let ministry = federation.token(Level::Ministry, "", Role::Operator);
    let entry = federation
        .directory("national", &ministry)
        .await
        .get_index_entry(npb::GetIndexEntryRequest {
            number: number.clone(),
        })
        .await
        .expect("indexed past the refused message")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.province, "35");

    // Counted in Fujian's metrics.
    let metrics = federation.metrics(federation.province("35")).await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("xueji_outbox_rejected_total 1"),
        "{metrics}"
    );

    // Fujian's province operators see what was refused, and why; a school does not.
    let mut province = federation
        .identity("35", Level::Province, "350000", Role::Operator)
        .await;
    let rejected = province
        .list_rejected_messages(pb::ListRejectedMessagesRequest::default())
        .await
        .expect("listed")
        .into_inner()
        .messages;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].registry_number, "L340102201803071234");
    assert_eq!(rejected[0].kind, "index_student");
    assert!(rejected[0].reason.contains("province 35"), "{rejected:?}");
    let status = federation
        .identity("35", Level::School, school, Role::Operator)
        .await
        .list_rejected_messages(pb::ListRejectedMessagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_rewritten_audit_chain_shows_against_the_national_witness() {
    let federation = Federation::start().await;
    let fujian = federation.province("35");
    let school = &federation.primary_schools("35").await[0];
    let mut as_school = federation
        .identity("35", Level::School, school, Role::Operator)
        .await;
    for n in 0..3 {
        let id = resident_id(&format!("35010220180307{:03}", 401 + n * 2));
        as_school
            .register_student(registration_at(
                &format!("audit-{n}"),
                "林小雨",
                school,
                &id,
            ))
            .await
            .expect("registered");
    }
    xueji_audit::seal_all(&fujian.pool).await.unwrap();
    let head = xueji_audit::head(&fujian.pool).await.unwrap();

    // The node sends its head every second; wait until the national node has it.
    let witness = xueji_node::witness::AuditWitness::new(
        &fujian.config,
        &federation.national.address(),
        std::sync::Arc::new(pki::signer(&federation.pki("35")).unwrap()),
        fujian.pool.clone(),
    )
    .unwrap();
    let mut witnessed = Default::default();
    for _ in 0..100 {
        witnessed = witness.witnessed().await.unwrap();
        if witnessed.keys().any(|seq| *seq >= head.seq) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        witnessed.keys().any(|seq| *seq >= head.seq),
        "the head was witnessed: {witnessed:?}"
    );
    let report = xueji_audit::verify_witnessed(&fujian.pool, &witnessed, |_| {})
        .await
        .unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);

    // Someone with the database owner's rights edits an entry and rebuilds the whole chain.
    let mut tx = fujian.pool.begin().await.unwrap();
    for sql in [
        "SET LOCAL session_replication_role = replica",
        "LOCK TABLE audit.chain_head",
        "UPDATE audit.entries SET actor = 'someone-else'
         WHERE id = (SELECT entry_id FROM audit.chain WHERE seq = 1)",
        "DELETE FROM audit.seals",
        "UPDATE audit.chain_head SET seq = 0, hash = '\\x0000000000000000000000000000000000000000000000000000000000000000', last_xid = '0', last_id = 0",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    xueji_audit::seal_all(&fujian.pool).await.unwrap();
    let alone = xueji_audit::verify(&fujian.pool, |_| {}).await.unwrap();
    assert!(alone.is_intact(), "the rewrite is consistent on its own");

    let report = xueji_audit::verify_witnessed(&fujian.pool, &witnessed, |_| {})
        .await
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, xueji_audit::ChainProblem::Rewritten { .. })),
        "{:?}",
        report.problems
    );
    // And the national node refuses the rewritten head, and counts an alarm.
    let refused = witness.send().await.unwrap_err().to_string();
    assert!(
        refused.contains("rewritten") || refused.contains("shorter"),
        "{refused}"
    );
    let metrics = federation.metrics(&federation.national).await;
    let alarms: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("xueji_audit_witness_alarms_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no alarm counter in {metrics}"));
    assert!(alarms >= 1, "{metrics}");
}
