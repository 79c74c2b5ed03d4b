//! Reaching a node as an operator tool: a mutual-TLS channel with a bearer token, and tokens
//! minted from the node's key. Used by the demo, the benchmark, the CLI's tests and the tests.

use std::time::Duration;

use anyhow::Context;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use xueji_auth::{Claims, Level, Role, TokenSigner};
use xueji_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    schools::v1::{
        school_authority_client::SchoolAuthorityClient, school_intake_client::SchoolIntakeClient,
    },
};
use xueji_rpc::{BearerToken, ClientConfig, TlsSource};

pub type OperatorChannel = InterceptedService<Channel, BearerToken>;
pub type IdentityClient = IdentityServiceClient<OperatorChannel>;
pub type IntakeClient = SchoolIntakeClient<OperatorChannel>;
pub type AuthorityClient = SchoolAuthorityClient<OperatorChannel>;
pub type DirectoryClient =
    xueji_proto::national::v1::national_directory_client::NationalDirectoryClient<OperatorChannel>;

/// A channel to a node as the operator tool, sending `token` on every call.
pub async fn operator_channel(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<OperatorChannel> {
    let channel = xueji_rpc::connect(
        address,
        &ClientConfig {
            tls: TlsSource::from_dir(pki_dir, "operator")?,
            server_name: "localhost".into(),
            request_timeout: Duration::from_secs(30),
        },
    )
    .await
    .with_context(|| format!("connecting to {address}"))?;
    Ok(InterceptedService::new(channel, BearerToken::new(token)?))
}

pub async fn directory_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<DirectoryClient> {
    Ok(DirectoryClient::new(
        operator_channel(address, pki_dir, token).await?,
    ))
}

pub async fn identity_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<IdentityClient> {
    Ok(IdentityServiceClient::new(
        operator_channel(address, pki_dir, token).await?,
    ))
}

pub async fn intake_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<IntakeClient> {
    Ok(SchoolIntakeClient::new(
        operator_channel(address, pki_dir, token).await?,
    ))
}

pub async fn authority_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<AuthorityClient> {
    Ok(SchoolAuthorityClient::new(
        operator_channel(address, pki_dir, token).await?,
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
