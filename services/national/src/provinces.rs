//! How the national node asks a province: the province's identity service (lookups) and its
//! transfer service (relayed messages), over mutual TLS with the national node's certificate
//! and a ministry-level service token.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use xueji_pki::SpiffeId;
use xueji_proto::identity::v1::{
    GetStudentRequest, Student, identity_service_client::IdentityServiceClient,
};
use xueji_proto::transfers::v1::{
    ReceiveMessagesRequest, SagaMessage, transfer_peer_client::TransferPeerClient,
};
use xueji_rpc::{BearerToken, ClientConfig, ExpectedServer, TlsSource};

use crate::NationalError;

type Authorized = InterceptedService<Channel, BearerToken>;

/// Clients of the provinces' identity services, one channel per province and address, made on
/// first use.
#[derive(Debug)]
pub struct ProvinceClients {
    tls: TlsSource,
    request_timeout: Duration,
    token: BearerToken,
    /// Identities accepted besides a province's own (a standalone node's national certificate).
    also_accept: Vec<SpiffeId>,
    /// By province, address and service.
    channels: Mutex<HashMap<(String, String, &'static str), Authorized>>,
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

    /// A channel that talks only to a server proving to be `province`'s `service`.
    fn channel(
        &self,
        province: &str,
        address: &str,
        service: &'static str,
    ) -> Result<Authorized, NationalError> {
        let mut channels = self.channels.lock().expect("not poisoned");
        let key = (province.to_owned(), address.to_owned(), service);
        if let Some(channel) = channels.get(&key) {
            return Ok(channel.clone());
        }
        let server = self.also_accept.iter().cloned().fold(
            ExpectedServer::province(province, service),
            ExpectedServer::or,
        );
        let config = ClientConfig {
            tls: self.tls.clone(),
            server,
            request_timeout: self.request_timeout,
        };
        let channel = xueji_rpc::connect_lazy(address, &config)
            .map_err(|e| NationalError::Unavailable(format!("cannot reach {address}: {e}")))?;
        let channel = InterceptedService::new(channel, self.token.clone());
        channels.insert(key, channel.clone());
        Ok(channel)
    }

    /// Hands relayed transfer messages to `province`'s transfer service.
    pub async fn forward(
        &self,
        province: &str,
        address: &str,
        messages: Vec<SagaMessage>,
    ) -> Result<(), NationalError> {
        TransferPeerClient::new(self.channel(province, address, "transfers")?)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .receive_messages(ReceiveMessagesRequest { messages })
            .await
            .map_err(|status| {
                NationalError::Unavailable(format!(
                    "province {province}'s transfer service did not take the messages: {}",
                    status.message()
                ))
            })?;
        Ok(())
    }

    /// The student holding `number` in the province at `address`; `None` if it does not know it.
    pub async fn student(
        &self,
        province: &str,
        address: &str,
        number: &str,
    ) -> Result<Option<Student>, NationalError> {
        let answer = IdentityServiceClient::new(self.channel(province, address, "identity")?)
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
