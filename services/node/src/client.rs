//! Reaching a node as an operator tool: a mutual-TLS channel with a bearer token, and tokens
//! minted from the node's key. Used by the demo, the benchmark, the CLI's tests and the tests.

use std::time::Duration;

use anyhow::Context;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use xueji_auth::{Authority, Grant, Level, Role, TokenSigner, default_audience};
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
    let channel = xueji_rpc::connect(
        address,
        &ClientConfig {
            tls: TlsSource::from_dir(pki_dir, "operator")?,
            server: ExpectedServer::AnyNode,
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

/// A token valid for 12 hours, meant for the signer's own node and the node of the
/// jurisdiction's province (see [`default_audience`]).
pub fn mint(
    signer: &TokenSigner,
    user: &str,
    level: Level,
    jurisdiction: &str,
    role: Role,
) -> anyhow::Result<String> {
    let audience = default_audience(signer.issuer(), level, jurisdiction);
    mint_for(signer, user, level, jurisdiction, role, audience)
}

/// Like [`mint`], for the nodes of `audience`.
pub fn mint_for(
    signer: &TokenSigner,
    user: &str,
    level: Level,
    jurisdiction: &str,
    role: Role,
    audience: Vec<Authority>,
) -> anyhow::Result<String> {
    mint_at(
        signer,
        user,
        level,
        jurisdiction,
        role,
        audience,
        chrono::Utc::now(),
    )
}

/// As [`mint_for`], issued at `now` (a node whose clock was moved forward, in the demo).
pub fn mint_at(
    signer: &TokenSigner,
    user: &str,
    level: Level,
    jurisdiction: &str,
    role: Role,
    audience: Vec<Authority>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    Ok(signer.mint(
        &Grant {
            user: user.into(),
            level,
            jurisdiction: jurisdiction.into(),
            role,
            audience,
        },
        now,
        chrono::Duration::hours(12),
    )?)
}

pub type ImportClient =
    xueji_proto::identity::v1::import_service_client::ImportServiceClient<OperatorChannel>;

pub async fn import_client(
    address: &str,
    pki_dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<ImportClient> {
    Ok(
        ImportClient::new(operator_channel(address, pki_dir, token).await?)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES),
    )
}

/// Which import an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Intake,
    Migration,
}

/// Uploads a whole file held in memory as an import of `kind` (header, then 256 KiB pieces)
/// and answers the job as it finished, calling `progress` on each progress report.
pub async fn upload(
    client: &mut ImportClient,
    kind: ImportKind,
    file_name: &str,
    bytes: &[u8],
    progress: impl FnMut(&xueji_proto::identity::v1::ImportJob),
) -> Result<xueji_proto::identity::v1::ImportJob, tonic::Status> {
    use sha2::{Digest, Sha256};
    let header = xueji_proto::identity::v1::ImportHeader {
        file_name: file_name.to_owned(),
        format: xueji_proto::identity::v1::SheetFormat::Unspecified as i32,
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
    };
    let pieces: Vec<Vec<u8>> = bytes.chunks(256 * 1024).map(<[u8]>::to_vec).collect();
    upload_pieces(client, kind, header, pieces.into_iter(), progress).await
}

/// Uploads a file given as its header and its pieces in order (read as they are sent, so a
/// file on disk need not be held in memory).
pub async fn upload_pieces(
    client: &mut ImportClient,
    kind: ImportKind,
    header: xueji_proto::identity::v1::ImportHeader,
    pieces: impl Iterator<Item = Vec<u8>> + Send + 'static,
    mut progress: impl FnMut(&xueji_proto::identity::v1::ImportJob),
) -> Result<xueji_proto::identity::v1::ImportJob, tonic::Status> {
    use xueji_proto::identity::v1 as pb;
    let finished = match kind {
        ImportKind::Intake => {
            use pb::{import_intake_request::Part, import_intake_response::Event};
            let messages = std::iter::once(Part::Header(header))
                .chain(pieces.map(Part::Chunk))
                .map(|part| pb::ImportIntakeRequest { part: Some(part) });
            let mut events = client
                .import_intake(futures::stream::iter(messages))
                .await?
                .into_inner();
            let mut finished = None;
            while let Some(event) = events.message().await? {
                match event.event {
                    Some(Event::Progress(job)) => progress(&job),
                    Some(Event::Finished(job)) => finished = Some(job),
                    None => {}
                }
            }
            finished
        }
        ImportKind::Migration => {
            use pb::{import_migration_request::Part, import_migration_response::Event};
            let messages = std::iter::once(Part::Header(header))
                .chain(pieces.map(Part::Chunk))
                .map(|part| pb::ImportMigrationRequest { part: Some(part) });
            let mut events = client
                .import_migration(futures::stream::iter(messages))
                .await?
                .into_inner();
            let mut finished = None;
            while let Some(event) = events.message().await? {
                match event.event {
                    Some(Event::Progress(job)) => progress(&job),
                    Some(Event::Finished(job)) => finished = Some(job),
                    None => {}
                }
            }
            finished
        }
    };
    finished.ok_or_else(|| tonic::Status::unavailable("the import ended without its summary"))
}

/// A whole file a server streams (a template, an export, an error file), with its name.
pub async fn download<T>(
    mut stream: tonic::Streaming<T>,
    mut piece: impl FnMut(T) -> (Vec<u8>, String),
) -> Result<(Vec<u8>, String), tonic::Status> {
    let mut bytes = Vec::new();
    let mut name = String::new();
    while let Some(message) = stream.message().await? {
        let (chunk, file_name) = piece(message);
        if name.is_empty() {
            name = file_name;
        }
        bytes.extend(chunk);
    }
    Ok((bytes, name))
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
