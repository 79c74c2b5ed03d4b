//! Wire types ↔ domain types.

use chrono::{DateTime, Utc};
use xueji_codes::{Gender, RegistryNumber};
use xueji_proto::identity::v1 as pb;

use crate::{
    domain::{
        DocumentType, EnrollmentStatus, EntryRoute, Guardian, Registration, RegistrationInput,
    },
    store::StudentRecord,
};

pub(super) fn registration_input(request: pb::RegisterStudentRequest) -> RegistrationInput {
    RegistrationInput {
        gender: gender_from_wire(request.gender()),
        document_type: document_type_from_wire(request.document_type()),
        entry_route: entry_route_from_wire(request.entry_route()),
        idempotency_key: request.idempotency_key,
        name: request.name,
        birth_date: request.birth_date,
        ethnicity: request.ethnicity,
        document_number: request.document_number,
        school_code: request.school_code,
        grade: request.grade,
        entry_date: request.entry_date,
        guardian: request.guardian.map(|g| Guardian {
            name: g.name,
            relation: g.relation,
            phone: g.phone,
        }),
        flags: crate::domain::StudentFlags {
            migrant_child: request.migrant_child,
            left_behind_child: request.left_behind_child,
        },
    }
}

fn gender_from_wire(gender: pb::Gender) -> Option<Gender> {
    match gender {
        pb::Gender::Male => Some(Gender::Male),
        pb::Gender::Female => Some(Gender::Female),
        pb::Gender::Unspecified => None,
    }
}

fn gender_to_wire(gender: &str) -> pb::Gender {
    match crate::domain::parse_gender(gender) {
        Some(Gender::Male) => pb::Gender::Male,
        Some(Gender::Female) => pb::Gender::Female,
        None => pb::Gender::Unspecified,
    }
}

fn document_type_from_wire(kind: pb::DocumentType) -> Option<DocumentType> {
    use pb::DocumentType as W;
    Some(match kind {
        W::Unspecified => return None,
        W::ResidentIdCard => DocumentType::ResidentIdCard,
        W::HkMacaoTravelPermit => DocumentType::HkMacaoTravelPermit,
        W::TaiwanCompatriotPermit => DocumentType::TaiwanCompatriotPermit,
        W::HmtResidencePermit => DocumentType::HmtResidencePermit,
        W::Passport => DocumentType::Passport,
        W::Other => DocumentType::Other,
        W::None => DocumentType::None,
    })
}

fn document_type_to_wire(kind: Option<DocumentType>) -> pb::DocumentType {
    use pb::DocumentType as W;
    match kind {
        None => W::Unspecified,
        Some(DocumentType::ResidentIdCard) => W::ResidentIdCard,
        Some(DocumentType::HkMacaoTravelPermit) => W::HkMacaoTravelPermit,
        Some(DocumentType::TaiwanCompatriotPermit) => W::TaiwanCompatriotPermit,
        Some(DocumentType::HmtResidencePermit) => W::HmtResidencePermit,
        Some(DocumentType::Passport) => W::Passport,
        Some(DocumentType::Other) => W::Other,
        Some(DocumentType::None) => W::None,
    }
}

fn entry_route_from_wire(route: pb::EntryRoute) -> Option<EntryRoute> {
    use pb::EntryRoute as W;
    Some(match route {
        W::Unspecified => return None,
        W::NearbyAdmission => EntryRoute::NearbyAdmission,
        W::EntranceExam => EntryRoute::EntranceExam,
        W::Recommendation => EntryRoute::Recommendation,
        W::MigrantAdmission => EntryRoute::MigrantAdmission,
        W::Other => EntryRoute::Other,
    })
}

fn entry_route_to_wire(route: Option<EntryRoute>) -> pb::EntryRoute {
    use pb::EntryRoute as W;
    match route {
        None => W::Unspecified,
        Some(EntryRoute::NearbyAdmission) => W::NearbyAdmission,
        Some(EntryRoute::EntranceExam) => W::EntranceExam,
        Some(EntryRoute::Recommendation) => W::Recommendation,
        Some(EntryRoute::MigrantAdmission) => W::MigrantAdmission,
        Some(EntryRoute::Other) => W::Other,
    }
}

fn status_to_wire(status: Option<EnrollmentStatus>) -> pb::EnrollmentStatus {
    match status {
        None => pb::EnrollmentStatus::Unspecified,
        Some(EnrollmentStatus::Pending) => pb::EnrollmentStatus::Pending,
        Some(EnrollmentStatus::AwaitingNationalCheck) => {
            pb::EnrollmentStatus::AwaitingNationalCheck
        }
        Some(EnrollmentStatus::Active) => pb::EnrollmentStatus::Active,
        Some(EnrollmentStatus::Rejected) => pb::EnrollmentStatus::Rejected,
        Some(EnrollmentStatus::TransferredOut) => pb::EnrollmentStatus::TransferredOut,
        Some(EnrollmentStatus::Suspended) => pb::EnrollmentStatus::Suspended,
        Some(EnrollmentStatus::Left) => pb::EnrollmentStatus::Left,
        Some(EnrollmentStatus::Graduated) => pb::EnrollmentStatus::Graduated,
        Some(EnrollmentStatus::Completed) => pb::EnrollmentStatus::Completed,
        Some(EnrollmentStatus::Incomplete) => pb::EnrollmentStatus::Incomplete,
        Some(EnrollmentStatus::DroppedOut) => pb::EnrollmentStatus::DroppedOut,
        Some(EnrollmentStatus::Deceased) => pb::EnrollmentStatus::Deceased,
        Some(EnrollmentStatus::Deleted) => pb::EnrollmentStatus::Deleted,
    }
}

fn timestamp(time: Option<DateTime<Utc>>) -> String {
    time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn problems(duplicate_name: bool, national: &[String]) -> Vec<i32> {
    let mut kinds = Vec::new();
    if national.iter().any(|kind| kind == "invalid_id_number") {
        kinds.push(pb::ProblemKind::InvalidIdNumber as i32);
    }
    if national.iter().any(|kind| kind == "duplicate_id_number") {
        kinds.push(pb::ProblemKind::DuplicateIdNumber as i32);
    }
    if duplicate_name || national.iter().any(|kind| kind == "duplicate_name") {
        kinds.push(pb::ProblemKind::DuplicateName as i32);
    }
    kinds
}

/// A freshly registered student, answered from what was written (no read back).
pub(super) fn new_student(
    registration: &Registration,
    number: &RegistryNumber,
    duplicate_name: bool,
) -> pb::Student {
    pb::Student {
        registry_number: number.to_string(),
        aliases: Vec::new(),
        name: registration.name.clone(),
        gender: gender_to_wire(crate::domain::gender_str(registration.gender)) as i32,
        birth_date: registration.birth_date.to_string(),
        ethnicity: registration.ethnicity.clone(),
        document_type: document_type_to_wire(Some(registration.document_type)) as i32,
        document_number: registration.document_number.clone().unwrap_or_default(),
        school_code: registration.school.code.to_string(),
        school_division: registration.school.division.to_string(),
        grade: registration.grade,
        entry_date: registration.entry_date.to_string(),
        entry_route: entry_route_to_wire(Some(registration.entry_route)) as i32,
        guardian: Some(pb::Guardian {
            name: registration.guardian.name.clone(),
            relation: registration.guardian.relation.clone(),
            phone: registration.guardian.phone.clone(),
        }),
        status: pb::EnrollmentStatus::Pending as i32,
        registered_at: timestamp(Some(Utc::now())),
        decided_at: String::new(),
        decided_by: String::new(),
        decision_reason: String::new(),
        problems: problems(duplicate_name, &[]),
        provincial_fields: registration.provincial_fields.clone().into_iter().collect(),
        migrant_child: registration.flags.migrant_child,
        left_behind_child: registration.flags.left_behind_child,
        suspended_until: String::new(),
        class_name: String::new(),
        class_id: String::new(),
        class_seat: 0,
    }
}

pub(super) fn student(record: StudentRecord) -> pb::Student {
    let guardian = record.guardian;
    pb::Student {
        registry_number: record.registry_number,
        aliases: record.aliases,
        name: record.name,
        gender: gender_to_wire(crate::domain::gender_str(record.gender)) as i32,
        birth_date: record.birth_date.to_string(),
        ethnicity: record.ethnicity,
        document_type: document_type_to_wire(Some(record.document_type)) as i32,
        document_number: record.document_number.unwrap_or_default(),
        school_code: record.school_code,
        school_division: record.school_division,
        grade: record.grade,
        entry_date: record.entry_date.to_string(),
        entry_route: entry_route_to_wire(Some(record.entry_route)) as i32,
        guardian: Some(pb::Guardian {
            name: guardian.name,
            relation: guardian.relation,
            phone: guardian.phone,
        }),
        status: status_to_wire(Some(record.status)) as i32,
        registered_at: timestamp(Some(record.registered_at)),
        decided_at: timestamp(record.decided_at),
        decided_by: record.decided_by.unwrap_or_default(),
        decision_reason: record.decision_reason.unwrap_or_default(),
        problems: problems(record.duplicate_name, &record.national_problems),
        provincial_fields: record.provincial_fields.into_iter().collect(),
        migrant_child: record.flags.migrant_child,
        left_behind_child: record.flags.left_behind_child,
        suspended_until: record
            .suspended_until
            .map(|day| day.to_string())
            .unwrap_or_default(),
        class_name: record
            .class
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        class_id: record
            .class
            .as_ref()
            .map(|c| c.id.to_string())
            .unwrap_or_default(),
        class_seat: record.class.as_ref().map_or(0, |c| c.seat),
    }
}
