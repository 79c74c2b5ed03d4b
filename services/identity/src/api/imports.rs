//! Bulk import and export over gRPC (thin: decode the upload's header, authorize, hand the
//! bytes to the job runner in `crate::imports`, encode its events; stream files out).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use xueji_auth::{Caller, Jurisdiction};
use xueji_codes::Divisions;
use xueji_proto::identity::v1::{
    self as pb,
    import_service_server::{ImportService, ImportServiceServer},
};
use xueji_sheets::{Choices, Format, SheetWriter};

use super::{
    IdentityApi,
    sheet_files::{FILE_CHUNK, FileStream, describe_problems, export, file_messages, sheet_error},
};
use crate::{
    IdentityError,
    domain::sheet::{ERRORS_HEADING, ImportKind, ORIGINAL_ROW_HEADING},
    imports::Importer,
    imports::{Event, Header, UploadLimits, upload},
    store::imports::{ImportJobRecord, JobState, RowError},
};

/// Bad rows read per page of an error file.
const EXPORT_PAGE: i64 = 5_000;

/// The import service: thin handlers over the [`Importer`].
#[derive(Debug, Clone)]
pub(crate) struct ImportApi {
    /// The import and export use cases the handlers call.
    importer: Arc<Importer>,
    limits: UploadLimits,
    /// One permit per import being read.
    reading: Arc<tokio::sync::Semaphore>,
}

impl ImportApi {
    pub(crate) fn new(identity: &IdentityApi, limits: UploadLimits) -> Self {
        Self {
            importer: Arc::new(Importer::of(identity)),
            reading: Arc::new(tokio::sync::Semaphore::new(limits.at_once)),
            limits,
        }
    }

    pub(crate) fn into_service(self) -> ImportServiceServer<Self> {
        ImportServiceServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    /// Opens (or finds) the upload's job and starts reading its bytes; answers the job's
    /// events, mapped by `encode`.
    async fn import<R, T>(
        &self,
        caller: Caller,
        request_id: String,
        kind: ImportKind,
        mut input: Streaming<R>,
        part: fn(R) -> Option<Part>,
        encode: fn(Event) -> T,
    ) -> Result<ReceiverStream<Result<T, Status>>, IdentityError>
    where
        R: Send + 'static,
        T: Send + 'static,
    {
        let first = input
            .message()
            .await
            .map_err(|e| IdentityError::invalid("header", e.message().to_owned()))?;
        let header = match first.and_then(part) {
            Some(Part::Header(header)) => decode_header(header, kind)?,
            _ => {
                return Err(IdentityError::invalid(
                    "header",
                    "the first message carries the header (file name, format, SHA-256)",
                ));
            }
        };
        let (job, _) = self.importer.open_job(&caller, &header).await?;
        let (out_tx, out_rx) = mpsc::channel(16);
        if job.state == JobState::Finished {
            let event = Event::Finished {
                job,
                replayed: true,
                first_errors: Vec::new(),
            };
            let _ = out_tx.send(Ok(encode(event))).await;
            return Ok(ReceiverStream::new(out_rx));
        }
        let permit = self.reading.clone().try_acquire_owned().map_err(|_| {
            IdentityError::Exhausted(format!(
                "this node reads {} imports at once and all are busy; send the file again when \
                 one has finished (the job resumes where it stopped)",
                self.limits.at_once
            ))
        })?;
        let (sink, rows) = upload::start(header.format);
        // The upload's bytes go to the reader as they come; a broken upload ends the file
        // there (the job keeps what it committed and resumes when the file is sent again). An
        // upload past the node's size, or silent past its idle time, fails the file with why.
        let limits = self.limits;
        tokio::spawn(async move {
            let mut received: u64 = 0;
            loop {
                let message = match tokio::time::timeout(limits.idle, input.message()).await {
                    Ok(Ok(Some(message))) => message,
                    Ok(_) => break,
                    Err(_) => {
                        sink.fail(format!(
                            "the upload sent nothing for {} s and was stopped; send the file \
                             again (the job resumes where it stopped)",
                            limits.idle.as_secs()
                        ))
                        .await;
                        return;
                    }
                };
                match part(message) {
                    Some(Part::Chunk(bytes)) => {
                        received += bytes.len() as u64;
                        if received > limits.max_bytes {
                            sink.fail(format!(
                                "the upload passed this node's limit of {} MiB per file \
                                 (import_max_upload_mib); split the file",
                                limits.max_bytes >> 20
                            ))
                            .await;
                            return;
                        }
                        if !sink.push(bytes).await {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        });
        let importer = self.importer.clone();
        tokio::spawn(async move {
            let (events_tx, mut events_rx) = mpsc::channel(16);
            let run = importer.run_import(&caller, &request_id, header, job, rows, events_tx);
            let forward = async {
                while let Some(event) = events_rx.recv().await {
                    let _ = out_tx.send(Ok(encode(event))).await;
                }
            };
            let (result, ()) = tokio::join!(run, forward);
            drop(permit);
            if let Err(error) = result {
                tracing::warn!(%error, "import stopped");
                let _ = out_tx.send(Err(error.into())).await;
            }
        });
        Ok(ReceiverStream::new(out_rx))
    }

    fn visible_job(caller: &Caller, job: &ImportJobRecord) -> bool {
        match &caller.jurisdiction {
            Jurisdiction::Nation => true,
            Jurisdiction::School(code) => job.jurisdiction == code.as_str(),
            Jurisdiction::Division(outer) => job
                .division
                .parse()
                .is_ok_and(|division| Divisions::bundled().contains(*outer, division)),
        }
    }

    async fn job(&self, caller: &Caller, id: &str) -> Result<ImportJobRecord, IdentityError> {
        let parsed = uuid::Uuid::parse_str(id.trim())
            .map_err(|_| IdentityError::invalid("job_id", "must be a job id (a UUID)"))?;
        self.importer
            .store()
            .import_job(parsed)
            .await?
            .filter(|job| Self::visible_job(caller, job))
            .ok_or_else(|| IdentityError::NotFound(format!("import job {id}")))
    }

    /// Streams the error file of a job to `out`: its heading row plus the errors column and
    /// each bad row's original row number, then each bad row, page by page (memory stays flat
    /// however many rows were bad). A CSV error file is in the encoding the upload was in, so
    /// the clerk's spreadsheet opens it as it opened the original.
    async fn error_file(
        importer: &Importer,
        job: &ImportJobRecord,
        name: String,
        out: &mpsc::Sender<Result<pb::DownloadImportErrorsResponse, Status>>,
    ) -> Result<(), IdentityError> {
        let gb18030 = job.format == Format::Csv
            && job.encoding.as_deref() == Some(xueji_sheets::Encoding::Gb18030.as_str());
        let mut writer = SheetWriter::new(job.format).map_err(sheet_error)?;
        let mut headings = job.headings.clone();
        headings.push(ERRORS_HEADING.to_owned());
        headings.push(ORIGINAL_ROW_HEADING.to_owned());
        writer.write_row(&headings).map_err(sheet_error)?;
        let mut name = Some(name);
        let mut first = true;
        let mut send = async |bytes: Vec<u8>| -> bool {
            let bytes = if gb18030 {
                // Whole rows: each part is valid UTF-8. The byte-order mark is UTF-8's alone.
                let text = String::from_utf8_lossy(&bytes);
                let text = if first {
                    text.trim_start_matches('\u{feff}').to_owned()
                } else {
                    text.into_owned()
                };
                xueji_sheets::Encoding::Gb18030.encode(&text)
            } else {
                bytes
            };
            first = false;
            for piece in bytes.chunks(FILE_CHUNK) {
                let message = pb::DownloadImportErrorsResponse {
                    chunk: piece.to_vec(),
                    file_name: name.take().unwrap_or_default(),
                };
                if out.send(Ok(message)).await.is_err() {
                    return false;
                }
            }
            true
        };
        let mut after = 0;
        loop {
            let page = importer
                .store()
                .import_errors(job.id, after, EXPORT_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.row;
            for error in &page {
                let mut cells = error.cells.clone();
                cells.resize(job.headings.len().max(cells.len()), String::new());
                cells.truncate(job.headings.len().max(1));
                cells.push(describe_problems(error));
                cells.push(error.row.to_string());
                writer.write_row(&cells).map_err(sheet_error)?;
            }
            if !send(writer.take_ready().map_err(sheet_error)?).await {
                return Ok(());
            }
        }
        send(writer.finish().map_err(sheet_error)?).await;
        Ok(())
    }

    fn template(
        &self,
        caller: &Caller,
        request: pb::DownloadTemplateRequest,
    ) -> Result<(Vec<u8>, String), IdentityError> {
        let format = match format_of(request.format) {
            Some(format) => format,
            None => Format::Xlsx,
        };
        let requested = request.province.trim();
        let province = if requested.is_empty() {
            self.importer.province_of(caller).map_err(|_| {
                IdentityError::invalid(
                    "province",
                    "this node serves no province: name the province whose template you want \
                     (two digits, e.g. 35)",
                )
            })?
        } else if requested.len() == 2 && requested.bytes().all(|b| b.is_ascii_digit()) {
            requested.to_owned()
        } else {
            return Err(IdentityError::invalid(
                "province",
                "must be two digits, e.g. 35",
            ));
        };
        let layout = self.importer.layout_of(&province);
        let mut writer = SheetWriter::new(format).map_err(sheet_error)?;
        writer
            .set_column_kinds(&layout.column_kinds())
            .map_err(sheet_error)?;
        writer.write_row(&layout.headings()).map_err(sheet_error)?;
        let choices: Vec<Choices> = layout
            .guide()
            .into_iter()
            .enumerate()
            .map(|(column, (note, values))| Choices {
                column: column as u16,
                note,
                values,
            })
            .collect();
        writer.add_choices(&choices).map_err(sheet_error)?;
        let mut bytes = writer.take_ready().map_err(sheet_error)?;
        bytes.extend(writer.finish().map_err(sheet_error)?);
        let name = format!("xueji-template-{province}.{}", format.as_str());
        Ok((bytes, name))
    }
}

/// What one upload message holds.
pub(crate) enum Part {
    Header(pb::ImportHeader),
    Chunk(Vec<u8>),
}

fn decode_header(header: pb::ImportHeader, kind: ImportKind) -> Result<Header, IdentityError> {
    let mut violations = Vec::new();
    let file_name = header.file_name.trim().to_owned();
    if file_name.is_empty() || file_name.chars().count() > 255 {
        violations.push(crate::domain::FieldViolation::new(
            "header.file_name",
            "must be the file's name, 1–255 characters",
        ));
    }
    let format = format_of(header.format).or_else(|| Format::of_file_name(&file_name));
    if format.is_none() {
        violations.push(crate::domain::FieldViolation::new(
            "header.format",
            "must be CSV or XLSX (or the file name must end in .csv or .xlsx)",
        ));
    }
    let sha256 = hex::decode(header.sha256.trim())
        .ok()
        .filter(|d| d.len() == 32);
    if sha256.is_none() {
        violations.push(crate::domain::FieldViolation::new(
            "header.sha256",
            "must be the file's SHA-256, 64 hexadecimal digits",
        ));
    }
    match (format, sha256) {
        (Some(format), Some(sha256)) if violations.is_empty() => Ok(Header {
            kind,
            file_name,
            format,
            sha256,
        }),
        _ => Err(IdentityError::InvalidArgument(violations)),
    }
}

fn format_of(wire: i32) -> Option<Format> {
    match pb::SheetFormat::try_from(wire) {
        Ok(pb::SheetFormat::Csv) => Some(Format::Csv),
        Ok(pb::SheetFormat::Xlsx) => Some(Format::Xlsx),
        _ => None,
    }
}

fn format_to_wire(format: Format) -> pb::SheetFormat {
    match format {
        Format::Csv => pb::SheetFormat::Csv,
        Format::Xlsx => pb::SheetFormat::Xlsx,
    }
}

pub(crate) fn job_to_wire(
    job: &ImportJobRecord,
    replayed: bool,
    first_errors: &[RowError],
) -> pb::ImportJob {
    pb::ImportJob {
        id: job.id.to_string(),
        kind: job.kind.as_str().to_owned(),
        file_name: job.file_name.clone(),
        format: format_to_wire(job.format) as i32,
        encoding: job.encoding.clone().unwrap_or_default(),
        state: match job.state {
            JobState::Running => pb::ImportJobState::Running,
            JobState::Finished => pb::ImportJobState::Finished,
            JobState::Failed => pb::ImportJobState::Failed,
        } as i32,
        rows_handled: (job.imported + job.already + job.bad) as u64,
        imported: job.imported as u64,
        already_present: job.already as u64,
        bad: job.bad as u64,
        done_through_row: job.done_through as u64,
        failure: job.failure.clone().unwrap_or_default(),
        started_by: job.started_by.clone(),
        started_at: job.started_at.to_rfc3339(),
        updated_at: job.updated_at.to_rfc3339(),
        replayed,
        first_errors: first_errors
            .iter()
            .flat_map(|error| {
                error.problems.iter().map(|p| pb::ImportRowError {
                    row: error.row as u64,
                    field: p.field.clone(),
                    heading: p.heading.clone(),
                    reason: p.reason.clone(),
                })
            })
            .take(20)
            .collect(),
    }
}

fn intake_event(event: Event) -> pb::ImportIntakeResponse {
    use pb::import_intake_response::Event as Wire;
    pb::ImportIntakeResponse {
        event: Some(match event {
            Event::Progress(job) => Wire::Progress(job_to_wire(&job, false, &[])),
            Event::Finished {
                job,
                replayed,
                first_errors,
            } => Wire::Finished(job_to_wire(&job, replayed, &first_errors)),
        }),
    }
}

fn migration_event(event: Event) -> pb::ImportMigrationResponse {
    use pb::import_migration_response::Event as Wire;
    pb::ImportMigrationResponse {
        event: Some(match event {
            Event::Progress(job) => Wire::Progress(job_to_wire(&job, false, &[])),
            Event::Finished {
                job,
                replayed,
                first_errors,
            } => Wire::Finished(job_to_wire(&job, replayed, &first_errors)),
        }),
    }
}

fn caller_of<T>(request: &Request<T>) -> Result<(Caller, String), Status> {
    let (caller, request_id) = xueji_rpc::caller(request)?;
    Ok((caller.clone(), request_id.to_owned()))
}

#[tonic::async_trait]
impl ImportService for ImportApi {
    type ImportIntakeStream = ReceiverStream<Result<pb::ImportIntakeResponse, Status>>;
    type ImportMigrationStream = ReceiverStream<Result<pb::ImportMigrationResponse, Status>>;
    type DownloadImportErrorsStream = FileStream<pb::DownloadImportErrorsResponse>;
    type DownloadTemplateStream = FileStream<pb::DownloadTemplateResponse>;
    type ExportStudentsStream = FileStream<pb::ExportStudentsResponse>;

    async fn import_intake(
        &self,
        request: Request<Streaming<pb::ImportIntakeRequest>>,
    ) -> Result<Response<Self::ImportIntakeStream>, Status> {
        let (caller, request_id) = caller_of(&request)?;
        let stream = self
            .import(
                caller,
                request_id,
                ImportKind::Intake,
                request.into_inner(),
                |m| match m.part? {
                    pb::import_intake_request::Part::Header(h) => Some(Part::Header(h)),
                    pb::import_intake_request::Part::Chunk(c) => Some(Part::Chunk(c)),
                },
                intake_event,
            )
            .await?;
        Ok(Response::new(stream))
    }

    async fn import_migration(
        &self,
        request: Request<Streaming<pb::ImportMigrationRequest>>,
    ) -> Result<Response<Self::ImportMigrationStream>, Status> {
        let (caller, request_id) = caller_of(&request)?;
        let stream = self
            .import(
                caller,
                request_id,
                ImportKind::Migration,
                request.into_inner(),
                |m| match m.part? {
                    pb::import_migration_request::Part::Header(h) => Some(Part::Header(h)),
                    pb::import_migration_request::Part::Chunk(c) => Some(Part::Chunk(c)),
                },
                migration_event,
            )
            .await?;
        Ok(Response::new(stream))
    }

    async fn get_import_job(
        &self,
        request: Request<pb::GetImportJobRequest>,
    ) -> Result<Response<pb::GetImportJobResponse>, Status> {
        let (caller, _) = caller_of(&request)?;
        let job = self.job(&caller, &request.get_ref().job_id).await?;
        Ok(Response::new(pb::GetImportJobResponse {
            job: Some(job_to_wire(&job, false, &[])),
        }))
    }

    async fn list_import_jobs(
        &self,
        request: Request<pb::ListImportJobsRequest>,
    ) -> Result<Response<pb::ListImportJobsResponse>, Status> {
        let (caller, _) = caller_of(&request)?;
        let limit = match request.get_ref().limit {
            0 => 20,
            n @ 1..=100 => n as usize,
            _ => {
                return Err(IdentityError::invalid("limit", "must be 1–100 (0: 20)").into());
            }
        };
        let jobs = self
            .importer
            .store()
            .recent_import_jobs(1_000)
            .await?
            .into_iter()
            .filter(|job| Self::visible_job(&caller, job))
            .take(limit)
            .map(|job| job_to_wire(&job, false, &[]))
            .collect();
        Ok(Response::new(pb::ListImportJobsResponse { jobs }))
    }

    async fn download_import_errors(
        &self,
        request: Request<pb::DownloadImportErrorsRequest>,
    ) -> Result<Response<Self::DownloadImportErrorsStream>, Status> {
        let (caller, _) = caller_of(&request)?;
        let job = self.job(&caller, &request.get_ref().job_id).await?;
        let stem = job
            .file_name
            .rsplit_once('.')
            .map_or(job.file_name.as_str(), |(stem, _)| stem);
        let name = format!("{stem}.errors.{}", job.format.as_str());
        let (out, messages) = mpsc::channel(4);
        let importer = self.importer.clone();
        tokio::spawn(async move {
            if let Err(error) = Self::error_file(&importer, &job, name, &out).await {
                let _ = out.send(Err(error.into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(messages))))
    }

    async fn download_template(
        &self,
        request: Request<pb::DownloadTemplateRequest>,
    ) -> Result<Response<Self::DownloadTemplateStream>, Status> {
        let (caller, _) = caller_of(&request)?;
        let (bytes, name) = self.template(&caller, request.into_inner())?;
        Ok(Response::new(file_messages(
            vec![bytes],
            name,
            |chunk, file_name| pb::DownloadTemplateResponse { chunk, file_name },
        )))
    }

    async fn export_students(
        &self,
        request: Request<pb::ExportStudentsRequest>,
    ) -> Result<Response<Self::ExportStudentsStream>, Status> {
        let (caller, _) = caller_of(&request)?;
        let request = request.into_inner();
        let format = format_of(request.format).unwrap_or(Format::Csv);
        let (counties, school) = self
            .importer
            .scope_of(&caller, &request.scope, "scope")
            .await?;
        let province = self.importer.province_of(&caller)?;
        let name = format!(
            "xueji-students-{}.{}",
            if request.scope.trim().is_empty() {
                caller.jurisdiction.as_string()
            } else {
                request.scope.trim().to_owned()
            },
            format.as_str()
        );
        let importer = self.importer.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let result = export(
                &importer,
                &province,
                format,
                &counties,
                school.as_deref(),
                name,
                &tx,
            )
            .await;
            if let Err(error) = result {
                let _ = tx.send(Err(error.into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
