//! The registry's clients to other services: the national authority (for a provincial node)
//! and the provinces' identity services (for the national node's closure check).

use std::{collections::HashMap, sync::Arc};

use futures::future::BoxFuture;
use xueji_codes::SchoolCode;
use xueji_proto::{
    identity::v1::{GetSchoolWorkloadRequest, identity_service_client::IdentityServiceClient},
    schools::v1::school_authority_client::SchoolAuthorityClient,
};
use xueji_rpc::{ExpectedServer, PeerChannel, PeerCredentials};

use crate::{SchoolsError, domain::Workload};

pub type AuthorityClient = SchoolAuthorityClient<PeerChannel>;
type IdentityClient = IdentityServiceClient<PeerChannel>;

/// A client of the national authority at `address` (`host:port`), as a provincial replica
/// reaches it.
pub fn authority_client(
    credentials: &PeerCredentials,
    address: &str,
) -> Result<AuthorityClient, SchoolsError> {
    Ok(SchoolAuthorityClient::new(
        credentials.channel(address, ExpectedServer::national("schools"))?,
    )
    .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES))
}

/// Something that knows what still ties a school to students: the identity service of the
/// school's province (current enrollments and the pending-task lock every kind of task takes).
pub trait WorkloadSource: Send + Sync + std::fmt::Debug {
    fn workload<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Workload, SchoolsError>>;
}

/// The sum over every source; a closure is refused unless all of them answer zero.
#[derive(Debug, Clone, Default)]
pub struct Workloads(Vec<Arc<dyn WorkloadSource>>);

impl Workloads {
    pub fn new(sources: Vec<Arc<dyn WorkloadSource>>) -> Self {
        Self(sources)
    }

    pub async fn of(&self, code: &SchoolCode) -> Result<Workload, SchoolsError> {
        let mut total = Workload::default();
        for source in &self.0 {
            let part = source.workload(code).await?;
            total.active_enrollments += part.active_enrollments;
            total.pending_registrations += part.pending_registrations;
            total.suspended_enrollments += part.suspended_enrollments;
            total.pending_tasks += part.pending_tasks;
        }
        Ok(total)
    }
}

/// The provinces' identity services, by 2-digit province code.
#[derive(Debug, Clone)]
pub struct ProvinceIdentities {
    clients: HashMap<String, IdentityClient>,
}

impl ProvinceIdentities {
    /// `nodes`: province → `host:port` of its node.
    pub fn new(
        nodes: &HashMap<String, String>,
        credentials: &PeerCredentials,
    ) -> Result<Self, SchoolsError> {
        let mut clients = HashMap::new();
        for (province, address) in nodes {
            clients.insert(
                province.clone(),
                IdentityServiceClient::new(
                    credentials.channel(address, ExpectedServer::province(province, "identity"))?,
                ),
            );
        }
        Ok(Self { clients })
    }
}

impl WorkloadSource for ProvinceIdentities {
    fn workload<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Workload, SchoolsError>> {
        Box::pin(async move {
            let province = code.province_digits();
            let mut client = self.clients.get(province).cloned().ok_or_else(|| {
                SchoolsError::FailedPrecondition(format!(
                    "no node of province {province} is known, so nobody can confirm that school \
                     {code} has no students; it stays open"
                ))
            })?;
            let answer = client
                .get_school_workload(GetSchoolWorkloadRequest {
                    school_code: code.to_string(),
                })
                .await
                .map_err(|status| {
                    SchoolsError::Unavailable(format!(
                        "province {province} did not confirm the students of school {code}: {}",
                        status.message()
                    ))
                })?
                .into_inner();
            Ok(Workload {
                active_enrollments: answer.active_enrollments,
                pending_registrations: answer.pending_registrations,
                suspended_enrollments: answer.suspended_enrollments,
                pending_tasks: answer.pending_tasks,
            })
        })
    }
}
