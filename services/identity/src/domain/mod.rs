//! The rules of the identity service, free of transport and storage: the coded values of a
//! record, schools as registration sees them, who may act. Rooms: `registration` (what a valid
//! registration is, the duplicate key), `transfer` (what a transfer may take).

use chrono::NaiveDate;
use xueji_auth::{Caller, Level, ObjectScope};
use xueji_codes::{
    DivisionCode, Divisions, Gender, GradePlace, ResidentId, SchoolCode, StageOffered, grade_place,
};
pub use xueji_validation::FieldViolation;

pub mod certificate;
pub mod classes;
pub mod correction;
pub mod details;
pub mod evidence;
pub mod feed;
pub mod history;
pub mod outbox;
pub mod problems;
pub mod provincial_fields;
mod registration;
pub mod resolution;
pub mod school_year;
pub mod sheet;
pub mod status_change;
pub mod succession;
mod transfer;
pub mod watch;

pub use registration::{
    Registration, RegistrationInput, StudentFlags, name_key, normalize_name, validate_registration,
};
pub use transfer::{Departure, TransferRefusal, check_transfer_match};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    ResidentIdCard,
    HkMacaoTravelPermit,
    TaiwanCompatriotPermit,
    HmtResidencePermit,
    Passport,
    Other,
    None,
}

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentIdCard => "resident_id_card",
            Self::HkMacaoTravelPermit => "hk_macao_travel_permit",
            Self::TaiwanCompatriotPermit => "taiwan_compatriot_permit",
            Self::HmtResidencePermit => "hmt_residence_permit",
            Self::Passport => "passport",
            Self::Other => "other",
            Self::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::ResidentIdCard,
            Self::HkMacaoTravelPermit,
            Self::TaiwanCompatriotPermit,
            Self::HmtResidencePermit,
            Self::Passport,
            Self::Other,
            Self::None,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRoute {
    NearbyAdmission,
    EntranceExam,
    Recommendation,
    MigrantAdmission,
    Other,
}

impl EntryRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NearbyAdmission => "nearby_admission",
            Self::EntranceExam => "entrance_exam",
            Self::Recommendation => "recommendation",
            Self::MigrantAdmission => "migrant_admission",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::NearbyAdmission,
            Self::EntranceExam,
            Self::Recommendation,
            Self::MigrantAdmission,
            Self::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// The states of an enrollment (DESIGN §4). Exactly one enrollment per student is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStatus {
    Pending,
    /// Approved by the registry authority; the national duplicate check of its resident ID
    /// number has not answered yet.
    AwaitingNationalCheck,
    Active,
    Rejected,
    /// The sending school's archived copy after a completed transfer.
    TransferredOut,
    Suspended,
    /// Left the school (withdrawal, expulsion, study abroad, missing, other): the reason is kept.
    Left,
    Graduated,
    Completed,
    Incomplete,
    DroppedOut,
    Deceased,
    /// Deleted when its problem was resolved by deletion: kept for its authorities.
    Deleted,
}

impl EnrollmentStatus {
    pub const ALL: [Self; 13] = [
        Self::Pending,
        Self::AwaitingNationalCheck,
        Self::Active,
        Self::Rejected,
        Self::TransferredOut,
        Self::Suspended,
        Self::Left,
        Self::Graduated,
        Self::Completed,
        Self::Incomplete,
        Self::DroppedOut,
        Self::Deceased,
        Self::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AwaitingNationalCheck => "awaiting_national_check",
            Self::Active => "active",
            Self::Rejected => "rejected",
            Self::TransferredOut => "transferred_out",
            Self::Suspended => "suspended",
            Self::Left => "left",
            Self::Graduated => "graduated",
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::DroppedOut => "dropped_out",
            Self::Deceased => "deceased",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The stage finished: graduated, completed or incomplete. The next stage's school may
    /// continue the record (升学).
    pub fn finished_stage(self) -> bool {
        matches!(self, Self::Graduated | Self::Completed | Self::Incomplete)
    }

    /// The pupil left school without finishing and keeps the record (休学, 辍学, or a
    /// departure: 出国, 失踪, 退学 and the like): another school may pick them up with a
    /// transfer from this state (劝返复学 at another school, often the hukou school), without
    /// the old school first filing a return. A death, a deletion or a finished stage is final.
    pub fn may_be_picked_up(self) -> bool {
        matches!(self, Self::Suspended | Self::DroppedOut | Self::Left)
    }
}

pub fn gender_str(gender: Gender) -> &'static str {
    match gender {
        Gender::Male => "male",
        Gender::Female => "female",
    }
}

pub fn parse_gender(text: &str) -> Option<Gender> {
    match text {
        "male" => Some(Gender::Male),
        "female" => Some(Gender::Female),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Guardian {
    pub name: String,
    pub relation: String,
    pub phone: String,
}

/// A school as registration needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct School {
    pub code: SchoolCode,
    pub name: String,
    /// The county-level division the school lies in.
    pub division: DivisionCode,
    /// The authority that approves its registrations (county, or city for senior high).
    pub registry_authority: DivisionCode,
    pub open_from: NaiveDate,
    pub open_until: Option<NaiveDate>,
    /// The stages it offers with their lengths of schooling (学制): they decide its grades.
    pub stages: Vec<StageOffered>,
}

impl School {
    pub fn scope(&self) -> ObjectScope {
        ObjectScope {
            school: self.code.clone(),
            division: self.division,
        }
    }

    pub fn is_open_on(&self, date: NaiveDate) -> bool {
        self.open_from <= date && self.open_until.is_none_or(|until| date <= until)
    }

    /// Where `grade` sits at this school (its stage, whether it graduates); `None` when the
    /// school does not teach it.
    pub fn grade_place(&self, grade: u32) -> Option<GradePlace> {
        grade_place(&self.stages, grade)
    }
}

/// The number approval issues: `G` + resident ID when the student has one (after the national
/// check), otherwise a `J` from the school's division, the birth date and the next sequence;
/// none for a student who holds a permanent number already (progression to the next stage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promotion {
    ToG(ResidentId),
    ToJ {
        division: DivisionCode,
        birth_date: NaiveDate,
    },
    /// The student keeps the `G` or `J` number they hold.
    Keep,
}

pub fn promotion_for(
    current_number: &str,
    document_type: DocumentType,
    document_number: Option<&str>,
    school_division: DivisionCode,
    birth_date: NaiveDate,
) -> Promotion {
    if !current_number.starts_with('L') {
        return Promotion::Keep;
    }
    let resident_id = (document_type == DocumentType::ResidentIdCard)
        .then(|| document_number.and_then(|n| n.parse::<ResidentId>().ok()))
        .flatten();
    match resident_id {
        Some(id) => Promotion::ToG(id),
        None => Promotion::ToJ {
            division: school_division,
            birth_date,
        },
    }
}

/// The registry authority's decision on a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// Whether `decision` still has work to do on a registration in `status`: `Ok(true)` to apply
/// it, `Ok(false)` when it was already applied (a retry changes nothing), an error when the
/// other decision was already taken.
pub fn decision_needed(
    status: EnrollmentStatus,
    decision: Decision,
    registry_number: &str,
) -> Result<bool, String> {
    match (status, decision) {
        (EnrollmentStatus::Pending, _) => Ok(true),
        (EnrollmentStatus::Active | EnrollmentStatus::AwaitingNationalCheck, Decision::Approve)
        | (EnrollmentStatus::Rejected, Decision::Reject) => Ok(false),
        (EnrollmentStatus::AwaitingNationalCheck, Decision::Reject) => Err(format!(
            "registration {registry_number} is approved and awaiting the national duplicate \
             check; it cannot be rejected now"
        )),
        (EnrollmentStatus::Rejected, Decision::Approve) => Err(format!(
            "registration {registry_number} was rejected; it cannot be approved"
        )),
        (EnrollmentStatus::Active, Decision::Reject) => Err(format!(
            "registration {registry_number} is already approved; it cannot be rejected"
        )),
        (EnrollmentStatus::TransferredOut, _) => Err(format!(
            "{registry_number} was transferred to another school; its registration is closed"
        )),
        (other, _) => Err(format!(
            "{registry_number} is {}: its registration was decided long ago",
            other.as_str()
        )),
    }
}

/// Who may register at a school: its own operators, and the authorities above it (county,
/// city), not the province or the ministry, who oversee.
/// The province's own system account, named `user` in the audit log (the annual cycle, the
/// deadline sweeper, the succession follower): a province operator over the whole province.
pub fn system_caller(province: &str, user: &str) -> Result<Caller, crate::IdentityError> {
    let division = format!("{province}0000").parse().map_err(|_| {
        crate::IdentityError::Internal(format!("{province:?} is not a province code"))
    })?;
    Ok(Caller {
        user: user.into(),
        level: Level::Province,
        jurisdiction: xueji_auth::Jurisdiction::Division(division),
        role: xueji_auth::Role::Operator,
    })
}

/// Why a stored resident ID number fails the rules registration applies (checksum, a real
/// birth date, a known division); `None` when it passes.
pub fn invalid_id_number(text: &str) -> Option<String> {
    text.parse::<ResidentId>()
        .err()
        .map(|e| format!("resident ID number {text}: {e}"))
}

/// What still ties a school to students: checked before it closes, and before a merger or a
/// category change voids its code (its students then move; its tasks must finish first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchoolWorkload {
    pub active_enrollments: u64,
    /// Pending registrations, including those awaiting the national check.
    pub pending_registrations: u64,
    pub suspended_enrollments: u64,
    /// Unfinished tasks of the school's current students, whatever their kind.
    pub pending_tasks: u64,
}

pub fn may_register(caller: &Caller, school: &School) -> bool {
    caller.may_access(&school.scope())
        && matches!(caller.level, Level::School | Level::County | Level::City)
}

/// Who may approve or reject a registration: an approver of the school's registry authority.
pub fn may_decide(caller: &Caller, school: &School) -> bool {
    caller.is_approver_for(school.registry_authority)
}

/// The county-level divisions inside a division jurisdiction, for scoped queries.
pub fn counties_within(division: DivisionCode) -> Vec<String> {
    let divisions = Divisions::bundled();
    let mut codes: Vec<String> = divisions
        .counties_of(division.province())
        .into_iter()
        .map(|d| d.code)
        .chain(
            // Cities without counties register schools directly under the city code.
            divisions.get(division).into_iter().map(|d| d.code),
        )
        .filter(|code| divisions.contains(division, *code))
        .map(|code| code.to_string())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests;
