//! The gRPC handlers: decode, authorize against the object, call the domain and the store,
//! map errors (through `From<IdentityError> for Status`).

mod convert;
pub mod ledger;
mod link;

use std::sync::Arc;

use chrono::Utc;
use rand::Rng;
use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Jurisdiction, Level};
use xueji_codes::{Divisions, RegistryNumber, ResidentId, SchoolCode};
use xueji_proto::identity::v1::{
    self as pb,
    identity_service_server::{IdentityService, IdentityServiceServer},
};

use crate::{
    IdentityError,
    batcher::RegistrationBatcher,
    directory::SchoolDirectory,
    domain::{self, Decision, DocumentType, EnrollmentStatus, School},
    national::{Deliverer, DeliveryOutcome},
    store::{Actor, Approval, RegisterOutcome, Store, StudentRecord, outbox},
};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;
/// Temporary numbers are random: a few redraws make a collision vanishingly unlikely.
const NUMBER_DRAWS: usize = 8;
/// Registration batch writers (each keeps one database connection of the pool) and their batch
/// cap. Two keep the database busy: while one writes, the other's batch fills. A third makes
/// every batch smaller, and a statement's fixed cost (its plan's start, its commit) is as large
/// as what nine rows add to it (measured: 15% more CPU per registration at 32 clients).
const BATCH_WRITERS: usize = 2;
const MAX_BATCH: usize = 64;

/// The identity service's state, shared by all requests.
#[derive(Debug)]
pub struct IdentityApi {
    store: Store,
    schools: Arc<SchoolDirectory>,
    registrations: RegistrationBatcher,
    national: Arc<Deliverer>,
}

/// How long an approval waits for the national duplicate check before answering "awaiting".
const NATIONAL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

impl IdentityApi {
    /// Must be called inside a Tokio runtime: it starts the registration batch writers.
    pub fn new(store: Store, schools: Arc<SchoolDirectory>, national: Arc<Deliverer>) -> Self {
        Self {
            registrations: RegistrationBatcher::start(store.clone(), BATCH_WRITERS, MAX_BATCH),
            store,
            schools,
            national,
        }
    }

    /// The tonic service with the stack's message limits.
    pub fn into_service(self) -> IdentityServiceServer<Self> {
        IdentityServiceServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    /// The school under `code` if the caller may see it; otherwise `None`, exactly as if it did
    /// not exist.
    async fn visible_school(
        &self,
        caller: &Caller,
        code: &SchoolCode,
    ) -> Result<Option<School>, IdentityError> {
        Ok(self
            .schools
            .get(&self.store, code)
            .await?
            .filter(|school| caller.may_access(&school.scope())))
    }

    /// The student holding `number` (a registry number, an alias or a resident ID number), if
    /// the caller may see it.
    async fn visible_student(
        &self,
        caller: &Caller,
        field: &'static str,
        number: &str,
    ) -> Result<StudentRecord, IdentityError> {
        let number = number.trim();
        let id = if let Ok(registry_number) = number.parse::<RegistryNumber>() {
            self.store
                .student_by_number(registry_number.as_str())
                .await?
        } else if let Ok(resident_id) = number.parse::<ResidentId>() {
            self.store
                .student_by_id_number(resident_id.as_str())
                .await?
        } else {
            return Err(IdentityError::invalid(
                field,
                format!(
                    "{number:?} is neither a registry number (G/L/J + 18) nor a resident ID number"
                ),
            ));
        };
        let missing = || IdentityError::NotFound(format!("student {number}"));
        let record = match id {
            Some(id) => self.store.student(id).await?,
            None => return Err(missing()),
        };
        if caller.may_access_record(&record.school_code, &record.school_division) {
            return Ok(record);
        }
        // A sending school keeps reading its archived copy after a transfer: the record as it
        // stood at that school, `transferred_out`.
        let archived = self.store.archived_enrollments(record.id).await?;
        match archived
            .into_iter()
            .find(|a| caller.may_access_record(&a.school_code, &a.school_division))
        {
            Some(archive) => Ok(StudentRecord {
                school_code: archive.school_code,
                school_division: archive.school_division,
                registry_authority: archive.registry_authority,
                grade: archive.grade,
                entry_date: archive.entry_date,
                status: EnrollmentStatus::TransferredOut.as_str().to_owned(),
                decided_at: archive.decided_at,
                decided_by: archive.decided_by,
                decision_reason: Some("transferred".into()),
                ..record
            }),
            None => Err(missing()),
        }
    }

    /// The registry authority's approver check, on a student the caller can already see.
    fn require_decider(caller: &Caller, record: &StudentRecord) -> Result<(), IdentityError> {
        let authority = record.registry_authority.parse().ok();
        if authority.is_some_and(|authority| caller.is_approver_for(authority)) {
            Ok(())
        } else {
            Err(IdentityError::PermissionDenied(format!(
                "only an approver of the registry authority {} may decide this registration",
                record.registry_authority
            )))
        }
    }

    async fn register(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RegisterStudentRequest,
    ) -> Result<pb::RegisterStudentResponse, IdentityError> {
        let school = match request.school_code.parse::<SchoolCode>() {
            Ok(code) => self.visible_school(caller, &code).await?,
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
        let mut registration = domain::validate_registration(
            convert::registration_input(request),
            school,
            Utc::now().date_naive(),
        )
        .map_err(IdentityError::InvalidArgument)?;
        registration.idempotency_key = caller.scoped_key(&registration.idempotency_key);

        for _ in 0..NUMBER_DRAWS {
            let number = registration.temporary_number(rand::thread_rng().gen_range(0..10_000));
            let outcome = self
                .registrations
                .register(
                    registration.clone(),
                    number.clone(),
                    caller.clone(),
                    request_id.to_owned(),
                )
                .await?;
            match outcome {
                RegisterOutcome::Created { duplicate_name, .. } => {
                    return Ok(pb::RegisterStudentResponse {
                        student: Some(convert::new_student(&registration, &number, duplicate_name)),
                        replayed: false,
                    });
                }
                RegisterOutcome::Replayed { student_id } => {
                    let record = self.store.student(student_id).await?;
                    return Ok(pb::RegisterStudentResponse {
                        student: Some(convert::student(record)),
                        replayed: true,
                    });
                }
                RegisterOutcome::KeyReused => {
                    return Err(IdentityError::invalid(
                        "idempotency_key",
                        "was already used for a different registration; use a new key",
                    ));
                }
                RegisterOutcome::DuplicateIdNumber { .. } => {
                    return Err(IdentityError::AlreadyExists {
                        field: "document_number",
                        message: "another live enrollment record holds this resident ID number; \
                                  a student has exactly one record"
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

    async fn approve(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::ApproveRegistrationRequest,
    ) -> Result<pb::ApproveRegistrationResponse, IdentityError> {
        let record = self
            .visible_student(caller, "registry_number", &request.registry_number)
            .await?;
        Self::require_decider(caller, &record)?;
        let status = EnrollmentStatus::parse(&record.status).unwrap_or(EnrollmentStatus::Pending);
        let needed = domain::decision_needed(status, Decision::Approve, &record.registry_number)
            .map_err(IdentityError::FailedPrecondition)?;
        if needed {
            let promotion = domain::promotion_for(
                DocumentType::parse(&record.document_type).unwrap_or(DocumentType::Other),
                record.document_number.as_deref(),
                record.school_division.parse().map_err(|_| {
                    IdentityError::FailedPrecondition("the school's division is invalid".into())
                })?,
                record.birth_date,
            );
            let approval = self
                .store
                .approve(record.id, &promotion, Actor { caller, request_id })
                .await?;
            self.national.wake();
            if let Approval::AwaitingNationalCheck { claim } = approval {
                self.national
                    .try_deliver_within(NATIONAL_PATIENCE, claim.sequence)
                    .await;
                if let Some(DeliveryOutcome::Refused { owner_province, .. }) =
                    outbox::outcome_of(self.store.pool(), claim.sequence).await?
                {
                    // Where the other record is, and which it is, stays outside the caller's
                    // jurisdiction: only a province's and the ministry's operators, who settle
                    // it with the other province, learn which province holds it.
                    let holder = if matches!(caller.level, Level::Province | Level::Ministry) {
                        format!("province {owner_province}")
                    } else {
                        "another province".to_owned()
                    };
                    return Err(IdentityError::FailedPrecondition(format!(
                        "the national duplicate check refused resident ID number {}: {holder} \
                         holds a live record for it; the registration is pending again and \
                         flagged as a duplicate for the provinces' authorities to settle",
                        record.document_number.as_deref().unwrap_or_default()
                    )));
                }
            }
        }
        let record = self.store.student(record.id).await?;
        Ok(pb::ApproveRegistrationResponse {
            student: Some(convert::student(record)),
        })
    }

    async fn reject(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RejectRegistrationRequest,
    ) -> Result<pb::RejectRegistrationResponse, IdentityError> {
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(IdentityError::invalid(
                "reason",
                "a rejection needs a reason of 1–500 characters",
            ));
        }
        let record = self
            .visible_student(caller, "registry_number", &request.registry_number)
            .await?;
        Self::require_decider(caller, &record)?;
        self.store
            .reject(record.id, reason, Actor { caller, request_id })
            .await?;
        self.national.wake();
        let record = self.store.student(record.id).await?;
        Ok(pb::RejectRegistrationResponse {
            student: Some(convert::student(record)),
        })
    }

    async fn list_students(
        &self,
        caller: &Caller,
        request: pb::ListStudentsRequest,
    ) -> Result<pb::ListStudentsResponse, IdentityError> {
        let limit = page_size(request.page_size)?;
        let after = page_token(&request.page_token)?;
        let code: SchoolCode = request
            .school_code
            .parse()
            .map_err(|e| IdentityError::invalid("school_code", format!("school code {e}")))?;
        if self.visible_school(caller, &code).await?.is_none() {
            return Err(IdentityError::NotFound(format!("school {code}")));
        }
        let records = self
            .store
            .students_of_school(&code, &after, i64::from(limit) + 1)
            .await?;
        let (students, next_page_token) = paginate(records, limit);
        Ok(pb::ListStudentsResponse {
            students: students.into_iter().map(convert::student).collect(),
            next_page_token,
        })
    }

    async fn school_workload(
        &self,
        caller: &Caller,
        request: pb::GetSchoolWorkloadRequest,
    ) -> Result<pb::GetSchoolWorkloadResponse, IdentityError> {
        let code: SchoolCode = request
            .school_code
            .trim()
            .parse()
            .map_err(|e| IdentityError::invalid("school_code", format!("school code {e}")))?;
        // A school nobody registered at may be unknown here; the ministry and the school's
        // province may still ask (the answer is then zero).
        let oversees_province = match &caller.jurisdiction {
            Jurisdiction::Nation => true,
            Jurisdiction::Division(division) => {
                caller.level == xueji_auth::Level::Province
                    && division.province_digits() == code.province_digits()
            }
            Jurisdiction::School(_) => false,
        };
        if !oversees_province && self.visible_school(caller, &code).await?.is_none() {
            return Err(IdentityError::NotFound(format!("school {code}")));
        }
        let (active, pending) = self.store.school_workload(&code).await?;
        Ok(pb::GetSchoolWorkloadResponse {
            active_enrollments: active,
            pending_registrations: pending,
        })
    }

    async fn list_problems(
        &self,
        caller: &Caller,
        request: pb::ListProblemRecordsRequest,
    ) -> Result<pb::ListProblemRecordsResponse, IdentityError> {
        let limit = page_size(request.page_size)?;
        // Two phases: this province's duplicate-name groups (token: a registry number), then
        // the problems the national index found (token: "national:<flag id>").
        let national_after = match request.page_token.strip_prefix(NATIONAL_PHASE) {
            Some(id) => Some(id.parse::<i64>().map_err(|_| {
                IdentityError::invalid("page_token", "is not a token this service issued")
            })?),
            None => None,
        };
        let after = match national_after {
            Some(_) => String::new(),
            None => page_token(&request.page_token)?,
        };
        let requested = request.jurisdiction.trim();
        let (counties, school) = if requested.is_empty() {
            match &caller.jurisdiction {
                Jurisdiction::Nation => (all_counties(), None),
                Jurisdiction::Division(division) => (domain::counties_within(*division), None),
                Jurisdiction::School(code) => (Vec::new(), Some(code.to_string())),
            }
        } else if let Ok(code) = requested.parse::<SchoolCode>() {
            if self.visible_school(caller, &code).await?.is_none() {
                return Err(IdentityError::NotFound(format!("jurisdiction {code}")));
            }
            (Vec::new(), Some(code.to_string()))
        } else {
            let division = Divisions::bundled()
                .known(requested)
                .map_err(|e| {
                    IdentityError::invalid(
                        "jurisdiction",
                        format!("must be a school code or a division code: {e}"),
                    )
                })?
                .code;
            if !caller
                .jurisdiction
                .contains(&Jurisdiction::Division(division))
            {
                return Err(IdentityError::NotFound(format!("jurisdiction {division}")));
            }
            (domain::counties_within(division), None)
        };
        let mut problems = Vec::new();
        let mut next_page_token = String::new();
        if national_after.is_none() {
            let records = self
                .store
                .duplicate_name_problems(&counties, school.as_deref(), &after, i64::from(limit) + 1)
                .await?;
            let (records, next) = paginate(records, limit);
            for record in records {
                // Partners outside the caller's jurisdiction are counted, never named.
                let partners = self.store.duplicate_partners(&record).await?;
                let partner_count = partners.len();
                let related: Vec<String> = partners
                    .into_iter()
                    .filter(|partner| {
                        caller.may_access_record(&partner.school_code, &partner.school_division)
                    })
                    .map(|partner| partner.registry_number)
                    .collect();
                problems.push(pb::ProblemRecord {
                    id: format!("duplicate_name:{}", record.registry_number),
                    kind: pb::ProblemKind::DuplicateName as i32,
                    detail: format!(
                        "same name, gender and birth date as {partner_count} other live \
                         record(s){}",
                        if partner_count > related.len() {
                            format!(
                                ", {} of them outside your jurisdiction",
                                partner_count - related.len()
                            )
                        } else {
                            String::new()
                        }
                    ),
                    registry_number: record.registry_number,
                    name: record.name,
                    school_code: record.school_code,
                    related_registry_numbers: related,
                    flagged_at: record
                        .registered_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                });
            }
            next_page_token = next;
        }
        let room = i64::from(limit) - problems.len() as i64;
        if next_page_token.is_empty() && room > 0 {
            let flags = self
                .store
                .national_flags(
                    &counties,
                    school.as_deref(),
                    national_after.unwrap_or(0),
                    room + 1,
                )
                .await?;
            let more = flags.len() as i64 > room;
            let mut last_id = None;
            for flag in flags.into_iter().take(room as usize) {
                last_id = Some(flag.id);
                problems.push(pb::ProblemRecord {
                    id: format!("national:{}", flag.id),
                    kind: match flag.kind.as_str() {
                        "duplicate_id_number" => pb::ProblemKind::DuplicateIdNumber,
                        _ => pb::ProblemKind::DuplicateName,
                    } as i32,
                    // The other record lies in another province: outside every jurisdiction
                    // but the nation's, so only the ministry sees its number; the province is
                    // named, as the authority to settle it with.
                    detail: format!(
                        "{} (found by the national index: a record of {})",
                        flag.detail,
                        if matches!(caller.level, Level::Province | Level::Ministry) {
                            format!("province {}", flag.other_province)
                        } else {
                            "another province".to_owned()
                        }
                    ),
                    registry_number: flag.registry_number,
                    name: flag.name,
                    school_code: flag.school_code,
                    related_registry_numbers: if caller.jurisdiction == Jurisdiction::Nation {
                        vec![flag.other_registry_number]
                    } else {
                        Vec::new()
                    },
                    flagged_at: flag
                        .flagged_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                });
            }
            if more && let Some(id) = last_id {
                next_page_token = format!("{NATIONAL_PHASE}{id}");
            }
        }
        Ok(pb::ListProblemRecordsResponse {
            problems,
            next_page_token,
        })
    }
}

fn all_counties() -> Vec<String> {
    let divisions = Divisions::bundled();
    let provinces: Vec<_> = (11..=82)
        .filter_map(|p| format!("{p}0000").parse().ok())
        .filter(|code| divisions.get(*code).is_some())
        .collect();
    provinces
        .into_iter()
        .flat_map(domain::counties_within)
        .collect()
}

fn page_size(requested: u32) -> Result<u32, IdentityError> {
    match requested {
        0 => Ok(DEFAULT_PAGE),
        n if n <= MAX_PAGE => Ok(n),
        _ => Err(IdentityError::invalid(
            "page_size",
            format!("must be at most {MAX_PAGE}"),
        )),
    }
}

/// Page tokens are the last registry number of the previous page.
const NATIONAL_PHASE: &str = "national:";

fn page_token(token: &str) -> Result<String, IdentityError> {
    if token.is_empty() {
        return Ok(String::new());
    }
    token
        .parse::<RegistryNumber>()
        .map(|number| number.to_string())
        .map_err(|_| IdentityError::invalid("page_token", "is not a token this service issued"))
}

fn paginate(mut records: Vec<StudentRecord>, limit: u32) -> (Vec<StudentRecord>, String) {
    if records.len() > limit as usize {
        records.truncate(limit as usize);
        let token = records
            .last()
            .map(|r| r.registry_number.clone())
            .unwrap_or_default();
        (records, token)
    } else {
        (records, String::new())
    }
}

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn register_student(
        &self,
        request: Request<pb::RegisterStudentRequest>,
    ) -> Result<Response<pb::RegisterStudentResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.register(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn approve_registration(
        &self,
        request: Request<pb::ApproveRegistrationRequest>,
    ) -> Result<Response<pb::ApproveRegistrationResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.approve(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn reject_registration(
        &self,
        request: Request<pb::RejectRegistrationRequest>,
    ) -> Result<Response<pb::RejectRegistrationResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.reject(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn get_student(
        &self,
        request: Request<pb::GetStudentRequest>,
    ) -> Result<Response<pb::GetStudentResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let record = self
            .visible_student(caller, "number", &request.get_ref().number)
            .await?;
        Ok(Response::new(pb::GetStudentResponse {
            student: Some(convert::student(record)),
        }))
    }

    async fn list_students(
        &self,
        request: Request<pb::ListStudentsRequest>,
    ) -> Result<Response<pb::ListStudentsResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.list_students(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_problem_records(
        &self,
        request: Request<pb::ListProblemRecordsRequest>,
    ) -> Result<Response<pb::ListProblemRecordsResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.list_problems(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_school_workload(
        &self,
        request: Request<pb::GetSchoolWorkloadRequest>,
    ) -> Result<Response<pb::GetSchoolWorkloadResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.school_workload(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_rejected_messages(
        &self,
        request: Request<pb::ListRejectedMessagesRequest>,
    ) -> Result<Response<pb::ListRejectedMessagesResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.rejected_messages(&caller, request.into_inner())
                .await?,
        ))
    }
}
