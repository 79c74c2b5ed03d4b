//! The chunks of an import: intake rows registered through registration itself, migration
//! rows checked together before the bulk writer takes them.

use std::collections::HashMap;

use chrono::Utc;
use futures::StreamExt;
use xueji_auth::Caller;
use xueji_codes::SchoolCode;
use xueji_sheets::Row;

use super::Importer;
use crate::{
    IdentityError,
    domain::{
        self, School,
        provincial_fields::check_registration_fields,
        sheet::{Bound, Layout, check_migration},
    },
    registrar::{KeyScope, Registered},
    store::{
        imports::{ChunkDone, RowError, RowProblem},
        migration::MigrationRow,
    },
};

/// What an intake row did.
enum Written {
    Imported,
    /// Written, and to be seated in a class (id) at a seat (`None`: the next free), once the
    /// chunk's rows are written: seats are given in the file's order.
    ToSeat {
        number: String,
        class: i64,
        seat: Option<u32>,
    },
    /// The same student (ID number, name, birth date, school) is registered already.
    Present,
}

/// Intake registrations in flight at once: enough to fill the batcher's batches.
const INTAKE_CONCURRENCY: usize = 64;

impl Importer {
    /// Registers a chunk of intake rows through registration itself, several in flight (the
    /// batcher groups them), each keyed by the job and its row: a row written before a crash
    /// answers as a replay when read again.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn intake_chunk(
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
                    // The row's class, found before anything is written.
                    let class = match &record.class_name {
                        None => None,
                        Some(name) => match self.class_of_row(&record.input, name).await? {
                            Ok(class) => Some(class),
                            Err(reason) => {
                                return Ok((row, Err(vec![problem(layout, "class_name", reason)])));
                            }
                        },
                    };
                    let seat = record.class_seat;
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
                        Ok(registered) => match class {
                            None => Ok(Written::Imported),
                            Some(class) => Ok(Written::ToSeat {
                                number: match &registered {
                                    Registered::New { number, .. } => number.to_string(),
                                    Registered::Stored { record, .. } => {
                                        record.registry_number.clone()
                                    }
                                },
                                class,
                                seat,
                            }),
                        },
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
            let outcome = match outcome {
                Ok(Written::ToSeat {
                    number,
                    class,
                    seat,
                }) => self
                    .seat_row(caller, request_id, &number, class, seat)
                    .await?
                    .map(|()| Written::Imported)
                    .map_err(|reason| vec![problem(layout, "class_seat", reason)]),
                other => other,
            };
            match outcome {
                Ok(Written::Imported | Written::ToSeat { .. }) => done.imported += 1,
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
    pub(super) async fn already_here(
        &self,
        sent: &domain::RegistrationInput,
    ) -> Result<bool, IdentityError> {
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
    pub(super) async fn check_migration_chunk(
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
            if record.class_name.is_some() {
                // Nothing is dropped unsaid: classes are seated once the records are here.
                violations.push(domain::FieldViolation::new(
                    "class_name",
                    "a migration does not seat pupils in classes: leave 班级 empty, and seat \
                     them afterwards (xuejictl class assign, or an intake's class columns)",
                ));
            }
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
pub(super) async fn finish_write(
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

impl Importer {
    /// The class of the school's current school year a row names: its id, or why not.
    async fn class_of_row(
        &self,
        input: &crate::domain::RegistrationInput,
        name: &str,
    ) -> Result<Result<i64, String>, IdentityError> {
        let Some(cycle) = &self.cycle else {
            return Ok(Err("this node keeps no classes".into()));
        };
        self.store
            .class_for_pupil(
                input.school_code.trim(),
                cycle.school_year_now(),
                name,
                input.grade,
            )
            .await
    }

    /// Seats the registered pupil `number` in `class` (at `seat`, or the next free one; once:
    /// a row read again finds the pupil seated); why not, when the seat is taken.
    async fn seat_row(
        &self,
        caller: &Caller,
        request_id: &str,
        number: &str,
        class: i64,
        seat: Option<u32>,
    ) -> Result<Result<(), String>, IdentityError> {
        let Some(id) = self.store.student_by_number(number).await? else {
            return Err(IdentityError::Internal(format!(
                "the registered {number} is not found"
            )));
        };
        let record = self.store.student(id).await?;
        if record.class.as_ref().is_some_and(|c| c.id == class) {
            return Ok(Ok(()));
        }
        match self
            .store
            .assign_class(
                id,
                number,
                Some(crate::store::Seat {
                    class_id: class,
                    seat: seat.map(|s| s as i16),
                }),
                crate::store::Actor { caller, request_id },
            )
            .await
        {
            Ok(()) => Ok(Ok(())),
            Err(IdentityError::FailedPrecondition(message)) => Ok(Err(format!(
                "registered as {number}, but {message}: seat the pupil with xuejictl class assign"
            ))),
            Err(other) => Err(other),
        }
    }
}
