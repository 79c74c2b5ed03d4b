//! Calling any RPC by its name with its request as bytes, and listing the RPCs the protos
//! describe: what a test generated from the descriptors needs.

use std::{collections::BTreeSet, str::FromStr};

use bytes::{Buf, BufMut};
use prost::Message;
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    service::interceptor::InterceptedService,
    transport::Channel,
};
use xueji_rpc::BearerToken;

/// Requests and answers as bytes: one generic caller for every RPC.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

#[derive(Debug, Clone, Default)]
pub struct Raw;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

pub type Client = InterceptedService<Channel, BearerToken>;

pub async fn call(client: &Client, method: &str, request: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(client.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_str(&format!("/{method}")).expect("a path");
    // Every call as a stream of one request, its answers read to the end: on the wire this is
    // a unary call for a unary RPC, and it also calls the streaming ones (uploads, files).
    let mut answers = grpc
        .streaming(
            tonic::Request::new(futures::stream::iter([request])),
            path,
            RawCodec,
        )
        .await?
        .into_inner();
    while answers.message().await?.is_some() {}
    Ok(())
}

/// Every RPC of the Xueji services in the bundled descriptors, as `package.Service/Method`.
pub fn described_rpcs() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(xueji_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptors decode");
    let mut rpcs = BTreeSet::new();
    for file in set.file {
        let package = file.package().to_owned();
        if !package.starts_with("xueji.") {
            continue;
        }
        for service in &file.service {
            for method in &service.method {
                rpcs.insert(format!("{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    rpcs
}
