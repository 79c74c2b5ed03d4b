//! Files the import service streams out: the export (page by page, in the import layout),
//! and the pieces any file is sent in.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::mpsc;
use tonic::Status;
use xueji_proto::identity::v1 as pb;
use xueji_sheets::{Format, SheetWriter};

use crate::{
    IdentityError,
    domain::{EnrollmentStatus, sheet::SheetStudent},
    imports::Importer,
    store::imports::RowError,
};

/// Bytes per streamed file message.
pub(super) const FILE_CHUNK: usize = 1 << 20;
/// Records read per export page.
const EXPORT_PAGE: i64 = 5_000;

pub(super) type FileStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub(super) fn sheet_error(error: xueji_sheets::SheetError) -> IdentityError {
    IdentityError::Internal(format!("writing the sheet failed: {error}"))
}

/// `出生日期 (birth_date): is in the future; …`
pub(super) fn describe_problems(error: &RowError) -> String {
    error
        .problems
        .iter()
        .map(|p| {
            if p.heading.is_empty() {
                format!("{}: {}", p.field, p.reason)
            } else {
                format!("{} ({}): {}", p.heading, p.field, p.reason)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A file as a stream of messages of at most [`FILE_CHUNK`] bytes, the name on the first.
pub(super) fn file_messages<T: Send + 'static>(
    parts: Vec<Vec<u8>>,
    name: String,
    message: fn(Vec<u8>, String) -> T,
) -> FileStream<T> {
    let mut messages = Vec::new();
    let mut name = Some(name);
    for part in parts {
        for piece in part.chunks(FILE_CHUNK) {
            if !piece.is_empty() {
                messages.push(Ok(message(piece.to_vec(), name.take().unwrap_or_default())));
            }
        }
    }
    Box::pin(futures::stream::iter(messages))
}

/// Writes the export page by page: CSV bytes go out as each page is written; an XLSX
/// workbook (rows kept in a temporary file) goes out whole at the end.
pub(super) async fn export(
    importer: &Importer,
    province: &str,
    format: Format,
    counties: &[String],
    school: Option<&str>,
    name: String,
    out: &mpsc::Sender<Result<pb::ExportStudentsResponse, Status>>,
) -> Result<(), IdentityError> {
    let layout = importer.layout_of(province);
    let mut writer = SheetWriter::new(format).map_err(sheet_error)?;
    writer
        .set_column_kinds(&layout.column_kinds())
        .map_err(sheet_error)?;
    writer.write_row(&layout.headings()).map_err(sheet_error)?;
    let mut name = Some(name);
    let mut after = 0;
    let mut students = 0u64;
    let send = |bytes: Vec<u8>, name: &mut Option<String>, students: u64| {
        let messages: Vec<_> = bytes
            .chunks(FILE_CHUNK)
            .map(|piece| pb::ExportStudentsResponse {
                chunk: piece.to_vec(),
                file_name: name.take().unwrap_or_default(),
                students,
            })
            .collect();
        async move {
            for message in messages {
                if out.send(Ok(message)).await.is_err() {
                    return false;
                }
            }
            true
        }
    };
    loop {
        let page = importer
            .store()
            .export_page(counties, school, after, EXPORT_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for record in &page {
            let status = match record.status {
                EnrollmentStatus::AwaitingNationalCheck => EnrollmentStatus::Pending,
                other => other,
            };
            let student = SheetStudent {
                registry_number: &record.registry_number,
                aliases: &record.aliases,
                name: &record.name,
                gender: record.gender,
                birth_date: record.birth_date,
                ethnicity: &record.ethnicity,
                document_type: record.document_type,
                document_number: record.document_number.as_deref(),
                school_code: &record.school_code,
                grade: record.grade,
                entry_date: record.entry_date,
                entry_route: record.entry_route,
                status,
                left_reason: record.left_reason,
                guardian: &record.guardian,
                provincial_fields: &record.provincial_fields,
                flags: record.flags,
                class: record.class.as_ref().map(|c| (c.name.as_str(), c.seat)),
            };
            writer
                .write_row(&layout.cells(&student))
                .map_err(|e| match e {
                    xueji_sheets::SheetError::TooManyRows => IdentityError::FailedPrecondition(
                        "more students than an XLSX worksheet holds: export as CSV".into(),
                    ),
                    other => sheet_error(other),
                })?;
            students += 1;
        }
        let ready = writer.take_ready().map_err(sheet_error)?;
        if !ready.is_empty() && !send(ready, &mut name, students).await {
            return Ok(());
        }
    }
    let rest = writer.finish().map_err(sheet_error)?;
    send(rest, &mut name, students).await;
    Ok(())
}
