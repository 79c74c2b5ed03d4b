//! How the national node asks a province: the province's identity service, over mutual TLS
//! with the national node's certificate and a ministry-level service token.

use std::{collections::HashMap, sync::Mutex};

use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use xueji_proto::identity::v1::{
    GetStudentRequest, Student, identity_service_client::IdentityServiceClient,
};
use xueji_rpc::{BearerToken, ClientConfig};

use crate::NationalError;

type IdentityClient = IdentityServiceClient<InterceptedService<Channel, BearerToken>>;

/// Clients of the provinces' identity services, one channel per address, made on first use.
#[derive(Debug)]
pub struct ProvinceClients {
    client: ClientConfig,
    token: BearerToken,
    channels: Mutex<HashMap<String, IdentityClient>>,
}

impl ProvinceClients {
    pub fn new(client: ClientConfig, token: &str) -> Result<Self, NationalError> {
        let token = BearerToken::new(token)
            .map_err(|e| NationalError::Unavailable(format!("service token: {}", e.message())))?;
        Ok(Self {
            client,
            token,
            channels: Mutex::default(),
        })
    }

    fn client(&self, address: &str) -> Result<IdentityClient, NationalError> {
        let mut channels = self.channels.lock().expect("not poisoned");
        if let Some(client) = channels.get(address) {
            return Ok(client.clone());
        }
        let channel = xueji_rpc::connect_lazy(address, &self.client)
            .map_err(|e| NationalError::Unavailable(format!("cannot reach {address}: {e}")))?;
        let client =
            IdentityServiceClient::new(InterceptedService::new(channel, self.token.clone()));
        channels.insert(address.to_owned(), client.clone());
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
            .client(address)?
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
