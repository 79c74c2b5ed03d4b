//! The registration use case, shared by `RegisterStudent` and an intake import's rows: it
//! takes decoded input and answers domain and store types, never wire types. The handler
//! encodes the answer; the importer counts it.

use std::{collections::BTreeMap, sync::Arc};

use chrono::Utc;
use rand::Rng;
use xueji_auth::Caller;
use xueji_codes::{RegistryNumber, SchoolCode};

use crate::{
    IdentityError,
    batcher::RegistrationBatcher,
    directory::SchoolDirectory,
    domain::{
        self,
        provincial_fields::{ProvincialFields, check_registration_fields},
    },
    store::{Actor, ContinueOutcome, RegisterOutcome, Store, StudentRecord},
};

/// Temporary numbers are random: a few redraws make a collision vanishingly unlikely.
const NUMBER_DRAWS: usize = 8;
/// Registration batch writers (each keeps one database connection of the pool) and their batch
/// cap. Two keep the database busy: while one writes, the other's batch fills. A third makes
/// every batch smaller, and a statement's fixed cost (its plan's start, its commit) is as large
/// as what nine rows add to it (measured: 15% more CPU per registration at 32 clients).
const BATCH_WRITERS: usize = 2;
const MAX_BATCH: usize = 64;

/// Whose namespace a registration's idempotency key is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyScope {
    /// The caller's own (`RegisterStudent`): one user's key never meets another's.
    Caller,
    /// Already global (an import row's key names its job and row, whoever resumes the job).
    Global,
}

/// What a registration did.
#[derive(Debug)]
pub(crate) enum Registered {
    /// A new record under a new temporary number.
    New {
        registration: domain::Registration,
        number: RegistryNumber,
        /// It joined a group of students with the same name, gender and birth date.
        duplicate_name: bool,
    },
    /// A record as stored: the same request again (`replayed`), or a finished record that
    /// continues at the next stage (`continued`).
    Stored {
        record: StudentRecord,
        replayed: bool,
        continued: bool,
    },
}

/// Registers students: the checks, progression, and the group commit.
pub(crate) struct Registrar {
    store: Store,
    schools: Arc<SchoolDirectory>,
    fields: Arc<ProvincialFields>,
    batcher: RegistrationBatcher,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar").finish_non_exhaustive()
    }
}

impl Registrar {
    /// Must be called inside a Tokio runtime: it starts the registration batch writers.
    pub(crate) fn start(
        store: Store,
        schools: Arc<SchoolDirectory>,
        fields: Arc<ProvincialFields>,
    ) -> Self {
        Self {
            batcher: RegistrationBatcher::start(store.clone(), BATCH_WRITERS, MAX_BATCH),
            store,
            schools,
            fields,
        }
    }

    /// Registers a student from decoded input: every check (the school in the caller's
    /// jurisdiction, the national fields and the province's own), then progression (升学) or a
    /// new record with a fresh temporary number, group-committed by the batcher.
    pub(crate) async fn register(
        &self,
        caller: &Caller,
        request_id: &str,
        input: domain::RegistrationInput,
        given: BTreeMap<String, String>,
        continues: &str,
        key_scope: KeyScope,
    ) -> Result<Registered, IdentityError> {
        let school = match input.school_code.parse::<SchoolCode>() {
            Ok(code) => self.schools.visible(&self.store, caller, &code).await?,
            Err(_) => None,
        };
        if let Some(school) = &school
            && !domain::may_register(caller, school)
        {
            return Err(IdentityError::PermissionDenied(format!(
                "{} users oversee registrations; schools and their authorities register students",
                caller.level
            )));
        }
        // The province's own fields are checked where the school (its province) and the grade
        // (its stage) are known; their violations join the national fields'.
        let place = school
            .as_ref()
            .and_then(|s| Some((s.code.clone(), s.grade_place(input.grade)?.stage)));
        let provincial = match &place {
            Some((code, stage)) => {
                let province = code.province_digits();
                check_registration_fields(self.fields.of(province), province, &given, *stage)
            }
            None => Ok(BTreeMap::new()),
        };
        let registration = domain::validate_registration(input, school, Utc::now().date_naive());
        let mut registration = match (registration, provincial) {
            (Ok(mut registration), Ok(fields)) => {
                registration.provincial_fields = fields;
                registration
            }
            (national, provincial) => {
                let mut violations = national.err().unwrap_or_default();
                violations.extend(provincial.err().unwrap_or_default());
                return Err(IdentityError::InvalidArgument(violations));
            }
        };
        if key_scope == KeyScope::Caller {
            registration.idempotency_key = caller.scoped_key(&registration.idempotency_key);
        }
        if !continues.is_empty() {
            let student_id = self.continued_student(continues, &registration).await?;
            return self
                .continue_student(student_id, &registration, caller, request_id)
                .await;
        }

        for _ in 0..NUMBER_DRAWS {
            let number = registration.temporary_number(rand::thread_rng().gen_range(0..10_000));
            let outcome = self
                .batcher
                .register(
                    registration.clone(),
                    number.clone(),
                    caller.clone(),
                    request_id.to_owned(),
                )
                .await?;
            match outcome {
                RegisterOutcome::Created { duplicate_name, .. } => {
                    return Ok(Registered::New {
                        registration,
                        number,
                        duplicate_name,
                    });
                }
                RegisterOutcome::Replayed { student_id } => {
                    return Ok(Registered::Stored {
                        record: self.store.student(student_id).await?,
                        replayed: true,
                        continued: false,
                    });
                }
                RegisterOutcome::KeyReused => {
                    return Err(IdentityError::invalid(
                        "idempotency_key",
                        "was already used for a different registration; use a new key",
                    ));
                }
                RegisterOutcome::DuplicateIdNumber { .. } => {
                    // The holder may have finished a stage: then this is progression (升学).
                    let holder = match &registration.resident_id {
                        Some(id) => self.store.student_by_id_number(id.as_str()).await?,
                        None => None,
                    };
                    if let Some(holder) = holder {
                        match self
                            .continue_student(holder, &registration, caller, request_id)
                            .await
                        {
                            Err(IdentityError::FailedPrecondition(_)) => {}
                            answer => return answer,
                        }
                    }
                    return Err(IdentityError::AlreadyExists {
                        field: "document_number",
                        message: "another live enrollment record holds this resident ID number; \
                                  a student has exactly one record (a pupil who left another \
                                  school, 辍学, 休学, 出国 or 失踪, is taken with a transfer from \
                                  that record: StartTransfer)"
                            .into(),
                    });
                }
                RegisterOutcome::NumberTaken => continue,
            }
        }
        Err(IdentityError::Exhausted(
            "no free temporary number for this division and birth date; retry".into(),
        ))
    }

    /// The student a progression names by registry number: found only when the name and birth
    /// date match the record (the record may lie outside the caller's jurisdiction; a mismatch
    /// says nothing about it).
    async fn continued_student(
        &self,
        number: &str,
        registration: &domain::Registration,
    ) -> Result<i64, IdentityError> {
        let missing = || {
            IdentityError::invalid(
                "continues_registry_number",
                "no finished record of this province has this number with this name and birth date",
            )
        };
        let parsed: xueji_codes::RegistryNumber = number.parse().map_err(|e| {
            IdentityError::invalid("continues_registry_number", format!("registry number {e}"))
        })?;
        let id = self
            .store
            .student_by_number(parsed.as_str())
            .await?
            .ok_or_else(missing)?;
        let record = self.store.student(id).await?;
        if record.name != registration.name || record.birth_date != registration.birth_date {
            return Err(missing());
        }
        Ok(id)
    }

    /// Opens the next stage's enrollment for a student whose record finished its stage.
    /// FAILED_PRECONDITION when the record has not finished it.
    async fn continue_student(
        &self,
        student_id: i64,
        registration: &domain::Registration,
        caller: &Caller,
        request_id: &str,
    ) -> Result<Registered, IdentityError> {
        let outcome = self
            .store
            .continue_student(student_id, registration, Actor { caller, request_id })
            .await?;
        let replayed = match outcome {
            ContinueOutcome::Opened => false,
            ContinueOutcome::Replayed => true,
            ContinueOutcome::KeyReused => {
                return Err(IdentityError::invalid(
                    "idempotency_key",
                    "was already used for a different registration; use a new key",
                ));
            }
            ContinueOutcome::NotFinished(status) => {
                return Err(IdentityError::FailedPrecondition(format!(
                    "the student's record is {}: only a record that finished its stage \
                     (graduated, completed, incomplete) continues at the next stage",
                    status.as_str()
                )));
            }
            ContinueOutcome::Refused(violations) => {
                return Err(IdentityError::InvalidArgument(violations));
            }
        };
        Ok(Registered::Stored {
            record: self.store.student(student_id).await?,
            replayed,
            continued: true,
        })
    }
}
