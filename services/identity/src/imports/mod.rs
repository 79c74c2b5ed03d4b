//! Bulk import: a file's rows read in order, checked, written in chunks, with the job's
//! progress committed after each chunk. Intake rows go through registration itself (every
//! check, the batcher, the national duplicate check by the outbox), keyed by job and row;
//! migration rows through the bulk writer (`store::imports`), keyed by their registry number.
//! A job found finished answers its summary; a job found running resumes after its last
//! committed row.

pub mod upload;

pub use upload::UploadLimits;

use std::{collections::HashMap, sync::Arc};

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::mpsc;
use xueji_auth::{Caller, Level, Role};
use xueji_codes::SchoolCode;
use xueji_sheets::{Format, Row};

use crate::{
    IdentityError,
    api::IdentityApi,
    directory::SchoolDirectory,
    domain::provincial_fields::ProvincialFields,
    domain::{
        self, School,
        provincial_fields::check_registration_fields,
        sheet::{Bound, ImportKind, Layout, check_migration},
    },
    national::Deliverer,
    registrar::{KeyScope, Registrar},
    store::{
        Actor, Store,
        imports::{ChunkDone, ImportJobRecord, JobState, NewJob, RowError, RowProblem},
        migration::MigrationRow,
    },
};

/// What an intake row did.
enum Written {
    Imported,
    /// The same student (ID number, name, birth date, school) is registered already.
    Present,
}

/// Rows per migration chunk (one transaction) and per intake chunk (registrations in flight
/// together, then the job's progress).
const MIGRATION_CHUNK: usize = 2_000;
const INTAKE_CHUNK: usize = 512;
/// Intake registrations in flight at once: enough to fill the batcher's batches.
const INTAKE_CONCURRENCY: usize = 64;

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
        }
    }

    /// The job a caller's upload belongs to: opened, or found (same file, same jurisdiction).
    pub(crate) async fn open_job(
        &self,
        caller: &Caller,
        header: &Header,
    ) -> Result<(ImportJobRecord, bool), IdentityError> {
        may_import(caller, header.kind)?;
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
        let province = match caller.jurisdiction.province_digits() {
            Some(province) => province.to_owned(),
            None => self.province.clone().unwrap_or_default(),
        };
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

    /// Registers a chunk of intake rows through registration itself, several in flight (the
    /// batcher groups them), each keyed by the job and its row: a row written before a crash
    /// answers as a replay when read again.
    #[allow(clippy::too_many_arguments)]
    async fn intake_chunk(
        &self,
        caller: &Caller,
        request_id: &str,
        layout: &Layout<'_>,
        bound: &Bound,
        rows: Vec<Row>,
        through: i64,
        job: uuid::Uuid,
    ) -> Result<ChunkDone, IdentityError> {
        // Rows of the chunk are registered concurrently: a resident ID number an earlier row
        // of the chunk carries is refused here, so that the earlier row is the one kept.
        let mut first_with_id: HashMap<String, u64> = HashMap::new();
        let rows: Vec<_> = rows
            .into_iter()
            .map(|row| {
                let (record, violations) = bound.read(&row.cells);
                let id = record.input.document_number.trim().to_ascii_uppercase();
                let repeat = if id.is_empty() {
                    None
                } else {
                    Some(*first_with_id.entry(id).or_insert(row.number))
                        .filter(|first| *first != row.number)
                };
                (row, record, violations, repeat)
            })
            .collect();
        let results: Vec<(Row, Result<Written, Vec<RowProblem>>)> = futures::stream::iter(
            rows.into_iter()
                .map(|(row, record, violations, repeat)| async move {
                    if let Some(first) = repeat {
                        let reason =
                            format!("repeats the document number of row {first} of this file");
                        return Ok((row, Err(vec![problem(layout, "document_number", reason)])));
                    }
                    if !violations.is_empty() {
                        let problems = problems_of(layout, &violations);
                        return Ok::<_, IdentityError>((row, Err(problems)));
                    }
                    let mut input = record.input;
                    input.idempotency_key = format!("import:{job}:{}", row.number);
                    let sent = input.clone();
                    let answer = self
                        .registrar
                        .register(
                            caller,
                            request_id,
                            input,
                            record.provincial_fields,
                            "",
                            KeyScope::Global,
                        )
                        .await;
                    let outcome = match answer {
                        Ok(_) => Ok(Written::Imported),
                        Err(IdentityError::InvalidArgument(violations)) => {
                            Err(problems_of(layout, &violations))
                        }
                        // The student this row names is here already, at this school: a file
                        // sent again with students added counts them as present.
                        Err(IdentityError::AlreadyExists { field, .. })
                            if field == "document_number" && self.already_here(&sent).await? =>
                        {
                            Ok(Written::Present)
                        }
                        Err(IdentityError::AlreadyExists { field, message }) => {
                            Err(vec![problem(layout, field, message)])
                        }
                        Err(
                            IdentityError::PermissionDenied(message)
                            | IdentityError::NotFound(message),
                        ) => Err(vec![problem(layout, "school_code", message)]),
                        Err(IdentityError::FailedPrecondition(message)) => {
                            Err(vec![problem(layout, "document_number", message)])
                        }
                        Err(other) => return Err(other),
                    };
                    Ok((row, outcome))
                }),
        )
        .buffered(INTAKE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
        let mut done = ChunkDone {
            through,
            ..ChunkDone::default()
        };
        for (row, outcome) in results {
            match outcome {
                Ok(Written::Imported) => done.imported += 1,
                Ok(Written::Present) => done.already += 1,
                Err(problems) => done.errors.push(RowError {
                    row: row.number as i64,
                    cells: bound
                        .original(&row.cells)
                        .iter()
                        .map(|c| (*c).to_owned())
                        .collect(),
                    problems,
                }),
            }
        }
        self.store.record_import_chunk(job, &done).await?;
        Ok(done)
    }

    /// Whether the student `sent` names is registered here already as sent: the live record
    /// of its ID number has its name, birth date and school.
    async fn already_here(&self, sent: &domain::RegistrationInput) -> Result<bool, IdentityError> {
        let id = sent.document_number.trim().to_ascii_uppercase();
        let Some(holder) = self.store.student_by_id_number(&id).await? else {
            return Ok(false);
        };
        let Some(record) = self.store.students(&[holder]).await?.into_iter().next() else {
            return Ok(false);
        };
        let Ok(name) = domain::normalize_name(&sent.name) else {
            return Ok(false);
        };
        Ok(record.name == name
            && record.birth_date.to_string() == sent.birth_date.trim()
            && record.school_code == sent.school_code.trim())
    }

    /// Checks a chunk of migration rows: the records to write, and the chunk's bad rows.
    async fn check_migration_chunk(
        &self,
        caller: &Caller,
        layout: &Layout<'_>,
        bound: &Bound,
        rows: Vec<Row>,
        through: i64,
        schools: &mut HashMap<String, Option<School>>,
    ) -> Result<(Vec<MigrationRow>, ChunkDone), IdentityError> {
        let today = Utc::now().date_naive();
        let mut done = ChunkDone {
            through,
            ..ChunkDone::default()
        };
        let mut good = Vec::with_capacity(rows.len());
        for row in rows {
            let cells: Vec<String> = bound
                .original(&row.cells)
                .iter()
                .map(|c| (*c).to_owned())
                .collect();
            let (record, mut violations) = bound.read(&row.cells);
            let code = record.input.school_code.clone();
            if !schools.contains_key(&code) {
                let school = match code.parse::<SchoolCode>() {
                    Ok(parsed) => self.schools.visible(&self.store, caller, &parsed).await?,
                    Err(_) => None,
                };
                schools.insert(code.clone(), school);
            }
            let school = schools[&code].clone();
            let provincial = match school
                .as_ref()
                .and_then(|s| Some((s, s.grade_place(record.input.grade)?.stage)))
            {
                Some((school, stage)) => {
                    let province = school.code.province_digits();
                    check_registration_fields(
                        self.fields.of(province),
                        province,
                        &record.provincial_fields,
                        stage,
                    )
                }
                None => Ok(Default::default()),
            };
            let mut input = record.input.clone();
            input.idempotency_key = format!("migration:{}", record.registry_number);
            if input.idempotency_key.len() > 128 {
                input.idempotency_key.truncate(128);
            }
            let checked = domain::validate_registration(input, school, today);
            let checked = match (checked, provincial) {
                (Ok(mut registration), Ok(fields)) if violations.is_empty() => {
                    registration.provincial_fields = fields;
                    check_migration(&record, registration)
                }
                (national, provincial) => {
                    violations.extend(national.err().unwrap_or_default());
                    violations.extend(provincial.err().unwrap_or_default());
                    Err(violations)
                }
            };
            match checked {
                Ok(migrated) => good.push(MigrationRow {
                    row: row.number as i64,
                    cells,
                    record: migrated,
                }),
                Err(violations) => done.errors.push(RowError {
                    row: row.number as i64,
                    cells,
                    problems: problems_of(layout, &violations),
                }),
            }
        }
        Ok((good, done))
    }
}

/// The outcome of a chunk's write running in its own task.
async fn finish_write(
    write: tokio::task::JoinHandle<Result<ChunkDone, IdentityError>>,
) -> Result<ChunkDone, IdentityError> {
    write
        .await
        .map_err(|e| IdentityError::Internal(format!("a chunk's write stopped: {e}")))?
}

fn problem(layout: &Layout<'_>, field: &str, reason: String) -> RowProblem {
    RowProblem {
        field: field.to_owned(),
        heading: layout.heading_of(field).unwrap_or_default(),
        reason,
    }
}

fn problems_of(layout: &Layout<'_>, violations: &[domain::FieldViolation]) -> Vec<RowProblem> {
    violations
        .iter()
        .map(|v| problem(layout, v.field, v.description.clone()))
        .collect()
}
