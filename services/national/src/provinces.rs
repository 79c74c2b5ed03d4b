//! How the national node asks a province: the province's identity service, over mutual TLS
//! with the national node's certificate and a ministry-level service token.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use xueji_pki::SpiffeId;
use xueji_proto::identity::v1::{
    GetStudentRequest, Student, identity_service_client::IdentityServiceClient,
};
use xueji_rpc::{BearerToken, ClientConfig, ExpectedServer, TlsSource};

use crate::NationalError;

type IdentityClient = IdentityServiceClient<InterceptedService<Channel, BearerToken>>;

/// Clients of the provinces' identity services, one channel per province and address, made on
/// first use.
#[derive(Debug)]
pub struct ProvinceClients {
    tls: TlsSource,
    request_timeout: Duration,
    token: BearerToken,
    /// Identities accepted besides a province's own (a standalone node's national certificate).
    also_accept: Vec<SpiffeId>,
    channels: Mutex<HashMap<(String, String), IdentityClient>>,
}

impl ProvinceClients {
    pub fn new(
        tls: TlsSource,
        request_timeout: Duration,
        token: BearerToken,
        also_accept: Vec<SpiffeId>,
    ) -> Self {
        Self {
            tls,
            request_timeout,
            token,
            also_accept,
            channels: Mutex::default(),
        }
    }

    /// A client that talks only to a server proving to be `province`'s identity service.
    fn client(&self, province: &str, address: &str) -> Result<IdentityClient, NationalError> {
        let mut channels = self.channels.lock().expect("not poisoned");
        let key = (province.to_owned(), address.to_owned());
        if let Some(client) = channels.get(&key) {
            return Ok(client.clone());
        }
        let server = self.also_accept.iter().cloned().fold(
            ExpectedServer::province(province, "identity"),
            ExpectedServer::or,
        );
        let config = ClientConfig {
            tls: self.tls.clone(),
            server,
            request_timeout: self.request_timeout,
        };
        let channel = xueji_rpc::connect_lazy(address, &config)
            .map_err(|e| NationalError::Unavailable(format!("cannot reach {address}: {e}")))?;
        let client =
            IdentityServiceClient::new(InterceptedService::new(channel, self.token.clone()));
        channels.insert(key, client.clone());
        Ok(client)
    }

    /// The student holding `number` in the province at `address`; `None` if it does not know it.
    pub async fn student(
        &self,
        province: &str,
        address: &str,
        number: &str,
    ) -> Result<Option<Student>, NationalError> {
        let answer = self
            .client(province, address)?
            .get_student(GetStudentRequest {
                number: number.to_owned(),
            })
            .await;
        match answer {
            Ok(response) => Ok(response.into_inner().student),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(NationalError::Unavailable(format!(
                "province {province} did not answer: {}",
                status.message()
            ))),
        }
    }
}
