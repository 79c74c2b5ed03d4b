//! Reaching a node as an operator tool: a mutual-TLS channel with a bearer token, and tokens
//! minted from the node's key. Used by the demo, the benchmark and the tests.

use std::time::Duration;

use anyhow::Context;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use xueji_auth::{Claims, Level, Role, TokenSigner};
use xueji_proto::identity::v1::identity_service_client::IdentityServiceClient;
use xueji_rpc::{BearerToken, ClientConfig, TlsFiles};

pub type IdentityClient = IdentityServiceClient<InterceptedService<Channel, BearerToken>>;

/// Connects to a node as the operator tool, sending `token` on every call.
pub async fn identity_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<IdentityClient> {
    let channel = xueji_rpc::connect(
        address,
        &ClientConfig {
            tls: TlsFiles::from_dir(pki_dir, "operator")?,
            server_name: "localhost".into(),
            request_timeout: Duration::from_secs(30),
        },
    )
    .await
    .with_context(|| format!("connecting to {address}"))?;
    Ok(IdentityServiceClient::with_interceptor(
        channel,
        BearerToken::new(token)?,
    ))
}

/// A token valid for 12 hours.
pub fn mint(
    signer: &TokenSigner,
    user: &str,
    level: Level,
    jurisdiction: &str,
    role: Role,
) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    Ok(signer.mint(&Claims {
        sub: user.into(),
        level,
        jurisdiction: jurisdiction.into(),
        role,
        iat: now,
        exp: now + 12 * 3600,
    })?)
}
