//! Talking to the federation as a province's transfer service or as the national node would:
//! with the certificates and token keys those nodes hold, to send what a misbehaving node
//! could send.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use xueji_auth::{Level, Role};
use xueji_proto::{
    identity::v1 as ipb,
    transfers::v1::{
        self as tpb, saga_message::Body, transfer_peer_client::TransferPeerClient,
        transfer_relay_client::TransferRelayClient,
    },
};
use xueji_rpc::{BearerToken, ClientConfig, ExpectedServer, TlsSource};

use crate::{federation::Federation, raw_rpc::Client};

async fn channel(
    federation: &Federation,
    address: &str,
    pki: &str,
    stem: &str,
    token: &str,
) -> Client {
    let config = ClientConfig {
        tls: TlsSource::from_dir(&federation.pki(pki), stem).expect("TLS material"),
        server: ExpectedServer::AnyNode,
        request_timeout: Duration::from_secs(30),
    };
    let channel = xueji_rpc::connect(address, &config)
        .await
        .expect("connects");
    InterceptedService::new(channel, BearerToken::new(token).expect("token"))
}

/// The national relay as `province`'s transfer service calls it: that province's transfers
/// certificate and a service token signed with that province's own key.
pub async fn relay_as(federation: &Federation, province: &str) -> TransferRelayClient<Client> {
    let token = federation.province_token(
        province,
        Level::Province,
        &format!("{province}0000"),
        Role::Operator,
    );
    TransferRelayClient::new(
        channel(
            federation,
            &federation.national.address(),
            province,
            "transfers",
            &token,
        )
        .await,
    )
}

/// `province`'s transfer peer as the national node calls it (its service certificate): what
/// a message that got past the relay would do there.
pub async fn peer_of(federation: &Federation, province: &str) -> TransferPeerClient<Client> {
    let token = federation.token(Level::Ministry, "", Role::Operator);
    TransferPeerClient::new(
        channel(
            federation,
            &federation.province(province).address(),
            "national",
            "national",
            &token,
        )
        .await,
    )
}

/// A message about `transfer` from `from` to `to` saying `body`, with a fresh id.
pub fn message(transfer: &str, from: &str, to: &str, body: Body) -> tpb::SagaMessage {
    tpb::SagaMessage {
        message_id: uuid::Uuid::new_v4().to_string(),
        transfer_id: transfer.to_owned(),
        from_province: from.to_owned(),
        to_province: to.to_owned(),
        traceparent: String::new(),
        body: Some(body),
    }
}

/// A record as a sending province would send it, for `registry_number`.
pub fn moved_record(registry_number: &str, name: &str, birth_date: &str) -> tpb::RecordMoved {
    tpb::RecordMoved {
        student: Some(ipb::MovedStudent {
            registry_number: registry_number.to_owned(),
            aliases: Vec::new(),
            name: name.to_owned(),
            gender: "male".into(),
            birth_date: birth_date.to_owned(),
            ethnicity: "01".into(),
            document_type: "resident_id_card".into(),
            document_number: registry_number.get(1..).unwrap_or_default().to_owned(),
            id_number_claim: registry_number.get(1..).unwrap_or_default().to_owned(),
            guardian_json: r#"{"name":"伪造","relation":"父亲","phone":"13800000000"}"#.into(),
            entry_route: "nearby_admission".into(),
            picked_up_from: String::new(),
            picked_up_left_reason: String::new(),
        }),
    }
}

/// What the relay answered for one message: `None` when it took it, the reason otherwise.
pub async fn relay_one(
    relay: &mut TransferRelayClient<Client>,
    message: tpb::SagaMessage,
) -> Option<String> {
    let id = message.message_id.clone();
    let answer = relay
        .relay_messages(tpb::RelayMessagesRequest {
            messages: vec![message],
        })
        .await
        .expect("the relay answers")
        .into_inner();
    match answer.refused.into_iter().find(|r| r.message_id == id) {
        Some(refusal) => Some(refusal.reason),
        None => {
            assert_eq!(
                answer.accepted, 1,
                "taken or refused, never silently dropped"
            );
            None
        }
    }
}

/// The messages `province` set aside on arrival (reasons), as its operators list them.
pub async fn set_aside_in(federation: &Federation, province: &str) -> Vec<tpb::SetAsideMessage> {
    federation
        .transfers(
            province,
            Level::Province,
            &format!("{province}0000"),
            Role::Operator,
        )
        .await
        .list_set_aside_messages(tpb::ListSetAsideMessagesRequest::default())
        .await
        .expect("set-aside messages")
        .into_inner()
        .messages
}

/// The transfer's task at `province`, as that node stores it (for forging copies).
pub async fn stored_steps(
    federation: &Federation,
    province: &str,
    id: &str,
) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT jurisdiction, state FROM transfers.steps WHERE transfer_id = $1::uuid
         ORDER BY position",
    )
    .bind(id)
    .fetch_all(&federation.province(province).pool)
    .await
    .expect("steps")
}

/// The national statistics intake as `province`'s stats service calls it (its certificate,
/// a token of its own key): what a province could report.
pub async fn national_stats_as(
    federation: &Federation,
    province: &str,
) -> xueji_proto::stats::v1::national_stats_client::NationalStatsClient<Client> {
    let token = federation.province_token(
        province,
        Level::Province,
        &format!("{province}0000"),
        Role::Operator,
    );
    xueji_proto::stats::v1::national_stats_client::NationalStatsClient::new(
        channel(
            federation,
            &federation.national.address(),
            province,
            "stats",
            &token,
        )
        .await,
    )
}

/// The province the national index names as the owner of `number`, if it holds the number.
pub async fn index_owner(federation: &Federation, number: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT s.province FROM national.numbers n JOIN national.students s ON s.id = n.student_id
         WHERE n.number = $1",
    )
    .bind(number)
    .fetch_optional(&federation.national.pool)
    .await
    .expect("index")
}
