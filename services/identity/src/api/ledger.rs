//! The enrollment side of transfers, for the province's transfer service.

use std::sync::Arc;

use chrono::NaiveDate;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use xueji_auth::Clock;
use xueji_codes::{RegistryNumber, ResidentId, SchoolCode};
use xueji_proto::identity::v1::{
    self as pb,
    transfer_ledger_server::{TransferLedger, TransferLedgerServer},
};
use xueji_validation::{FieldViolation, Violations, parse_date};

use crate::{
    IdentityError,
    cycle::CycleRunner,
    directory::SchoolDirectory,
    store::{
        Actor, Store,
        moves::{Arrival, MovedStudent},
        transfers::{Destination, TransferLookup},
    },
};

#[derive(Debug, Clone)]
pub(crate) struct LedgerApi {
    store: Store,
    schools: Arc<SchoolDirectory>,
    /// The annual cycle (its dates in force) and the clock: graduating grades are frozen in
    /// the summer.
    cycle: Arc<CycleRunner>,
    clock: Clock,
}

/// The receiving school, grade and entry date a completion or an arrival names, checked into
/// `violations`.
fn arrival_fields(
    violations: &mut Violations,
    school_code: &str,
    grade: u32,
    entry_date: &str,
) -> (Option<SchoolCode>, Option<NaiveDate>) {
    let code = violations.check(
        school_code
            .trim()
            .parse::<SchoolCode>()
            .map_err(|e| FieldViolation::new("receiving_school_code", e.to_string())),
    );
    if !(1..=12).contains(&grade) {
        violations.add("grade", "must be 1–12");
    }
    (code, violations.check(parse_date("entry_date", entry_date)))
}

fn task_id(text: &str) -> Result<Uuid, FieldViolation> {
    text.trim()
        .parse()
        .map_err(|_| FieldViolation::new("task_id", "must be a UUID"))
}

impl LedgerApi {
    pub(crate) fn new(
        store: Store,
        schools: Arc<SchoolDirectory>,
        cycle: Arc<CycleRunner>,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            schools,
            cycle,
            clock,
        }
    }

    pub(crate) fn into_service(self) -> TransferLedgerServer<Self> {
        TransferLedgerServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    async fn hold(
        &self,
        actor: Actor<'_>,
        request: pb::HoldEnrollmentRequest,
    ) -> Result<pb::HoldEnrollmentResponse, IdentityError> {
        let mut violations = Violations::default();
        let task = violations.check(task_id(&request.task_id));
        let number = request.registry_number.trim();
        let id = request.id_number.trim().to_uppercase();
        let lookup = match (number.is_empty(), id.is_empty()) {
            (false, _) => match number.parse::<RegistryNumber>() {
                Ok(_) => Some(TransferLookup::RegistryNumber(number)),
                Err(e) => {
                    violations.add("registry_number", e.to_string());
                    None
                }
            },
            (true, false) => match id.parse::<ResidentId>() {
                Ok(_) => Some(TransferLookup::IdNumber(&id)),
                Err(e) => {
                    violations.add("id_number", e.to_string());
                    None
                }
            },
            (true, true) => {
                violations.add(
                    "registry_number",
                    "give the registry number or the resident ID number",
                );
                None
            }
        };
        if request.name.trim().is_empty() {
            violations.add("name", "is required");
        }
        let birth_date = violations.check(parse_date("birth_date", &request.birth_date));
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let (Some(task), Some(lookup), Some(birth_date)) = (task, lookup, birth_date) else {
            return Err(IdentityError::Internal("validated fields missing".into()));
        };
        let held = self
            .store
            .hold_for_transfer(
                task,
                lookup,
                (&request.name, birth_date),
                self.cycle
                    .dates()
                    .frozen(xueji_calendar::china_today(self.clock.now())),
                actor,
            )
            .await?;
        Ok(pb::HoldEnrollmentResponse {
            registry_number: held.registry_number,
            school_code: held.school_code,
            school_division: held.school_division,
            registry_authority: held.registry_authority,
            grade: held.grade as u32,
            picked_up_from: held
                .picked_up_from
                .map(|status| status.as_str().to_owned())
                .unwrap_or_default(),
        })
    }

    async fn complete(
        &self,
        actor: Actor<'_>,
        request: pb::CompleteTransferRequest,
    ) -> Result<pb::CompleteTransferResponse, IdentityError> {
        let mut violations = Violations::default();
        let task = violations.check(task_id(&request.task_id));
        let (code, entry_date) = arrival_fields(
            &mut violations,
            &request.receiving_school_code,
            request.grade,
            &request.entry_date,
        );
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let (Some(task), Some(code), Some(entry_date)) = (task, code, entry_date) else {
            return Err(IdentityError::Internal("validated fields missing".into()));
        };
        let school = self
            .schools
            .get(&self.store, &code)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("school {code}")))?;
        let done = self
            .store
            .complete_transfer(
                task,
                Destination {
                    school_code: school.code.as_str(),
                    school_division: school.division.as_str(),
                    grade: request.grade as i16,
                    entry_date,
                    deciders: &request.deciders,
                },
                actor,
            )
            .await?;
        Ok(pb::CompleteTransferResponse {
            registry_number: done.registry_number,
            moved: done.moved,
        })
    }
}

/// The wire form of a record that moves between provinces.
pub(crate) fn moved_to_wire(student: &MovedStudent) -> pb::MovedStudent {
    pb::MovedStudent {
        registry_number: student.registry_number.clone(),
        aliases: student.aliases.clone(),
        name: student.name.clone(),
        gender: crate::domain::gender_str(student.gender).to_owned(),
        birth_date: student.birth_date.to_string(),
        ethnicity: student.ethnicity.clone(),
        document_type: student.document_type.clone(),
        document_number: student.document_number.clone().unwrap_or_default(),
        id_number_claim: student.id_number_claim.clone().unwrap_or_default(),
        guardian_json: student.guardian.to_string(),
        entry_route: student.entry_route.clone(),
        picked_up_from: student
            .picked_up_from
            .map(|d| d.status.as_str().to_owned())
            .unwrap_or_default(),
        picked_up_left_reason: student
            .picked_up_from
            .and_then(|d| d.left_reason)
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
    }
}

/// At most this many old numbers on a record that moves (a student's numbers are few).
const MAX_MOVED_ALIASES: usize = 8;
/// Guardian data of a record that moves, at most (a few guardians' names and phones).
const MAX_MOVED_GUARDIAN_BYTES: usize = 8 * 1024;

/// A record from another province, checked field by field (`student.<field>`).
fn moved_from_wire(
    wire: Option<&pb::MovedStudent>,
    violations: &mut Violations,
) -> Option<MovedStudent> {
    let Some(wire) = wire else {
        violations.add("student", "is required");
        return None;
    };
    let number = wire.registry_number.trim();
    if let Err(e) = number.parse::<RegistryNumber>() {
        violations.add("student.registry_number", e.to_string());
    }
    // A record from another province goes through registration's own rules: a name as a
    // registration takes it, old numbers each a registry number (a student has few), short
    // coded fields and bounded guardian data.
    if wire.aliases.len() > MAX_MOVED_ALIASES {
        violations.add(
            "student.aliases",
            format!("at most {MAX_MOVED_ALIASES} old numbers"),
        );
    }
    for alias in wire.aliases.iter().take(MAX_MOVED_ALIASES + 1) {
        if alias.trim().parse::<RegistryNumber>().is_err() {
            violations.add(
                "student.aliases",
                format!(
                    "{:?} is not a registry number",
                    alias.chars().take(24).collect::<String>()
                ),
            );
        }
    }
    let name = match crate::domain::normalize_name(&wire.name) {
        Ok(name) => Some(name),
        Err(e) => {
            violations.add("student.name", e);
            None
        }
    };
    for (field, value) in [
        ("student.ethnicity", &wire.ethnicity),
        ("student.document_type", &wire.document_type),
        ("student.entry_route", &wire.entry_route),
        ("student.document_number", &wire.document_number),
    ] {
        if value.chars().count() > 64 {
            violations.add(field, "is longer than 64 characters");
        }
    }
    if wire.guardian_json.len() > MAX_MOVED_GUARDIAN_BYTES {
        violations.add(
            "student.guardian_json",
            format!("is longer than {MAX_MOVED_GUARDIAN_BYTES} bytes"),
        );
    }
    let gender = crate::domain::parse_gender(&wire.gender);
    if gender.is_none() {
        violations.add("student.gender", "must be male or female");
    }
    let birth_date = violations.check(parse_date("student.birth_date", &wire.birth_date));
    if wire.ethnicity.trim().is_empty() {
        violations.add("student.ethnicity", "is required");
    }
    if wire.document_type.trim().is_empty() {
        violations.add("student.document_type", "is required");
    }
    if wire.entry_route.trim().is_empty() {
        violations.add("student.entry_route", "is required");
    }
    let claim = wire.id_number_claim.trim().to_uppercase();
    if !claim.is_empty() && claim.parse::<ResidentId>().is_err() {
        violations.add("student.id_number_claim", "is not a resident ID number");
    }
    let guardian: Option<serde_json::Value> = match serde_json::from_str(&wire.guardian_json) {
        Ok(value @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => Some(value),
        _ => {
            violations.add("student.guardian_json", "must be the guardians as JSON");
            None
        }
    };
    let picked_up_from = match crate::domain::Departure::parse(
        Some(wire.picked_up_from.trim()),
        Some(wire.picked_up_left_reason.trim()),
    ) {
        Ok(departure) => departure,
        Err(e) => {
            violations.add("student.picked_up_from", e);
            None
        }
    };
    let (Some(gender), Some(birth_date), Some(guardian), Some(name)) =
        (gender, birth_date, guardian, name)
    else {
        return None;
    };
    if !violations.is_empty() {
        return None;
    }
    let optional = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
    Some(MovedStudent {
        registry_number: number.to_owned(),
        aliases: wire.aliases.iter().map(|a| a.trim().to_owned()).collect(),
        name,
        gender,
        birth_date,
        ethnicity: wire.ethnicity.trim().to_owned(),
        document_type: wire.document_type.trim().to_owned(),
        document_number: optional(&wire.document_number),
        id_number_claim: optional(&claim),
        guardian,
        entry_route: wire.entry_route.trim().to_owned(),
        picked_up_from,
    })
}

impl LedgerApi {
    async fn arrive(
        &self,
        actor: Actor<'_>,
        request: pb::TransferInRequest,
    ) -> Result<pb::TransferInResponse, IdentityError> {
        let mut violations = Violations::default();
        let task = violations.check(task_id(&request.task_id));
        let student = moved_from_wire(request.student.as_ref(), &mut violations);
        let (code, entry_date) = arrival_fields(
            &mut violations,
            &request.receiving_school_code,
            request.grade,
            &request.entry_date,
        );
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let (Some(task), Some(student), Some(code), Some(entry_date)) =
            (task, student, code, entry_date)
        else {
            return Err(IdentityError::Internal("validated fields missing".into()));
        };
        let school = self
            .schools
            .get(&self.store, &code)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("school {code}")))?;
        let moved = self
            .store
            .transfer_in(
                task,
                &student,
                Arrival {
                    school_code: school.code.as_str(),
                    school_division: school.division.as_str(),
                    grade: request.grade as i16,
                    entry_date,
                    deciders: &request.deciders,
                },
                actor,
            )
            .await?;
        Ok(pb::TransferInResponse {
            registry_number: student.registry_number,
            moved,
        })
    }
}

#[tonic::async_trait]
impl TransferLedger for LedgerApi {
    async fn transfer_out(
        &self,
        request: Request<pb::TransferOutRequest>,
    ) -> Result<Response<pb::TransferOutResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let actor = Actor { caller, request_id };
        let task = task_id(&request.get_ref().task_id)
            .map_err(|v| IdentityError::InvalidArgument(vec![v]))?;
        let (student, moved) = self.store.transfer_out(task, actor).await?;
        Ok(Response::new(pb::TransferOutResponse {
            student: Some(moved_to_wire(&student)),
            moved,
        }))
    }

    async fn transfer_in(
        &self,
        request: Request<pb::TransferInRequest>,
    ) -> Result<Response<pb::TransferInResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let actor = Actor { caller, request_id };
        Ok(Response::new(
            self.arrive(actor, request.get_ref().clone()).await?,
        ))
    }

    async fn hold_enrollment(
        &self,
        request: Request<pb::HoldEnrollmentRequest>,
    ) -> Result<Response<pb::HoldEnrollmentResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let actor = Actor { caller, request_id };
        Ok(Response::new(
            self.hold(actor, request.get_ref().clone()).await?,
        ))
    }

    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let actor = Actor { caller, request_id };
        let task = task_id(&request.get_ref().task_id)
            .map_err(|v| IdentityError::InvalidArgument(vec![v]))?;
        let released = self.store.release_transfer_hold(task, actor).await?;
        Ok(Response::new(pb::ReleaseHoldResponse { released }))
    }

    async fn complete_transfer(
        &self,
        request: Request<pb::CompleteTransferRequest>,
    ) -> Result<Response<pb::CompleteTransferResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let actor = Actor { caller, request_id };
        Ok(Response::new(
            self.complete(actor, request.get_ref().clone()).await?,
        ))
    }
}
