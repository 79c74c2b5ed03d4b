//! How the node's services reach each other and their peers: over the same mutual-TLS gRPC API
//! any other node would use, with the service's certificate, checking the peer's identity, and
//! a token of the service's own minted from the node's authority's key and renewed before it
//! expires.

use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use xueji_auth::{Authority, Grant, Level, RenewingToken, Role, TokenSigner};
use xueji_codes::{SchoolCode, Stage, StageOffered};
use xueji_identity::national::{
    DeliveryOutcome, NationalLink, Notice, NoticeKind, OutboxBody, OutboxMessage,
};
use xueji_identity::{
    IdentityError,
    directory::SchoolSource,
    domain::{
        School,
        succession::{Succession, SuccessionCursor, SuccessionKind},
    },
};
use xueji_proto::national::v1::{self as npb, national_index_client::NationalIndexClient};
use xueji_proto::schools::v1::{self as pb, school_intake_client::SchoolIntakeClient};
use xueji_rpc::{BearerToken, ExpectedServer, TlsSource};
use xueji_schools::links::PeerCredentials;

use crate::config::NodeConfig;

/// How long a service's own token lives; it is renewed when half of that has passed.
const SERVICE_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// The credentials `service` calls peers with: its own certificate (the node's when the PKI has
/// none for it) and a token of its own, named `user`, granting `level`/`jurisdiction` to
/// `audience` and renewed before it expires.
pub fn credentials(
    config: &NodeConfig,
    signer: &Arc<TokenSigner>,
    service: &str,
    user: &str,
    level: Level,
    jurisdiction: &str,
    audience: Vec<Authority>,
) -> anyhow::Result<PeerCredentials> {
    let stem = crate::pki::client_stem(&config.pki_dir, service);
    let token = RenewingToken::new(
        signer.clone(),
        Grant {
            user: user.to_owned(),
            level,
            jurisdiction: jurisdiction.to_owned(),
            role: Role::Operator,
            audience,
        },
        config.clock.clone(),
        SERVICE_TOKEN_LIFETIME,
    )
    .with_context(|| format!("the {service} service's own token"))?;
    Ok(PeerCredentials {
        tls: TlsSource::from_dir(&config.pki_dir, &stem)?,
        request_timeout: config.request_timeout(),
        token: BearerToken::renewing(Arc::new(token)),
        also_accept: config.also_accept(),
    })
}

/// The province's replica of the published school list, as registration reads it: the schools
/// service's `GetSchool`.
#[derive(Debug, Clone)]
pub struct ReplicaSchools {
    client: SchoolIntakeClient<InterceptedService<Channel, BearerToken>>,
}

impl ReplicaSchools {
    /// The replica of `province`, served at `address`.
    pub fn new(
        address: &str,
        province: &str,
        credentials: &PeerCredentials,
    ) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            client: SchoolIntakeClient::new(
                credentials.channel(address, ExpectedServer::province(province, "schools"))?,
            ),
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

/// A school of the province's replica (`SchoolIntake.GetSchool`): `None` when the list does not
/// hold it; an error, in the user's terms, when the replica did not answer.
pub(crate) async fn published_school(
    client: &SchoolIntakeClient<InterceptedService<Channel, BearerToken>>,
    code: &SchoolCode,
) -> Result<Option<pb::School>, String> {
    match client
        .clone()
        .get_school(pb::GetSchoolRequest {
            code: code.to_string(),
        })
        .await
    {
        Ok(response) => Ok(response.into_inner().school),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(format!(
            "the school list did not answer: {}",
            status.message()
        )),
    }
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

/// The stages of a published profile; `None` if one is not a stage this node knows.
pub(crate) fn stages_of(profile: &pb::SchoolProfile) -> Option<Vec<StageOffered>> {
    profile
        .stages
        .iter()
        .map(|offered| {
            let stage = match pb::Stage::try_from(offered.stage).ok()? {
                pb::Stage::Primary => Stage::Primary,
                pb::Stage::Junior => Stage::Junior,
                pb::Stage::Senior => Stage::Senior,
                pb::Stage::Special => Stage::Special,
                pb::Stage::Unspecified => return None,
            };
            Some(StageOffered {
                stage,
                years: offered.years,
            })
        })
        .collect()
}

/// The national index as the identity service's outbox reaches it: `Deliver` and
/// `PullNotices` over mutual TLS.
#[derive(Debug, Clone)]
pub struct NationalIndexLink {
    client: NationalIndexClient<InterceptedService<Channel, BearerToken>>,
}

impl NationalIndexLink {
    pub fn new(address: &str, credentials: &PeerCredentials) -> anyhow::Result<Arc<Self>> {
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
                    after_sequence: u64::try_from(after).unwrap_or_default(),
                    limit: 500,
                })
                .await
                .map_err(unavailable)?
                .into_inner();
            Ok(response
                .notices
                .into_iter()
                .map(|notice| Notice {
                    sequence: i64::try_from(notice.sequence).unwrap_or(i64::MAX),
                    registry_number: notice.registry_number,
                    kind: if notice.kind
                        == xueji_proto::identity::v1::ProblemKind::DuplicateIdNumber as i32
                    {
                        NoticeKind::DuplicateIdNumber
                    } else {
                        NoticeKind::DuplicateName
                    },
                    other_province: notice.other_province,
                    other_registry_number: notice.other_registry_number,
                    detail: notice.detail,
                    cleared: notice.cleared,
                })
                .collect())
        })
    }
}
