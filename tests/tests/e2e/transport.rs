//! The shared gRPC stack as a client meets it: mutual TLS, tokens, limits, health, reflection.

use std::time::Duration;

use tonic::{
    Code,
    service::interceptor::InterceptedService,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use xueji_auth::{Level, Role, TokenSigner};
use xueji_pki::{CertificateAuthority, Validity};
use xueji_proto::identity::v1::{self as pb, identity_service_client::IdentityServiceClient};
use xueji_rpc::BearerToken;
use xueji_tests::TestNode;

fn read(node: &TestNode, file: &str) -> String {
    std::fs::read_to_string(node.pki_dir().join(file)).unwrap()
}

async fn channel(node: &TestNode, identity: Option<(String, String)>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(node, "ca.pem")))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{}", node.address()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

async fn get_with(channel: Channel, token: &str) -> Result<(), tonic::Status> {
    let mut client =
        IdentityServiceClient::with_interceptor(channel, BearerToken::new(token).unwrap());
    client
        .get_student(pb::GetStudentRequest {
            number: "L350102201803079999".into(),
        })
        .await
        .map(|_| ())
}

/// A refusal: the handshake fails, or the first call does.
async fn refused(node: &TestNode, identity: Option<(String, String)>) -> bool {
    let token = node.token(Level::Ministry, "", Role::Operator);
    match channel(node, identity).await {
        Err(_) => true,
        Ok(channel) => match get_with(channel, &token).await {
            Err(status) => matches!(
                status.code(),
                Code::Unavailable | Code::Unknown | Code::Unauthenticated | Code::Internal
            ),
            Ok(()) => false,
        },
    }
}

#[tokio::test]
async fn clients_need_a_certificate_from_the_node_ca_with_one_spiffe_id() {
    let node = TestNode::start().await;
    let token = node.token(Level::Ministry, "", Role::Operator);

    // The operator certificate from the node's PKI works (the student is simply missing).
    let good = channel(
        &node,
        Some((read(&node, "operator.pem"), read(&node, "operator.key"))),
    )
    .await
    .unwrap();
    assert_eq!(
        get_with(good, &token).await.unwrap_err().code(),
        Code::NotFound
    );

    assert!(refused(&node, None).await, "no client certificate");

    let other_ca = CertificateAuthority::new_root("another root", Validity::days(1)).unwrap();
    let foreign = other_ca
        .issue(
            "spiffe://xueji/province/35/operator/mallory",
            &[],
            Validity::days(1),
        )
        .unwrap();
    assert!(
        refused(&node, Some((foreign.cert_pem, foreign.key_pem))).await,
        "certificate from another CA"
    );

    let own_ca = CertificateAuthority::load(
        &read(&node, "authorities/root.pem"),
        &read(&node, "authorities/root.key"),
    )
    .unwrap();
    let no_uri = own_ca.issue_with_uris(&[], &[], Validity::days(1)).unwrap();
    assert!(
        refused(&node, Some((no_uri.cert_pem, no_uri.key_pem))).await,
        "certificate without a URI SAN"
    );
    let two_uris = own_ca
        .issue_with_uris(
            &[
                "spiffe://xueji/province/35/a",
                "spiffe://xueji/province/35/b",
            ],
            &[],
            Validity::days(1),
        )
        .unwrap();
    assert!(
        refused(&node, Some((two_uris.cert_pem, two_uris.key_pem))).await,
        "certificate with two URI SANs"
    );
    let now = chrono::Utc::now();
    let expired = own_ca
        .issue(
            "spiffe://xueji/national/operator/old",
            &[],
            Validity {
                not_before: now - chrono::Duration::days(10),
                not_after: now - chrono::Duration::days(1),
            },
        )
        .unwrap();
    assert!(
        refused(&node, Some((expired.cert_pem, expired.key_pem))).await,
        "expired certificate"
    );
}

#[tokio::test]
async fn calls_need_a_valid_token_from_the_node_key() {
    let node = TestNode::start().await;
    let identity = Some((read(&node, "operator.pem"), read(&node, "operator.key")));
    let channel = channel(&node, identity).await.unwrap();

    let mut no_token = IdentityServiceClient::new(channel.clone());
    let status = no_token
        .get_student(pb::GetStudentRequest {
            number: "L350102201803079999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // A key the node does not know, even one naming the national node as its authority.
    let stranger = TokenSigner::generate(xueji_auth::Authority::National);
    let forged = xueji_client::mint(&stranger, "eve", Level::Ministry, "", Role::Operator).unwrap();
    let status = get_with(channel.clone(), &forged).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("does not know"), "{status:?}");
}

#[tokio::test]
async fn over_the_concurrency_limit_calls_get_resource_exhausted() {
    let node = TestNode::start_with(|config| config.concurrency_limit = 1).await;
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let client = node
            .client(Level::School, "2135000101", Role::Operator)
            .await;
        tasks.push(tokio::spawn(async move {
            let mut client: IdentityServiceClient<InterceptedService<Channel, BearerToken>> =
                client;
            client
                .list_students(pb::ListStudentsRequest {
                    school_code: "2135000101".into(),
                    ..Default::default()
                })
                .await
        }));
    }
    let mut exhausted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                exhausted += 1;
            }
        }
    }
    assert!(exhausted > 0, "48 simultaneous calls against a limit of 1");
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let node = TestNode::start().await;
    let identity = Some((read(&node, "operator.pem"), read(&node, "operator.key")));
    let channel = channel(&node, identity).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "xueji.identity.v1.IdentityService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test]
async fn replaced_certificates_take_effect_without_a_restart() {
    let node = TestNode::start().await;
    let new_root = CertificateAuthority::new_root("replacement root", Validity::days(1)).unwrap();
    let client_cert = new_root
        .issue(
            "spiffe://xueji/national/operator/new",
            &[],
            Validity::days(1),
        )
        .unwrap();
    let token = node.token(Level::Ministry, "", Role::Operator);
    let call = || async {
        let config = xueji_rpc::ClientConfig {
            tls: xueji_rpc::TlsSource::fixed(&xueji_rpc::TlsFiles {
                ca_pem: new_root.certified.cert_pem.clone(),
                cert_pem: client_cert.cert_pem.clone(),
                key_pem: client_cert.key_pem.clone(),
            })
            .unwrap(),
            server: xueji_rpc::ExpectedServer::AnyNode,
            request_timeout: Duration::from_secs(5),
        };
        let channel = xueji_rpc::connect(&node.address(), &config)
            .await
            .map_err(|e| e.to_string())?;
        match get_with(channel, &token).await {
            Ok(()) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(status) => Err(status.to_string()),
        }
    };
    assert!(
        call().await.is_err(),
        "the node does not know the new root yet"
    );

    // Replace the node's certificate, key and trusted roots on disk, as an operator rotating
    // certificates would; the node keeps running.
    let server = new_root
        .issue(
            "spiffe://xueji/national/node",
            &["localhost"],
            Validity::days(1),
        )
        .unwrap();
    let old_root = read(&node, "ca.pem");
    std::fs::write(node.pki_dir().join("node.key"), &server.key_pem).unwrap();
    std::fs::write(node.pki_dir().join("node.pem"), &server.cert_pem).unwrap();
    std::fs::write(
        node.pki_dir().join("ca.pem"),
        format!("{}{old_root}", new_root.certified.cert_pem),
    )
    .unwrap();
    let mut reloaded = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if call().await.is_ok() {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the node never picked up its new certificate");
}

#[tokio::test]
async fn silent_connections_do_not_stop_a_real_client() {
    let node = TestNode::start().await;
    let address: std::net::SocketAddr = node.address().parse().unwrap();
    // Another host (a second loopback address) opens connections and never says a word.
    let mut silent = Vec::new();
    for _ in 0..300 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        silent.push(socket.connect(address).await.unwrap());
    }
    // A real client still connects and is answered while they sit there: before the server's
    // own handshake timeout (5 s) would have dropped them and freed any shared slot.
    let token = node.token(Level::Ministry, "", Role::Operator);
    let channel = tokio::time::timeout(
        Duration::from_secs(4),
        channel(
            &node,
            Some((read(&node, "operator.pem"), read(&node, "operator.key"))),
        ),
    )
    .await
    .expect("connected while the silent connections still hold their handshakes")
    .expect("a real client connects past the silent ones");
    assert_eq!(
        get_with(channel, &token).await.unwrap_err().code(),
        Code::NotFound
    );
    drop(silent);
}

#[tokio::test]
async fn one_operator_over_its_budget_slows_down_alone() {
    let node = TestNode::start_with(|config| config.operator_requests_per_second = 5).await;
    let mut busy = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    let mut exhausted = 0;
    for _ in 0..40 {
        let answer = busy
            .get_student(pb::GetStudentRequest {
                number: "L350102201803079999".into(),
            })
            .await
            .unwrap_err();
        match answer.code() {
            Code::NotFound => {}
            Code::ResourceExhausted => {
                assert!(answer.message().contains("budget"), "{answer:?}");
                exhausted += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        exhausted > 0,
        "40 calls at once against a budget of 5 a second"
    );
    // Another operator is not held back by the first one's spending.
    let mut other = node
        .client(Level::School, "2135000102", Role::Operator)
        .await;
    let answer = other
        .get_student(pb::GetStudentRequest {
            number: "L350103201803079999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(answer.code(), Code::NotFound);
}
