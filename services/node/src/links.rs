//! How the node's services reach each other and their peers: over the same mutual-TLS gRPC API
//! any other node would use, with the node's certificate and a service token minted from its
//! key.

use std::sync::Arc;

use futures::future::BoxFuture;
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use xueji_auth::{Level, Role, TokenSigner};
use xueji_codes::SchoolCode;
use xueji_identity::{IdentityError, directory::SchoolSource, domain::School};
use xueji_proto::schools::v1::{self as pb, school_intake_client::SchoolIntakeClient};
use xueji_rpc::{BearerToken, ClientConfig, TlsFiles};
use xueji_schools::links::PeerCredentials;

use crate::{client::mint, config::NodeConfig};

/// The node's credentials as a client of `level`/`jurisdiction`, named `user`.
pub fn credentials(
    config: &NodeConfig,
    signer: &TokenSigner,
    user: &str,
    level: Level,
    jurisdiction: &str,
) -> anyhow::Result<PeerCredentials> {
    Ok(PeerCredentials {
        client: ClientConfig {
            tls: TlsFiles::from_dir(&config.pki_dir, "node")?,
            server_name: "localhost".into(),
            request_timeout: config.request_timeout(),
        },
        token: mint(signer, user, level, jurisdiction, Role::Operator)?,
    })
}

/// The province's replica of the published school list, as registration reads it: the schools
/// service's `GetSchool`.
#[derive(Debug, Clone)]
pub struct ReplicaSchools {
    client: SchoolIntakeClient<InterceptedService<Channel, BearerToken>>,
}

impl ReplicaSchools {
    pub fn new(address: &str, credentials: &PeerCredentials) -> anyhow::Result<Arc<Self>> {
        let channel = xueji_rpc::connect_lazy(address, &credentials.client)?;
        let token = BearerToken::new(&credentials.token)?;
        Ok(Arc::new(Self {
            client: SchoolIntakeClient::new(InterceptedService::new(channel, token)),
        }))
    }
}

impl SchoolSource for ReplicaSchools {
    fn find<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Option<School>, IdentityError>> {
        Box::pin(async move {
            let answer = self
                .client
                .clone()
                .get_school(pb::GetSchoolRequest {
                    code: code.to_string(),
                })
                .await;
            let school = match answer {
                Ok(response) => response.into_inner().school,
                Err(status) if status.code() == Code::NotFound => return Ok(None),
                Err(status) => {
                    return Err(IdentityError::Unavailable(format!(
                        "the school list did not answer: {}",
                        status.message()
                    )));
                }
            };
            Ok(school.and_then(|school| to_identity_school(&school)))
        })
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
    })
}
