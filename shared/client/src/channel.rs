//! Reaching a node as an operator tool: a mutual-TLS channel with a bearer token, and a typed
//! client of each service over it.

use std::time::Duration;

use anyhow::Context;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use xueji_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    schools::v1::{
        school_authority_client::SchoolAuthorityClient, school_intake_client::SchoolIntakeClient,
    },
};
use xueji_rpc::{BearerToken, ClientConfig, ExpectedServer, TlsSource};

pub type OperatorChannel = InterceptedService<Channel, BearerToken>;
pub type IdentityClient = IdentityServiceClient<OperatorChannel>;
pub type IntakeClient = SchoolIntakeClient<OperatorChannel>;
pub type SchoolYearClient =
    xueji_proto::identity::v1::school_year_service_client::SchoolYearServiceClient<OperatorChannel>;
pub type AuthorityClient = SchoolAuthorityClient<OperatorChannel>;
pub type TransfersClient =
    xueji_proto::transfers::v1::transfer_service_client::TransferServiceClient<OperatorChannel>;
pub type DirectoryClient =
    xueji_proto::national::v1::national_directory_client::NationalDirectoryClient<OperatorChannel>;
pub type CalendarClient =
    xueji_proto::national::v1::calendar_registry_client::CalendarRegistryClient<OperatorChannel>;

/// A channel to a node as the operator tool, sending `token` on every call.
pub async fn operator_channel(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<OperatorChannel> {
    let tls = TlsSource::from_dir(pki_dir, "operator").with_context(|| {
        format!(
            "the operator certificate is read from {}",
            pki_dir.display()
        )
    })?;
    let channel = xueji_rpc::connect(
        address,
        &ClientConfig {
            tls,
            server: ExpectedServer::AnyNode,
            request_timeout: Duration::from_secs(30),
        },
    )
    .await
    .with_context(|| format!("cannot reach the node at {address}"))?;
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

pub async fn transfers_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<TransfersClient> {
    Ok(TransfersClient::new(
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

pub type StatusChangeClient =
    xueji_proto::identity::v1::status_change_service_client::StatusChangeServiceClient<
        OperatorChannel,
    >;

pub async fn status_change_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<StatusChangeClient> {
    Ok(StatusChangeClient::new(
        operator_channel(address, pki_dir, token).await?,
    ))
}

pub async fn school_year_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<SchoolYearClient> {
    Ok(SchoolYearClient::new(
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

pub type StatsClient =
    xueji_proto::stats::v1::stats_service_client::StatsServiceClient<OperatorChannel>;

pub async fn stats_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<StatsClient> {
    Ok(StatsClient::new(
        operator_channel(address, pki_dir, token).await?,
    ))
}
