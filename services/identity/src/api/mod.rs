//! The gRPC handlers: decode, authorize against the object, call the domain and the store,
//! map errors (through `From<IdentityError> for Status`).

pub(crate) mod certificates;
pub(crate) mod classes;
mod convert;
mod corrections;
mod desk;
pub(crate) mod feed;
pub(crate) mod imports;
pub(crate) mod ledger;
mod link;
mod reads;
mod registration;
mod sheet_files;
mod watch;

pub(crate) mod school_year;
pub(crate) mod status_changes;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Level};
use xueji_codes::{RegistryNumber, ResidentId, SchoolCode};
use xueji_proto::identity::v1::{
    self as pb,
    identity_service_server::{IdentityService, IdentityServiceServer},
};

use crate::{
    IdentityError,
    directory::SchoolDirectory,
    domain::{EnrollmentStatus, School, provincial_fields::ProvincialFields},
    national::Deliverer,
    registrar::Registrar,
    store::{Actor, Store, StudentRecord},
};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// The identity service's state, shared by all requests.
#[derive(Debug)]
pub(crate) struct IdentityApi {
    pub(crate) store: Store,
    pub(crate) schools: Arc<SchoolDirectory>,
    /// The registration use case, shared with the importer.
    pub(crate) registrar: Arc<Registrar>,
    pub(crate) national: Arc<Deliverer>,
    /// Each province's own fields (非基础字段).
    pub(crate) fields: Arc<ProvincialFields>,
    /// The province this node serves (two digits), for callers above it (the ministry);
    /// `None` on a node serving the nation alone.
    pub(crate) province: Option<String>,
    /// The annual cycle: its dates name the school year a class belongs to.
    pub(crate) cycle: Option<Arc<crate::cycle::CycleRunner>>,
}

/// How long an approval waits for the national duplicate check before answering "awaiting".
const NATIONAL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

impl IdentityApi {
    /// Must be called inside a Tokio runtime: it starts the registration batch writers.
    pub(crate) fn new(
        store: Store,
        schools: Arc<SchoolDirectory>,
        national: Arc<Deliverer>,
        fields: Arc<ProvincialFields>,
    ) -> Self {
        Self {
            registrar: Arc::new(Registrar::start(
                store.clone(),
                schools.clone(),
                fields.clone(),
            )),
            store,
            schools,
            national,
            fields,
            province: None,
            cycle: None,
        }
    }

    /// The annual cycle whose dates name the current school year (for classes).
    pub(crate) fn with_cycle(mut self, cycle: Arc<crate::cycle::CycleRunner>) -> Self {
        self.cycle = Some(cycle);
        self
    }

    /// The province this node serves (two digits).
    pub(crate) fn with_province(mut self, province: &str) -> Self {
        self.province = Some(province.to_owned());
        self
    }

    /// The tonic service with the stack's message limits.
    pub(crate) fn into_service(self: Arc<Self>) -> IdentityServiceServer<Self> {
        IdentityServiceServer::from_arc(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    /// The school under `code` if the caller may see it; otherwise `None`, exactly as if it did
    /// not exist.
    pub(crate) async fn visible_school(
        &self,
        caller: &Caller,
        code: &SchoolCode,
    ) -> Result<Option<School>, IdentityError> {
        self.schools.visible(&self.store, caller, code).await
    }

    /// The student holding `number` (a registry number, an alias or a resident ID number), if
    /// the caller may see it.
    pub(crate) async fn visible_student(
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
        // A deleted record stays visible to its authorities, no longer to the school.
        if record.status == EnrollmentStatus::Deleted && caller.level == Level::School {
            return Err(missing());
        }
        if caller.may_access_record(&record.school_code, &record.school_division) {
            return Ok(record);
        }
        // A sending school keeps reading its archived copy after a transfer (the record as it
        // stood there, `transferred_out`), and a school its graduates' records after they
        // moved on to the next stage.
        let archived = self.store.archived_enrollments(record.id).await?;
        match archived
            .into_iter()
            .find(|a| caller.may_access_record(&a.school_code, &a.school_division))
        {
            Some(archive) => {
                // The person as they stood at the move, where the move kept them.
                let record = match archive.person {
                    Some(person) => StudentRecord {
                        name: person.name,
                        gender: crate::domain::parse_gender(&person.gender).ok_or_else(|| {
                            crate::store::unknown("archived gender", &person.gender)
                        })?,
                        birth_date: person.birth_date,
                        ethnicity: person.ethnicity,
                        document_type: crate::domain::DocumentType::parse(&person.document_type)
                            .ok_or_else(|| {
                                crate::store::unknown(
                                    "archived document_type",
                                    &person.document_type,
                                )
                            })?,
                        document_number: person.document_number,
                        guardian: serde_json::from_value(person.guardian).map_err(|e| {
                            crate::store::unknown("archived guardian", e.to_string())
                        })?,
                        aliases: person.aliases,
                        ..record
                    },
                    None => record,
                };
                Ok(StudentRecord {
                    school_code: archive.school_code,
                    school_division: archive.school_division,
                    registry_authority: archive.registry_authority,
                    grade: u32::try_from(archive.grade)
                        .map_err(|_| crate::store::unknown("grade", archive.grade))?,
                    entry_date: archive.entry_date,
                    status: EnrollmentStatus::parse(&archive.status)
                        .ok_or_else(|| crate::store::unknown("status", &archive.status))?,
                    decided_at: archive.decided_at,
                    decided_by: archive.decided_by,
                    decision_reason: (archive.status == EnrollmentStatus::TransferredOut.as_str())
                        .then(|| "transferred".into()),
                    suspended_until: None,
                    class: None,
                    ..record
                })
            }
            None => Err(missing()),
        }
    }

    /// The student and their school, if the caller may see them.
    pub(crate) async fn student_and_school(
        &self,
        caller: &Caller,
        number: &str,
    ) -> Result<(StudentRecord, School), IdentityError> {
        let record = self
            .visible_student(caller, "registry_number", number)
            .await?;
        let code: SchoolCode = record
            .school_code
            .parse()
            .map_err(|_| crate::store::unknown("school code", &record.school_code))?;
        let school = self
            .visible_school(caller, &code)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("student {number}")))?;
        Ok((record, school))
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
            self.school_students(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_problem_records(
        &self,
        request: Request<pb::ListProblemRecordsRequest>,
    ) -> Result<Response<pb::ListProblemRecordsResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.problem_records(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_school_workload(
        &self,
        request: Request<pb::GetSchoolWorkloadRequest>,
    ) -> Result<Response<pb::GetSchoolWorkloadResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.workload_of(&caller, request.into_inner()).await?,
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

    async fn scan_id_numbers(
        &self,
        request: Request<pb::ScanIdNumbersRequest>,
    ) -> Result<Response<pb::ScanIdNumbersResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        if !matches!(caller.level, Level::Province | Level::Ministry)
            || caller.role != xueji_auth::Role::Operator
        {
            return Err(IdentityError::PermissionDenied(
                "a province or ministry operator scans the province's records".into(),
            )
            .into());
        }
        let actor = Actor { caller, request_id };
        let report = crate::scans::scan_id_numbers(&self.store, actor).await?;
        Ok(Response::new(pb::ScanIdNumbersResponse {
            checked: report.checked,
            found: report.found,
            open: report.open,
        }))
    }

    async fn list_pending_registrations(
        &self,
        request: Request<pb::ListPendingRegistrationsRequest>,
    ) -> Result<Response<pb::ListPendingRegistrationsResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.pending_queue(&caller, request.into_inner()).await?,
        ))
    }

    async fn approve_registrations(
        &self,
        request: Request<pb::ApproveRegistrationsRequest>,
    ) -> Result<Response<pb::ApproveRegistrationsResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.approve_batch(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn search_students(
        &self,
        request: Request<pb::SearchStudentsRequest>,
    ) -> Result<Response<pb::SearchStudentsResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.search(&caller, request.into_inner()).await?,
        ))
    }
}
