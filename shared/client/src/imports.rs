//! Streaming a spreadsheet up as an import, and a file the server streams down.

use crate::channel::{OperatorChannel, operator_channel};

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
