//! The identity service's ports wired to gRPC: the province's school replica
//! (`SchoolIntake`), as registration reads it, and the national index (`NationalIndex`), as the
//! outbox delivers to it. Each talks the same mutual-TLS API any other node would use, with the
//! identity service's certificate and token, checking the peer's identity.

use std::sync::Arc;

use futures::future::BoxFuture;
use xueji_client::replica::{ReplicaClient, published_school, replica_client, stages_of};
use xueji_codes::SchoolCode;
use xueji_proto::national::v1::{self as npb, national_index_client::NationalIndexClient};
use xueji_proto::schools::v1 as pb;
use xueji_rpc::{ExpectedServer, PeerChannel, PeerCredentials};

use crate::{
    IdentityError,
    directory::SchoolSource,
    domain::outbox::{DeliveryOutcome, Notice, NoticeKind, OutboxBody, OutboxMessage},
    domain::{
        School,
        succession::{Succession, SuccessionCursor, SuccessionKind},
    },
    national::NationalLink,
};

/// The province's replica of the published school list, as registration reads it: the schools
/// service's `GetSchool`.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaSchools {
    client: ReplicaClient,
}

impl ReplicaSchools {
    /// The replica of `province`, served at `address`.
    pub(crate) fn new(
        address: &str,
        province: &str,
        credentials: &PeerCredentials,
    ) -> Result<Arc<Self>, IdentityError> {
        Ok(Arc::new(Self {
            client: replica_client(credentials, address, province)?,
        }))
    }
}

impl SchoolSource for ReplicaSchools {
    fn find<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Option<School>, IdentityError>> {
        Box::pin(async move {
            let school = published_school(&self.client, code)
                .await
                .map_err(IdentityError::Unavailable)?;
            Ok(school.and_then(|school| to_identity_school(&school)))
        })
    }

    fn successions<'a>(
        &'a self,
        after: &'a SuccessionCursor,
    ) -> BoxFuture<'a, Result<Vec<Succession>, IdentityError>> {
        Box::pin(async move {
            let listed = self
                .client
                .clone()
                .list_successions(pb::ListSuccessionsRequest {
                    after_version: after.version.max(0) as u64,
                    after_code: after.predecessor.clone(),
                    page_size: 0,
                })
                .await
                .map_err(|status| {
                    IdentityError::Unavailable(format!(
                        "the school list did not answer which codes were voided: {}",
                        status.message()
                    ))
                })?
                .into_inner();
            listed.successions.iter().map(to_succession).collect()
        })
    }
}

/// A succession as the replica lists it; a value this node does not know is an error, never
/// guessed (a student moved to the wrong school is worse than one moved late).
fn to_succession(succession: &pb::Succession) -> Result<Succession, IdentityError> {
    let link = succession
        .link
        .as_ref()
        .ok_or_else(|| IdentityError::Internal("a succession without its link".into()))?;
    let unknown = |what: &str, value: &str| {
        IdentityError::Internal(format!("the school list sent an unknown {what}: {value:?}"))
    };
    let kind = match pb::LineageKind::try_from(link.kind) {
        Ok(pb::LineageKind::Merge) => SuccessionKind::Merge,
        Ok(pb::LineageKind::CategoryChange) => SuccessionKind::CategoryChange,
        _ => return Err(unknown("lineage kind", &link.kind.to_string())),
    };
    Ok(Succession {
        predecessor: link
            .predecessor
            .parse()
            .map_err(|_| unknown("school code", &link.predecessor))?,
        successor: link
            .successor
            .parse()
            .map_err(|_| unknown("school code", &link.successor))?,
        kind,
        effective_date: link
            .effective_date
            .parse()
            .map_err(|_| unknown("date", &link.effective_date))?,
        version: i64::try_from(succession.version)
            .map_err(|_| unknown("version", &succession.version.to_string()))?,
    })
}

/// What registration needs of a published school; `None` if the record is unusable.
fn to_identity_school(school: &pb::School) -> Option<School> {
    let profile = school.profile.as_ref()?;
    Some(School {
        code: school.code.parse().ok()?,
        name: profile.name.clone(),
        division: profile.division.parse().ok()?,
        registry_authority: profile.registry_authority.parse().ok()?,
        open_from: school.open_from.parse().ok()?,
        open_until: match school.open_until.as_str() {
            "" => None,
            date => Some(date.parse().ok()?),
        },
        stages: stages_of(profile)?,
    })
}

/// The national index as the identity service's outbox reaches it: `Deliver` and
/// `PullNotices` over mutual TLS.
#[derive(Debug, Clone)]
pub(crate) struct NationalIndexLink {
    client: NationalIndexClient<PeerChannel>,
}

impl NationalIndexLink {
    pub(crate) fn new(
        address: &str,
        credentials: &PeerCredentials,
    ) -> Result<Arc<Self>, IdentityError> {
        Ok(Arc::new(Self {
            client: NationalIndexClient::new(
                credentials.channel(address, ExpectedServer::national("national"))?,
            )
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES),
        }))
    }
}

fn unavailable(status: tonic::Status) -> IdentityError {
    IdentityError::Unavailable(format!(
        "the national node did not take the delivery: {}",
        status.message()
    ))
}

fn to_wire(message: &OutboxMessage) -> npb::OutboxMessage {
    use npb::outbox_message::Body;
    let body = match &message.body {
        OutboxBody::IndexStudent {
            registry_number,
            aliases,
            id_number,
            duplicate_digest,
            status,
            migrated,
        } => Body::IndexStudent(npb::IndexStudent {
            migrated: *migrated,
            registry_number: registry_number.clone(),
            aliases: aliases.clone(),
            id_number: id_number.clone().unwrap_or_default(),
            duplicate_digest: duplicate_digest.clone(),
            status: match status.as_str() {
                "active" => npb::IndexStatus::Active,
                "ended" => npb::IndexStatus::Ended,
                "finished" => npb::IndexStatus::Finished,
                _ => npb::IndexStatus::Pending,
            } as i32,
        }),
        OutboxBody::ClaimIdNumber {
            registry_number,
            id_number,
            ..
        } => Body::ClaimIdNumber(npb::ClaimIdNumber {
            registry_number: registry_number.clone(),
            id_number: id_number.clone(),
        }),
        OutboxBody::ReleaseStudent { registry_number } => {
            Body::ReleaseStudent(npb::ReleaseStudent {
                registry_number: registry_number.clone(),
            })
        }
        OutboxBody::ResolveProblem {
            registry_number,
            problem,
            other_registry_number,
        } => Body::ResolveProblem(npb::ResolveProblem {
            registry_number: registry_number.clone(),
            kind: match problem {
                NoticeKind::DuplicateIdNumber => {
                    xueji_proto::identity::v1::ProblemKind::DuplicateIdNumber
                }
                NoticeKind::DuplicateName => xueji_proto::identity::v1::ProblemKind::DuplicateName,
                // Never a problem record (no flag holds it), so never resolved: the national
                // node refuses an unspecified kind.
                NoticeKind::ContinuedElsewhere => {
                    xueji_proto::identity::v1::ProblemKind::Unspecified
                }
            } as i32,
            other_registry_number: other_registry_number.clone(),
        }),
    };
    npb::OutboxMessage {
        message_id: message.message_id.to_string(),
        body: Some(body),
    }
}

impl NationalLink for NationalIndexLink {
    fn deliver<'a>(
        &'a self,
        messages: &'a [OutboxMessage],
    ) -> BoxFuture<'a, Result<Vec<DeliveryOutcome>, IdentityError>> {
        Box::pin(async move {
            let response = self
                .client
                .clone()
                .deliver(npb::DeliverRequest {
                    messages: messages.iter().map(to_wire).collect(),
                })
                .await
                .map_err(unavailable)?
                .into_inner();
            response
                .outcomes
                .into_iter()
                .zip(messages)
                .map(|(outcome, message)| {
                    use npb::delivery_outcome::Result as Wire;
                    if outcome.message_id != message.message_id.to_string() {
                        return Err(IdentityError::Unavailable(
                            "the national node answered out of order".into(),
                        ));
                    }
                    Ok(match outcome.result {
                        Some(Wire::ClaimGranted(_)) => DeliveryOutcome::Granted,
                        Some(Wire::ClaimRefused(refused)) => DeliveryOutcome::Refused {
                            owner_province: refused.owner_province,
                            owner_registry_number: refused.owner_registry_number,
                        },
                        Some(Wire::Applied(_)) => DeliveryOutcome::Applied,
                        Some(Wire::Rejected(rejected)) => DeliveryOutcome::Rejected {
                            reason: rejected.reason,
                        },
                        None => {
                            return Err(IdentityError::Unavailable(
                                "the national node answered an empty outcome".into(),
                            ));
                        }
                    })
                })
                .collect()
        })
    }

    fn id_number_holder<'a>(
        &'a self,
        id_number: &'a str,
    ) -> BoxFuture<'a, Result<Option<(String, String)>, IdentityError>> {
        Box::pin(async move {
            let answer = self
                .client
                .clone()
                .check_id_number(npb::CheckIdNumberRequest {
                    id_number: id_number.to_owned(),
                })
                .await
                .map_err(|status| {
                    IdentityError::Unavailable(format!(
                        "the national duplicate check could not be made ({}); try again when the \
                         national node is reachable",
                        status.message()
                    ))
                })?
                .into_inner();
            Ok(answer
                .held
                .then_some((answer.province, answer.registry_number)))
        })
    }

    fn notices(&self, after: i64) -> BoxFuture<'_, Result<Vec<Notice>, IdentityError>> {
        Box::pin(async move {
            let response = self
                .client
                .clone()
                .pull_notices(npb::PullNoticesRequest {
                    // Sequences start at 1; a cursor below 0 means "from the start".
                    after_sequence: u64::try_from(after.max(0)).unwrap_or(0),
                    limit: 500,
                })
                .await
                .map_err(unavailable)?
                .into_inner();
            response.notices.into_iter().map(notice_of).collect()
        })
    }
}

/// A notice as the national node sent it; a kind or a sequence this node does not know is an
/// error, never read as some other kind.
fn notice_of(notice: npb::Notice) -> Result<Notice, IdentityError> {
    use xueji_proto::identity::v1::ProblemKind;
    let kind = match ProblemKind::try_from(notice.kind) {
        _ if notice.continued_elsewhere => NoticeKind::ContinuedElsewhere,
        Ok(ProblemKind::DuplicateIdNumber) => NoticeKind::DuplicateIdNumber,
        Ok(ProblemKind::DuplicateName) => NoticeKind::DuplicateName,
        _ => {
            return Err(IdentityError::Unavailable(format!(
                "the national node sent a notice of an unknown kind ({}); this node needs an \
                 upgrade before it can take it",
                notice.kind
            )));
        }
    };
    let sequence = i64::try_from(notice.sequence).map_err(|_| {
        IdentityError::Unavailable(format!(
            "the national node sent a notice numbered {}, past what this node counts",
            notice.sequence
        ))
    })?;
    Ok(Notice {
        sequence,
        registry_number: notice.registry_number,
        kind,
        other_province: notice.other_province,
        other_registry_number: notice.other_registry_number,
        detail: notice.detail,
        cleared: notice.cleared,
    })
}
