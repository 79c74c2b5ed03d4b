//! `TransferPeer`: what the national node hands this province of transfers between provinces.
//! Only the national node's service identity may call it (the authorization matrix).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use xueji_auth::Level;
use xueji_proto::transfers::v1::{
    self as pb,
    transfer_peer_server::{TransferPeer, TransferPeerServer},
};

use crate::{TransferError, saga::Saga};

/// At most this many messages per call.
const MAX_BATCH: usize = 500;

#[derive(Debug, Clone)]
pub struct PeerApi {
    saga: Arc<Saga>,
}

impl PeerApi {
    pub fn new(saga: Arc<Saga>) -> Self {
        Self { saga }
    }

    pub fn into_service(self) -> TransferPeerServer<Self> {
        TransferPeerServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl TransferPeer for PeerApi {
    async fn receive_messages(
        &self,
        request: Request<pb::ReceiveMessagesRequest>,
    ) -> Result<Response<pb::ReceiveMessagesResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        if caller.level != Level::Ministry {
            return Err(TransferError::PermissionDenied(
                "messages of other provinces come through the national node only".into(),
            )
            .into());
        }
        let messages = request.into_inner().messages;
        if messages.len() > MAX_BATCH {
            return Err(TransferError::invalid(
                "messages",
                format!("at most {MAX_BATCH} messages per call"),
            )
            .into());
        }
        let accepted = self.saga.take_messages(&messages).await?;
        Ok(Response::new(pb::ReceiveMessagesResponse { accepted }))
    }
}
