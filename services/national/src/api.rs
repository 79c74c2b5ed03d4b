//! The gRPC handlers: decode, authorize, call the domain and the store, map errors (through
//! `From<NationalError> for Status`).

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Level, TokenVerifier};
use xueji_codes::RegistryKind;
use xueji_proto::national::v1::{
    self as pb, national_directory_server::NationalDirectory,
    national_directory_server::NationalDirectoryServer, national_index_server::NationalIndex,
    national_index_server::NationalIndexServer,
};
use xueji_validation::Violations;

use crate::{
    NationalError,
    domain::{self, Claim, Delivery, IndexStatus, IndexStudent, Lookup, Message, Outcome},
    index_key::IndexKey,
    provinces::ProvinceClients,
    store::{CONTINUED_ELSEWHERE, DeliveryActor, IndexEntry, Store},
    witness::{self, SignedHead},
};

/// Messages one delivery may carry.
const MAX_BATCH: usize = 1000;
const DEFAULT_NOTICES: u32 = 500;

#[derive(Debug, Clone)]
pub struct NationalApi {
    store: Store,
    provinces: Arc<ProvinceClients>,
    /// The token keys of the federation's authorities: witnessed audit heads are signed with
    /// them.
    keys: Arc<TokenVerifier>,
    /// Heads refused for contradicting one witnessed before (metrics).
    witness_alarms: Counter,
    /// What ID numbers and name digests are keyed with before the index sees them.
    key: Arc<IndexKey>,
}

impl NationalApi {
    pub fn new(
        store: Store,
        provinces: Arc<ProvinceClients>,
        keys: TokenVerifier,
        witness_alarms: Counter,
        key: Arc<IndexKey>,
    ) -> Self {
        Self {
            store,
            provinces,
            keys: Arc::new(keys),
            witness_alarms,
            key,
        }
    }

    pub fn index_service(&self) -> NationalIndexServer<Self> {
        NationalIndexServer::new(self.clone())
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    pub fn directory_service(&self) -> NationalDirectoryServer<Self> {
        NationalDirectoryServer::new(self.clone())
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    async fn find(&self, caller: &Caller, number: &str) -> Result<IndexEntry, NationalError> {
        let lookup = domain::parse_lookup("number", number)?;
        let entry = match &lookup {
            Lookup::RegistryNumber(number) => self.store.entry_by_number(number.as_str()).await?,
            Lookup::IdNumber(id) => {
                self.store
                    .entry_by_id_digest(&self.key.id_digest(id))
                    .await?
            }
        };
        // Outside the caller's province looks exactly like a number nobody holds.
        entry
            .filter(|entry| match caller.jurisdiction.province_digits() {
                None => true,
                Some(province) => province == entry.province,
            })
            .ok_or_else(|| NationalError::NotFound(format!("student {}", number.trim())))
    }
}

/// The province a province's service speaks for: the one its token (bound to its certificate
/// by the authenticator) names. Operators' tools do not deliver.
fn delivering_province<T>(request: &Request<T>) -> Result<String, Status> {
    let (caller, _) = xueji_rpc::caller(request)?;
    let peer = xueji_rpc::peer(request)?;
    if peer.name.starts_with("operator/") {
        return Err(Status::from(NationalError::PermissionDenied(
            "only a province's services deliver to the national index, not operators' tools".into(),
        )));
    }
    match (caller.level, caller.jurisdiction.province_digits()) {
        (Level::Province, Some(province)) => Ok(province.to_owned()),
        _ => Err(Status::from(NationalError::PermissionDenied(
            "the national index takes deliveries from province-level service identities only"
                .into(),
        ))),
    }
}

fn decode(
    key: &IndexKey,
    messages: Vec<pb::OutboxMessage>,
) -> Result<Vec<Delivery>, NationalError> {
    if messages.len() > MAX_BATCH {
        return Err(NationalError::invalid(
            "messages",
            format!("at most {MAX_BATCH} messages per delivery"),
        ));
    }
    let mut deliveries = Vec::with_capacity(messages.len());
    for (position, message) in messages.into_iter().enumerate() {
        // Without a usable id a message cannot be answered at all: the batch is refused.
        let message_id =
            domain::parse_message_id("message_id", &message.message_id).map_err(|violation| {
                NationalError::invalid(
                    "messages",
                    format!("message {position}: {}", violation.description),
                )
            })?;
        // A body that does not decode is this message's problem only.
        let mut violations = Violations::default();
        let body = match message.body {
            Some(pb::outbox_message::Body::IndexStudent(index)) => {
                let registry_number = violations.check(domain::parse_registry_number(
                    "index_student.registry_number",
                    &index.registry_number,
                ));
                let aliases: Vec<_> = index
                    .aliases
                    .iter()
                    .filter_map(|alias| {
                        violations.check(domain::parse_registry_number(
                            "index_student.aliases",
                            alias,
                        ))
                    })
                    .collect();
                let id_digest = match index.id_number.trim() {
                    "" => Some(None),
                    text => violations
                        .check(domain::parse_id_number("index_student.id_number", text))
                        .map(|id| Some(key.id_digest(&id))),
                };
                let digest = violations
                    .check(domain::parse_digest(
                        "index_student.duplicate_digest",
                        &index.duplicate_digest,
                    ))
                    .map(|digest| key.name_digest(&digest));
                let status = match pb::IndexStatus::try_from(index.status) {
                    Ok(pb::IndexStatus::Pending) => Some(IndexStatus::Pending),
                    Ok(pb::IndexStatus::Active) => Some(IndexStatus::Active),
                    Ok(pb::IndexStatus::Ended) => Some(IndexStatus::Ended),
                    Ok(pb::IndexStatus::Finished) => Some(IndexStatus::Finished),
                    _ => {
                        violations.add("index_student.status", "must be pending, active or ended");
                        None
                    }
                };
                match (registry_number, id_digest, digest, status) {
                    (
                        Some(registry_number),
                        Some(id_digest),
                        Some(duplicate_digest),
                        Some(status),
                    ) => Some(Message::Index(IndexStudent {
                        number_id_digest: (registry_number.kind() == RegistryKind::G)
                            .then(|| key.id_digest_of_text(&registry_number.as_str()[1..])),
                        registry_number,
                        aliases,
                        id_digest,
                        duplicate_digest,
                        status,
                        migrated: index.migrated,
                    })),
                    _ => None,
                }
            }
            Some(pb::outbox_message::Body::ClaimIdNumber(claim)) => {
                let registry_number = violations.check(domain::parse_registry_number(
                    "claim_id_number.registry_number",
                    &claim.registry_number,
                ));
                let id_number = violations.check(domain::parse_id_number(
                    "claim_id_number.id_number",
                    &claim.id_number,
                ));
                registry_number
                    .zip(id_number)
                    .map(|(registry_number, id_number)| {
                        Message::Claim(Claim {
                            registry_number,
                            id_digest: key.id_digest(&id_number),
                            id_number,
                        })
                    })
            }
            Some(pb::outbox_message::Body::ReleaseStudent(release)) => violations
                .check(domain::parse_registry_number(
                    "release_student.registry_number",
                    &release.registry_number,
                ))
                .map(|registry_number| Message::Release { registry_number }),
            Some(pb::outbox_message::Body::ResolveProblem(resolve)) => {
                let registry_number = violations.check(domain::parse_registry_number(
                    "resolve_problem.registry_number",
                    &resolve.registry_number,
                ));
                let other = violations.check(domain::parse_registry_number(
                    "resolve_problem.other_registry_number",
                    &resolve.other_registry_number,
                ));
                let kind = match resolve.kind() {
                    xueji_proto::identity::v1::ProblemKind::DuplicateIdNumber => {
                        Some("duplicate_id_number")
                    }
                    xueji_proto::identity::v1::ProblemKind::DuplicateName => Some("duplicate_name"),
                    _ => {
                        violations.add(
                            "resolve_problem.kind",
                            "must be a duplicate ID number or a duplicate name",
                        );
                        None
                    }
                };
                match (registry_number, kind, other) {
                    (Some(registry_number), Some(kind), Some(other_registry_number)) => {
                        Some(Message::Resolve {
                            registry_number,
                            kind,
                            other_registry_number,
                        })
                    }
                    _ => None,
                }
            }
            None => {
                violations.add("body", "a message needs a body");
                None
            }
        };
        let message = match (body, violations.into_vec()) {
            (Some(message), problems) if problems.is_empty() => message,
            (_, problems) => Message::Malformed {
                reason: xueji_validation::describe(&problems),
            },
        };
        deliveries.push(Delivery {
            message_id,
            message,
        });
    }
    Ok(deliveries)
}

/// Witnessed heads answered at most per page.
const WITNESSED_PER_PAGE: u32 = 1000;

fn outcome_to_wire(message_id: &uuid::Uuid, outcome: Outcome) -> pb::DeliveryOutcome {
    use pb::delivery_outcome::Result as Wire;
    pb::DeliveryOutcome {
        message_id: message_id.to_string(),
        result: Some(match outcome {
            Outcome::Applied => Wire::Applied(pb::Applied {}),
            Outcome::Granted => Wire::ClaimGranted(pb::Applied {}),
            Outcome::Refused {
                owner_province,
                owner_registry_number,
            } => Wire::ClaimRefused(pb::ClaimRefused {
                owner_province,
                owner_registry_number,
            }),
            Outcome::Rejected { reason } => Wire::Rejected(pb::MessageRejected { reason }),
        }),
    }
}

fn status_to_wire(status: &str) -> pb::IndexStatus {
    match IndexStatus::parse(status) {
        Some(IndexStatus::Pending) => pb::IndexStatus::Pending,
        Some(IndexStatus::Active) => pb::IndexStatus::Active,
        Some(IndexStatus::Ended) => pb::IndexStatus::Ended,
        Some(IndexStatus::Finished) => pb::IndexStatus::Finished,
        None => pb::IndexStatus::Unspecified,
    }
}

fn timestamp(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tonic::async_trait]
impl NationalIndex for NationalApi {
    async fn deliver(
        &self,
        request: Request<pb::DeliverRequest>,
    ) -> Result<Response<pb::DeliverResponse>, Status> {
        let province = delivering_province(&request)?;
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let actor = DeliveryActor {
            describe: caller.describe(),
            jurisdiction: caller.jurisdiction.as_string(),
            request_id: request_id.to_owned(),
        };
        let deliveries = decode(&self.key, request.into_inner().messages)?;
        let outcomes = self.store.deliver(&province, &deliveries, &actor).await?;
        Ok(Response::new(pb::DeliverResponse {
            outcomes: deliveries
                .iter()
                .zip(outcomes)
                .map(|(delivery, outcome)| outcome_to_wire(&delivery.message_id, outcome))
                .collect(),
        }))
    }

    async fn witness_audit_head(
        &self,
        request: Request<pb::WitnessAuditHeadRequest>,
    ) -> Result<Response<pb::WitnessAuditHeadResponse>, Status> {
        let peer = xueji_rpc::peer(&request)?.clone();
        let request = request.into_inner();
        let head = SignedHead {
            seq: i64::try_from(request.seq)
                .map_err(|_| NationalError::invalid("seq", "is out of range"))?,
            hash_hex: request.hash.trim().to_ascii_lowercase(),
            signed_at: request.signed_at,
            key_id: request.key_id,
            signature: request.signature,
        };
        let (signed_at, hash) = witness::check_signature(&self.keys, &peer, &head)?;
        let witnessed = self
            .store
            .witness(&peer.to_string(), &head, signed_at, &hash)
            .await
            .inspect_err(|error| {
                if matches!(error, NationalError::FailedPrecondition(_)) {
                    self.witness_alarms.inc();
                }
            })?;
        Ok(Response::new(pb::WitnessAuditHeadResponse {
            witnessed_seq: u64::try_from(witnessed).unwrap_or_default(),
        }))
    }

    async fn list_witnessed_heads(
        &self,
        request: Request<pb::ListWitnessedHeadsRequest>,
    ) -> Result<Response<pb::ListWitnessedHeadsResponse>, Status> {
        let peer = xueji_rpc::peer(&request)?.to_string();
        let request = request.into_inner();
        let limit = match request.page_size {
            0 => WITNESSED_PER_PAGE,
            n => n.min(WITNESSED_PER_PAGE),
        };
        let heads = self
            .store
            .witnessed(
                &peer,
                i64::try_from(request.after_seq).unwrap_or(i64::MAX),
                i64::from(limit),
            )
            .await?;
        Ok(Response::new(pb::ListWitnessedHeadsResponse {
            heads: heads
                .into_iter()
                .map(|head| pb::WitnessedHead {
                    seq: u64::try_from(head.seq).unwrap_or_default(),
                    hash: hex::encode(head.hash),
                    signed_at: timestamp(head.signed_at),
                    witnessed_at: timestamp(head.witnessed_at),
                })
                .collect(),
        }))
    }

    async fn check_id_number(
        &self,
        request: Request<pb::CheckIdNumberRequest>,
    ) -> Result<Response<pb::CheckIdNumberResponse>, Status> {
        let province = delivering_province(&request)?;
        let Ok(id_number) = request
            .get_ref()
            .id_number
            .trim()
            .to_uppercase()
            .parse::<xueji_codes::ResidentId>()
        else {
            return Err(
                NationalError::invalid("id_number", "is not a valid resident ID number").into(),
            );
        };
        let holder = self
            .store
            .id_number_holder(&province, &self.key.id_digest(&id_number))
            .await?;
        Ok(Response::new(match holder {
            Some((province, registry_number)) => pb::CheckIdNumberResponse {
                held: true,
                province,
                registry_number,
            },
            None => pb::CheckIdNumberResponse::default(),
        }))
    }

    async fn pull_notices(
        &self,
        request: Request<pb::PullNoticesRequest>,
    ) -> Result<Response<pb::PullNoticesResponse>, Status> {
        let province = delivering_province(&request)?;
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_NOTICES,
            n => n.min(5000),
        };
        let after = i64::try_from(request.after_sequence).map_err(|_| {
            NationalError::invalid("after_sequence", "is beyond any issued sequence")
        })?;
        let notices = self
            .store
            .notices(&province, after, i64::from(limit))
            .await?;
        Ok(Response::new(pb::PullNoticesResponse {
            notices: notices
                .into_iter()
                .map(|notice| pb::Notice {
                    sequence: u64::try_from(notice.sequence).unwrap_or_default(),
                    registry_number: notice.registry_number,
                    kind: match notice.kind.trim_start_matches("cleared_") {
                        "duplicate_id_number" => {
                            xueji_proto::identity::v1::ProblemKind::DuplicateIdNumber
                        }
                        CONTINUED_ELSEWHERE => xueji_proto::identity::v1::ProblemKind::Unspecified,
                        _ => xueji_proto::identity::v1::ProblemKind::DuplicateName,
                    } as i32,
                    cleared: notice.kind.starts_with("cleared_"),
                    continued_elsewhere: notice.kind == CONTINUED_ELSEWHERE,
                    other_province: notice.other_province,
                    other_registry_number: notice.other_registry_number,
                    detail: notice.detail,
                    noticed_at: timestamp(notice.noticed_at),
                })
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl NationalDirectory for NationalApi {
    async fn list_provinces(
        &self,
        request: Request<pb::ListProvincesRequest>,
    ) -> Result<Response<pb::ListProvincesResponse>, Status> {
        xueji_rpc::caller(&request)?;
        let provinces = self.store.provinces().await?;
        Ok(Response::new(pb::ListProvincesResponse {
            provinces: provinces
                .into_iter()
                .map(|p| pb::Province {
                    code: p.code,
                    name: p.name,
                    address: p.address,
                    identity: p.identity,
                    indexed_students: u64::try_from(p.indexed_students).unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn find_student(
        &self,
        request: Request<pb::FindStudentRequest>,
    ) -> Result<Response<pb::FindStudentResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let number = &request.get_ref().number;
        let entry = self.find(caller, number).await?;
        let address = self
            .store
            .province_address(&entry.province)
            .await?
            .ok_or_else(|| {
                NationalError::Unavailable(format!(
                    "province {} is not in the directory",
                    entry.province
                ))
            })?;
        let student = self
            .provinces
            .student(&entry.province, &address, &entry.registry_number)
            .await?
            .ok_or_else(|| NationalError::NotFound(format!("student {}", number.trim())))?;
        // The index only knows the province: the record itself says which school and county it
        // sits in, and a caller below the province sees it only inside its own jurisdiction,
        // answered exactly like a number nobody holds.
        if !caller.may_access_record(&student.school_code, &student.school_division) {
            return Err(NationalError::NotFound(format!("student {}", number.trim())).into());
        }
        Ok(Response::new(pb::FindStudentResponse {
            province: entry.province,
            student: Some(student),
        }))
    }

    async fn get_index_entry(
        &self,
        request: Request<pb::GetIndexEntryRequest>,
    ) -> Result<Response<pb::GetIndexEntryResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        if caller.level != Level::Ministry {
            return Err(Status::from(NationalError::PermissionDenied(
                "the national index is open to ministry operators only".into(),
            )));
        }
        let entry = self.find(caller, &request.get_ref().number).await?;
        let claimed_id_number = entry.claimed_id_number().unwrap_or_default();
        Ok(Response::new(pb::GetIndexEntryResponse {
            entry: Some(pb::IndexEntry {
                province: entry.province,
                registry_number: entry.registry_number,
                aliases: entry.aliases,
                status: status_to_wire(&entry.status) as i32,
                // The index keeps no ID number; a granted claim made the student's number
                // `G` + the ID number, so the claim reads from the number.
                claimed_id_number,
                updated_at: timestamp(entry.updated_at),
            }),
        }))
    }
}
