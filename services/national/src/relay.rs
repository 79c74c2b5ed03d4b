//! The relay of cross-province transfer messages: provinces' transfer services hand messages
//! over (`TransferRelay.RelayMessages`), the national node keeps each once and forwards them to
//! the province they are for (`TransferPeer.ReceiveMessages`), in the order taken.
//!
//! A hold request is addressed to "the province owning the student": the relay finds it in the
//! index (registry number or resident ID number) and forwards it there, or answers the
//! receiving province at once with a refusal (2001) that names no province and no record. A
//! `record_moved` message moves the student's index entry to the receiving province in the
//! transaction that takes it.

use std::{sync::Arc, time::Duration};

use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;
use xueji_auth::Level;
use xueji_proto::transfers::v1::{
    self as pb,
    saga_message::Body,
    transfer_relay_server::{TransferRelay, TransferRelayServer},
};

use crate::{
    NationalError,
    index_key::IndexKey,
    provinces::ProvinceClients,
    store::{
        Store,
        relay::{Addressed, OwnerKey, Relayed, RelayedKind},
    },
};

/// At most this many messages per call.
const MAX_BATCH: usize = 500;

/// The relay: the handler provinces call and the forwarder.
#[derive(Debug, Clone)]
pub struct Relay {
    store: Store,
    provinces: Arc<ProvinceClients>,
    due: Arc<Notify>,
    /// Hold requests by ID number find the owner by its keyed digest.
    key: Arc<IndexKey>,
    /// The federation's root: the evidence of relayed decisions is checked against it.
    notary: xueji_rpc::TlsSource,
}

/// The id of the national node's own answer to a message (derived: taking the message again
/// answers nothing new).
fn answer_id(message: Uuid) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(message.as_bytes());
    hash.update(b"answered by the national relay");
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.finalize()[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// A message to the student's owner, addressed to `owner`, or answered with a refusal that
/// reveals nothing when no other province holds the student.
fn readdress(message: &Relayed, owner: Option<&str>) -> Addressed {
    // Decoded once when taken (`check`); a body that did not would have been refused there.
    let mut decoded = pb::SagaMessage::decode(message.body.as_slice()).unwrap_or_default();
    match owner {
        Some(owner) => {
            decoded.to_province = owner.to_owned();
            Addressed {
                message_id: message.message_id,
                to_province: owner.to_owned(),
                body: decoded.encode_to_vec(),
            }
        }
        None => {
            let id = answer_id(message.message_id);
            let answer = pb::SagaMessage {
                message_id: id.to_string(),
                transfer_id: decoded.transfer_id.clone(),
                from_province: String::new(),
                to_province: decoded.from_province.clone(),
                traceparent: decoded.traceparent.clone(),
                body: Some(Body::HoldAnswer(pb::HoldAnswer {
                    held: false,
                    refusal: "DATA_MISMATCH".into(),
                    national_code: "2001".into(),
                    // Word for word what a province answers for a live student whose name or
                    // birth date does not match: a stranger cannot tell the two apart.
                    message: "the data given do not match a live enrollment".into(),
                    ..Default::default()
                })),
            };
            Addressed {
                message_id: id,
                to_province: decoded.from_province,
                body: answer.encode_to_vec(),
            }
        }
    }
}

/// A shortened, printable form of untrusted text for a refusal.
fn shown(text: &str) -> String {
    format!("{:?}", text.chars().take(40).collect::<String>())
}

/// The relayed form of a message from `from`, checked for its shape; the rules of the
/// transfer's binding are the store's (`Store::take_relayed`). A message that fails answers
/// its refusal, naming the field: the other messages of the call go on.
/// Each decision a task update carries evidence for must be signed by the sender's transfers
/// service (a certificate of the sender's province, chaining to the root) over a decision of
/// this transfer: the relay forwards no decision a province did not sign itself. Which
/// decisions an update must carry evidence for is the receiver's to check (it knows the task).
/// The part of a task copy the relay reads: which province each step's party is in.
#[derive(serde::Deserialize)]
struct CopySteps {
    steps: Vec<CopyStep>,
}

#[derive(serde::Deserialize)]
struct CopyStep {
    party: CopyParty,
}

#[derive(serde::Deserialize)]
struct CopyParty {
    province: String,
}

/// Checks the evidence an update carries: each signed decision is about this transfer and
/// signed by one of its two provinces' (the sender's, or the addressee's own signatures the
/// sender passes back). Answers the provinces that approved every step of theirs in an
/// approved copy, by their own signatures: what lets a record move later.
fn check_signed_decisions(
    notary: &xueji_rpc::TlsSource,
    from: &str,
    to: &str,
    transfer_id: Uuid,
    update: &pb::TaskUpdate,
) -> Result<Vec<String>, String> {
    if update.signed_decisions.len() > 64 {
        return Err("task_update.signed_decisions: more than 64".into());
    }
    // (province, step) of every approval signed by the step's own province.
    let mut signed_approvals: Vec<(String, u64)> = Vec::new();
    for (index, signed) in update.signed_decisions.iter().enumerate() {
        let field = format!("task_update.signed_decisions[{index}]");
        let about: serde_json::Value = serde_json::from_slice(&signed.payload)
            .map_err(|_| format!("{field}.payload: not a signed decision"))?;
        if about.get("transfer_id").and_then(|v| v.as_str()) != Some(&transfer_id.to_string()) {
            return Err(format!("{field}.payload: a decision of another transfer"));
        }
        let evidence = xueji_rpc::Evidence {
            scheme: u16::try_from(signed.scheme)
                .map_err(|_| format!("{field}.scheme: out of range"))?,
            signature: signed.signature.clone(),
            certificates: signed.certificates.clone(),
        };
        let signer = notary
            .verify_evidence(&signed.payload, &evidence, std::time::SystemTime::now())
            .map_err(|e| format!("{field}: {e}"))?;
        let Some(signer_province) = signer.province().filter(|p| *p == from || *p == to) else {
            return Err(format!(
                "{field}: signed by {signer}, not by province {from}, which sends it"
            ));
        };
        let approves = about.get("outcome").and_then(|v| v.as_str()) == Some("approve")
            && about.get("party_province").and_then(|v| v.as_str()) == Some(signer_province);
        if let (true, Some(step)) = (approves, about.get("step").and_then(|v| v.as_u64())) {
            signed_approvals.push((signer_province.to_owned(), step));
        }
    }
    if update.state != "approved" {
        return Ok(Vec::new());
    }
    let Ok(copy) = serde_json::from_str::<CopySteps>(&update.task_json) else {
        return Ok(Vec::new());
    };
    Ok([from, to]
        .into_iter()
        .filter(|province| {
            let mut own = copy
                .steps
                .iter()
                .enumerate()
                .filter(|(_, step)| step.party.province == *province)
                .peekable();
            own.peek().is_some()
                && own.all(|(position, _)| {
                    signed_approvals
                        .iter()
                        .any(|(p, step)| p == province && *step == position as u64)
                })
        })
        .map(str::to_owned)
        .collect())
}

fn check(
    key: &IndexKey,
    notary: &xueji_rpc::TlsSource,
    from: &str,
    message: &pb::SagaMessage,
) -> Result<Relayed, String> {
    let message_id: Uuid = message
        .message_id
        .parse()
        .map_err(|_| "message_id: not a UUID".to_owned())?;
    let transfer_id: Uuid = message
        .transfer_id
        .parse()
        .map_err(|_| "transfer_id: not a UUID".to_owned())?;
    if message.from_province != from {
        return Err(format!(
            "from_province: the message claims province {}; the caller is {from}",
            shown(&message.from_province)
        ));
    }
    if message.traceparent.len() > 128 {
        return Err("traceparent: longer than 128 characters".into());
    }
    let to = message.to_province.as_str();
    let kind = match &message.body {
        None => return Err("body: the message says nothing".into()),
        Some(Body::HoldRequest(request)) => {
            if !to.is_empty() {
                return Err(
                    "to_province: a hold request goes to the province the national index names \
                     (leave it empty)"
                        .into(),
                );
            }
            let key = if !request.registry_number.is_empty() {
                OwnerKey::RegistryNumber(request.registry_number.clone())
            } else if !request.id_number.is_empty() {
                // The index finds ID numbers by their keyed digest only. A malformed one
                // matches nobody and answers as a number nobody holds.
                OwnerKey::IdDigest(key.id_digest_of_text(&request.id_number))
            } else {
                return Err(
                    "hold_request.registry_number: a registry number or resident ID number is \
                     required"
                        .into(),
                );
            };
            RelayedKind::HoldRequest(key)
        }
        Some(Body::HoldAnswer(answer)) => RelayedKind::HoldAnswer {
            held_number: answer.held.then(|| answer.registry_number.clone()),
        },
        Some(Body::TaskUpdate(update)) => RelayedKind::TaskUpdate {
            approved_by: check_signed_decisions(notary, from, to, transfer_id, update)?,
        },
        Some(Body::CancelRequest(_)) => RelayedKind::CancelRequest,
        Some(Body::RecordMoved(moved)) => {
            let number = moved
                .student
                .as_ref()
                .map(|s| s.registry_number.clone())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| "record_moved.student: the student is required".to_owned())?;
            RelayedKind::RecordMoved(number)
        }
    };
    if !matches!(kind, RelayedKind::HoldRequest(_))
        && (to.len() != 2 || !to.bytes().all(|b| b.is_ascii_digit()) || to == from)
    {
        return Err(format!(
            "to_province: {} is not another province",
            shown(to)
        ));
    }
    Ok(Relayed {
        message_id,
        transfer_id,
        to_province: to.to_owned(),
        body: message.encode_to_vec(),
        kind,
    })
}

impl Relay {
    pub fn new(
        store: Store,
        provinces: Arc<ProvinceClients>,
        key: Arc<IndexKey>,
        notary: xueji_rpc::TlsSource,
    ) -> Self {
        Self {
            key,
            notary,
            store,
            provinces,
            due: Arc::new(Notify::new()),
        }
    }

    pub fn into_service(self) -> TransferRelayServer<Self> {
        TransferRelayServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    /// Forwards every province's waiting messages; answers how many went.
    pub async fn forward_all(&self) -> Result<usize, NationalError> {
        let mut forwarded = 0;
        for province in self.store.relay_destinations().await? {
            loop {
                let provinces = self.provinces.clone();
                let to = province.clone();
                let sent = self
                    .store
                    .forward_relayed(&province, 200, |pending| async move {
                        let address = pending.address.ok_or_else(|| {
                            NationalError::Unavailable(format!(
                                "province {to} is not in the directory"
                            ))
                        })?;
                        let messages = pending
                            .bodies
                            .iter()
                            .map(|body| {
                                pb::SagaMessage::decode(body.as_slice()).map_err(|e| {
                                    NationalError::FailedPrecondition(format!(
                                        "a relayed message does not read: {e}"
                                    ))
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        provinces.forward(&to, &address, messages).await
                    })
                    .await;
                match sent {
                    Ok(Some(n)) if n == 200 => forwarded += n,
                    Ok(Some(n)) => {
                        forwarded += n;
                        break;
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%province, %error, "relaying transfer messages failed; retried later");
                        break;
                    }
                }
            }
        }
        Ok(forwarded)
    }

    /// Forwards as soon as messages arrive, and every `interval` (a province that was down).
    pub async fn run(self, interval: Duration) {
        loop {
            if let Err(error) = self
                .forward_all()
                .instrument(tracing::debug_span!("relay_forward"))
                .await
            {
                tracing::warn!(%error, "relaying transfer messages failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.due.notified() => {}
            }
        }
    }
}

#[tonic::async_trait]
impl TransferRelay for Relay {
    async fn relay_messages(
        &self,
        request: Request<pb::RelayMessagesRequest>,
    ) -> Result<Response<pb::RelayMessagesResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let from = match (caller.level, caller.jurisdiction.province_digits()) {
            (Level::Province, Some(province)) => province.to_owned(),
            _ => {
                return Err(Status::from(NationalError::PermissionDenied(
                    "the relay takes messages from provinces' transfer services only".into(),
                )));
            }
        };
        let messages = request.into_inner().messages;
        if messages.len() > MAX_BATCH {
            return Err(NationalError::invalid(
                "messages",
                format!("at most {MAX_BATCH} messages per call"),
            )
            .into());
        }
        let mut relayed = Vec::with_capacity(messages.len());
        let mut refused = Vec::new();
        for message in &messages {
            let span = tracing::info_span!("relay_message", transfer = %message.transfer_id, %from, to = %message.to_province);
            xueji_telemetry::follow(&span, &message.traceparent);
            let _entered = span.enter();
            match check(&self.key, &self.notary, &from, message) {
                Ok(checked) => relayed.push(checked),
                Err(reason) => refused.push(pb::RelayRefusal {
                    message_id: message.message_id.chars().take(40).collect(),
                    reason,
                }),
            }
        }
        let taken = self.store.take_relayed(&from, &relayed, &readdress).await?;
        for (message_id, reason) in &taken.refused {
            tracing::warn!(%from, %message_id, %reason, "the relay refused a transfer message");
        }
        refused.extend(
            taken
                .refused
                .into_iter()
                .map(|(id, reason)| pb::RelayRefusal {
                    message_id: id.to_string(),
                    reason,
                }),
        );
        self.due.notify_one();
        Ok(Response::new(pb::RelayMessagesResponse {
            accepted: taken.accepted,
            refused,
        }))
    }
}

#[cfg(test)]
mod fuzz {
    //! The relay's decoder of messages, fuzzed: any field of any kind, with non-ASCII and
    //! overlong text, answers a relayed form or a refusal naming a field, never a panic; and a
    //! message is never taken from anyone but its caller.

    use proptest::prelude::*;

    use super::*;

    fn hostile_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "\\PC{0,300}",
            "[0-9０-９]{0,40}",
            "3[345]",
            "[0-9a-f-]{36}",
        ]
    }

    fn body() -> impl Strategy<Value = Option<Body>> {
        (
            0..6u8,
            hostile_text(),
            hostile_text(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..200),
            any::<u32>(),
        )
            .prop_map(|(kind, a, b, flag, bytes, n)| match kind {
                0 => None,
                1 => Some(Body::HoldRequest(pb::HoldRequest {
                    registry_number: a,
                    id_number: b,
                    ..Default::default()
                })),
                2 => Some(Body::HoldAnswer(pb::HoldAnswer {
                    held: flag,
                    registry_number: a,
                    message: b,
                    ..Default::default()
                })),
                3 => Some(Body::TaskUpdate(pb::TaskUpdate {
                    task_json: a,
                    state: b,
                    signed_decisions: vec![pb::SignedDecision {
                        step: n,
                        payload: bytes.clone(),
                        scheme: n,
                        signature: bytes.clone(),
                        certificates: vec![bytes],
                    }],
                    ..Default::default()
                })),
                4 => Some(Body::CancelRequest(pb::CancelRequest {
                    by: a,
                    reason: b,
                    ..Default::default()
                })),
                _ => Some(Body::RecordMoved(pb::RecordMoved {
                    student: flag.then(|| xueji_proto::identity::v1::MovedStudent {
                        registry_number: a,
                        name: b,
                        ..Default::default()
                    }),
                })),
            })
    }

    fn notary() -> &'static xueji_rpc::TlsSource {
        static NOTARY: std::sync::OnceLock<xueji_rpc::TlsSource> = std::sync::OnceLock::new();
        NOTARY.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            xueji_pki::init_federation(dir.path(), &["35", "34"]).unwrap();
            let files =
                xueji_rpc::TlsFiles::from_dir(&dir.path().join("national"), "national").unwrap();
            xueji_rpc::TlsSource::fixed(&files).unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        #[test]
        fn hostile_messages_answer_a_refusal_naming_a_field(
            message_id in prop_oneof![hostile_text(), Just(Uuid::new_v4().to_string())],
            transfer_id in prop_oneof![hostile_text(), Just(Uuid::new_v4().to_string())],
            from_province in prop_oneof![hostile_text(), Just("34".to_owned())],
            to_province in hostile_text(),
            traceparent in hostile_text(),
            body in body(),
        ) {
            let key = IndexKey::from_secret([3; 32]);
            let message = pb::SagaMessage {
                message_id,
                transfer_id,
                from_province,
                to_province,
                traceparent,
                body,
            };
            match check(&key, notary(), "34", &message) {
                Ok(relayed) => {
                    prop_assert_eq!(&message.from_province, "34");
                    prop_assert!(relayed.to_province.is_empty()
                        || relayed.to_province.bytes().all(|b| b.is_ascii_digit()));
                }
                Err(reason) => prop_assert!(reason.contains(':'), "{}", reason),
            }
        }
    }
}
