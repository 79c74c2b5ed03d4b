//! Bulk import: a file's rows read in order, checked, written in chunks, with the job's
//! progress committed after each chunk. Intake rows go through registration itself (every
//! check, the batcher, the national duplicate check by the outbox), keyed by job and row;
//! migration rows through the bulk writer (`store::imports`), keyed by their registry number.
//! A job found finished answers its summary; a job found running resumes after its last
//! committed row.

mod chunks;
use chunks::finish_write;
pub mod upload;

pub use upload::UploadLimits;

use std::{collections::HashMap, sync::Arc};

use tokio::sync::mpsc;
use xueji_auth::{Caller, Level, Role};
use xueji_sheets::{Format, Row};

use crate::{
    IdentityError,
    api::IdentityApi,
    directory::SchoolDirectory,
    domain::provincial_fields::ProvincialFields,
    domain::{
        School,
        sheet::{ImportKind, Layout},
    },
    national::Deliverer,
    registrar::Registrar,
    store::{
        Actor, Store,
        imports::{ChunkDone, ImportJobRecord, JobState, NewJob, RowError},
    },
};

/// Rows per migration chunk (one transaction) and per intake chunk (registrations in flight
/// together, then the job's progress).
const MIGRATION_CHUNK: usize = 2_000;
const INTAKE_CHUNK: usize = 512;

/// What an upload says it is.
#[derive(Debug, Clone)]
pub struct Header {
    pub kind: ImportKind,
    pub file_name: String,
    pub format: Format,
    pub sha256: Vec<u8>,
}

/// What the job runner tells the caller while it works.
#[derive(Debug, Clone)]
pub enum Event {
    Progress(ImportJobRecord),
    Finished {
        job: ImportJobRecord,
        replayed: bool,
        first_errors: Vec<RowError>,
    },
}

/// Who may start an import of `kind`: intake as registration (schools and their authorities),
/// migration province and ministry operators only.
pub fn may_import(caller: &Caller, kind: ImportKind) -> Result<(), IdentityError> {
    match kind {
        ImportKind::Intake if matches!(caller.level, Level::Province | Level::Ministry) => {
            Err(IdentityError::PermissionDenied(format!(
                "{} users oversee registrations; schools and their authorities import their intake",
                caller.level
            )))
        }
        ImportKind::Migration
            if !matches!(caller.level, Level::Province | Level::Ministry)
                || caller.role != Role::Operator =>
        {
            Err(IdentityError::PermissionDenied(
                "a migration is imported by a province's or the ministry's operators".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// The import use case: jobs opened and resumed, rows checked and written (intake rows through
/// the registrar, migration rows through the bulk writer).
pub(crate) struct Importer {
    store: Store,
    schools: Arc<SchoolDirectory>,
    fields: Arc<ProvincialFields>,
    registrar: Arc<Registrar>,
    /// Woken after each chunk: the outbox has the chunk's messages.
    national: Arc<Deliverer>,
    /// The province this node serves, for callers above it (the ministry).
    province: Option<String>,
    /// The annual cycle: its dates name the school year a row's class belongs to.
    cycle: Option<Arc<crate::cycle::CycleRunner>>,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer").finish_non_exhaustive()
    }
}

impl Importer {
    /// The importer of the identity service `identity`, sharing its registrar and stores.
    pub(crate) fn of(identity: &IdentityApi) -> Self {
        Self {
            store: identity.store.clone(),
            schools: identity.schools.clone(),
            fields: identity.fields.clone(),
            registrar: identity.registrar.clone(),
            national: identity.national.clone(),
            province: identity.province.clone(),
            cycle: identity.cycle.clone(),
        }
    }

    /// The store the jobs, their bad rows and the exported students are read from.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The layout of the sheets of `province`: the national columns, then its own fields.
    pub(crate) fn layout_of(&self, province: &str) -> Layout<'_> {
        Layout::new(self.fields.of(province))
    }

    /// What an export's scope (empty, a school code or a division code inside the caller's
    /// jurisdiction) covers: the county-level divisions, or one school.
    pub(crate) async fn scope_of(
        &self,
        caller: &Caller,
        requested: &str,
        field: &'static str,
    ) -> Result<(Vec<String>, Option<String>), IdentityError> {
        self.schools
            .scope_of(&self.store, caller, requested, field)
            .await
    }

    /// The province whose extra fields the rows carry: the caller's, or this node's for a
    /// ministry operator. A node that serves no province has no rows to read.
    pub(crate) fn province_of(&self, caller: &Caller) -> Result<String, IdentityError> {
        match (caller.jurisdiction.province_digits(), &self.province) {
            (Some(province), _) => Ok(province.to_owned()),
            (None, Some(province)) => Ok(province.clone()),
            (None, None) => Err(IdentityError::FailedPrecondition(
                "this node serves no province: import into a provincial node".into(),
            )),
        }
    }

    /// The job a caller's upload belongs to: opened, or found (same file, same jurisdiction).
    pub(crate) async fn open_job(
        &self,
        caller: &Caller,
        header: &Header,
    ) -> Result<(ImportJobRecord, bool), IdentityError> {
        may_import(caller, header.kind)?;
        self.province_of(caller)?;
        let jurisdiction = caller.jurisdiction.as_string();
        let division = match &caller.jurisdiction {
            xueji_auth::Jurisdiction::School(code) => self
                .schools
                .visible(&self.store, caller, code)
                .await?
                .map(|school| school.division.to_string())
                .ok_or_else(|| {
                    IdentityError::FailedPrecondition(format!(
                        "school {code} is not in this province's published list"
                    ))
                })?,
            _ => jurisdiction.clone(),
        };
        self.store
            .open_import_job(&NewJob {
                kind: header.kind,
                jurisdiction: &jurisdiction,
                division: &division,
                sha256: &header.sha256,
                file_name: &header.file_name,
                format: header.format,
                started_by: &caller.describe(),
            })
            .await
    }

    /// Reads the rows of an upload into its job and reports progress to `events`. Answers once
    /// the file is read or the job stopped; the job stays `running` when the database failed
    /// (the same file sent again resumes it).
    pub(crate) async fn run_import(
        &self,
        caller: &Caller,
        request_id: &str,
        header: Header,
        job: ImportJobRecord,
        mut sheet: upload::SheetRows,
        events: mpsc::Sender<Event>,
    ) -> Result<(), IdentityError> {
        let actor = Actor { caller, request_id };
        let province = self.province_of(caller)?;
        let fields = self.fields.clone();
        let layout = Layout::new(fields.of(&province));
        let Some(heading_row) = sheet.rows.recv().await else {
            let failure = match (&mut sheet.end).await {
                Ok(Err(error)) => error.to_string(),
                _ => "the file is empty: it has no heading row".to_owned(),
            };
            return self.fail(&job, &failure, actor, &events).await;
        };
        let bound = match layout.bind(&heading_row.cells, header.kind) {
            Ok(bound) => bound,
            Err(problem) => {
                let failure = format!("row {}: {problem}", heading_row.number);
                return self.fail(&job, &failure, actor, &events).await;
            }
        };
        let headings = bound.original(&heading_row.cells);
        let headings: Vec<String> = headings.iter().map(|h| (*h).to_owned()).collect();
        self.store
            .import_job_reading(job.id, &headings, None)
            .await?;
        let mut schools: HashMap<String, Option<School>> = HashMap::new();
        let chunk_size = match header.kind {
            ImportKind::Intake => INTAKE_CHUNK,
            ImportKind::Migration => MIGRATION_CHUNK,
        };
        let mut first_errors = Vec::new();
        let mut chunk: Vec<Row> = Vec::with_capacity(chunk_size);
        let mut last_row = job.done_through;
        let mut writing: Option<tokio::task::JoinHandle<Result<ChunkDone, IdentityError>>> = None;
        loop {
            let next = sheet.rows.recv().await;
            let ended = next.is_none();
            if let Some(row) = next {
                last_row = row.number as i64;
                if row.number as i64 <= job.done_through || bound.is_blank(&row.cells) {
                    continue;
                }
                chunk.push(row);
                if chunk.len() < chunk_size {
                    continue;
                }
            }
            if !chunk.is_empty() {
                let rows = std::mem::take(&mut chunk);
                let through = rows.last().map_or(last_row, |r| r.number as i64);
                let done = match header.kind {
                    ImportKind::Intake => Some(
                        self.intake_chunk(
                            caller, request_id, &layout, &bound, rows, through, job.id,
                        )
                        .await?,
                    ),
                    ImportKind::Migration => {
                        // The chunk is checked while the previous one is being written; the
                        // writes themselves stay one after the other, in file order.
                        let (good, checked) = self
                            .check_migration_chunk(
                                caller,
                                &layout,
                                &bound,
                                rows,
                                through,
                                &mut schools,
                            )
                            .await?;
                        let previous = match writing.take() {
                            Some(write) => Some(finish_write(write).await?),
                            None => None,
                        };
                        let store = self.store.clone();
                        let (writer, request) = (caller.clone(), request_id.to_owned());
                        let id = job.id;
                        writing = Some(tokio::spawn(async move {
                            store
                                .migrate_chunk(
                                    id,
                                    &good,
                                    checked,
                                    Actor {
                                        caller: &writer,
                                        request_id: &request,
                                    },
                                )
                                .await
                        }));
                        previous
                    }
                };
                let Some(done) = done else {
                    continue;
                };
                self.national.wake();
                first_errors.extend(
                    done.errors
                        .iter()
                        .take(20 - first_errors.len().min(20))
                        .cloned(),
                );
                if let Some(now) = self.store.import_job(job.id).await? {
                    // The caller may have gone: the job goes on regardless.
                    let _ = events.try_send(Event::Progress(now));
                }
            }
            if ended {
                if let Some(write) = writing.take() {
                    let done = finish_write(write).await?;
                    first_errors.extend(
                        done.errors
                            .iter()
                            .take(20 - first_errors.len().min(20))
                            .cloned(),
                    );
                    self.national.wake();
                }
                break;
            }
        }
        let end = (&mut sheet.end)
            .await
            .map_err(|e| IdentityError::Internal(format!("the sheet reader stopped: {e}")))?;
        let end = match end {
            Ok(end) => end,
            Err(error) => {
                let failure = format!("after row {last_row}: {error}");
                return self.fail(&job, &failure, actor, &events).await;
            }
        };
        self.store
            .import_job_reading(job.id, &headings, end.encoding.map(|e| e.as_str()))
            .await?;
        let given = hex::encode(&header.sha256);
        let (state, failure) = if end.sha256 == given {
            (JobState::Finished, None)
        } else {
            (
                JobState::Failed,
                Some(format!(
                    "the bytes received (SHA-256 {}) are not the file the header named ({given}): \
                     the rows read were kept; send the file again",
                    end.sha256
                )),
            )
        };
        self.store
            .end_import_job(job.id, state, failure.as_deref(), actor)
            .await?;
        let job = self
            .store
            .import_job(job.id)
            .await?
            .ok_or_else(|| IdentityError::Internal("the job vanished".into()))?;
        let _ = events
            .send(Event::Finished {
                job,
                replayed: false,
                first_errors,
            })
            .await;
        Ok(())
    }

    async fn fail(
        &self,
        job: &ImportJobRecord,
        failure: &str,
        actor: Actor<'_>,
        events: &mpsc::Sender<Event>,
    ) -> Result<(), IdentityError> {
        self.store
            .end_import_job(job.id, JobState::Failed, Some(failure), actor)
            .await?;
        let job = self
            .store
            .import_job(job.id)
            .await?
            .ok_or_else(|| IdentityError::Internal("the job vanished".into()))?;
        let _ = events
            .send(Event::Finished {
                job,
                replayed: false,
                first_errors: Vec::new(),
            })
            .await;
        Ok(())
    }
}
