//! The transfer's rules, pure: what a start request must hold, which province rules refuse a
//! transfer, who the parties are and who may act for each, what a caller may see.

pub mod evidence;
pub mod remote;
mod rules;

use chrono::NaiveDate;
use xueji_auth::ObjectScope;
use xueji_codes::{DivisionCode, RegistryNumber, ResidentId, SchoolCategory, SchoolCode};
use xueji_validation::{FieldViolation, Violations, parse_date, required_text};
use xueji_workflow::Party;

pub use rules::{BUNDLED_RULES, Move, ProvinceRules, RuleRefusal, TransferRules};
/// A year of the official calendar as the ministry loaded it on the national node.
pub use xueji_calendar::PublishedYear;

/// A school as transfers need it: where it is, who its authority is, what it teaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolFacts {
    pub code: SchoolCode,
    /// County-level division of its location.
    pub division: DivisionCode,
    /// Its registry authority.
    pub registry_authority: DivisionCode,
    /// Its township (9 digits) where the school record carries one.
    pub township: Option<String>,
    /// Its stages and lengths of schooling (学制): the grades it teaches.
    pub stages: Vec<xueji_codes::StageOffered>,
}

impl SchoolFacts {
    pub fn province(&self) -> &str {
        self.code.province_digits()
    }

    pub fn category(&self) -> SchoolCategory {
        self.code.category()
    }

    pub fn scope(&self) -> ObjectScope {
        ObjectScope {
            school: self.code.clone(),
            division: self.division,
        }
    }
}

/// How the family identifies the student.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StudentKey {
    RegistryNumber(RegistryNumber),
    IdNumber(ResidentId),
}

impl StudentKey {
    /// The key as a transfer stores it (and a relayed hold request carries it): a 19-character
    /// registry number, otherwise a resident ID number; `None` when it is neither.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() == 19 {
            text.parse().ok().map(Self::RegistryNumber)
        } else {
            text.parse().ok().map(Self::IdNumber)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::RegistryNumber(n) => n.as_str(),
            Self::IdNumber(id) => id.as_str(),
        }
    }
}

/// A start request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub idempotency_key: String,
    pub receiving_school: SchoolCode,
    pub student: StudentKey,
    pub name: String,
    pub birth_date: NaiveDate,
    pub target_grade: u32,
    pub reason: String,
    pub evidence: Vec<String>,
}

/// A start request as received.
#[derive(Debug, Clone, Default)]
pub struct StartInput<'a> {
    pub idempotency_key: &'a str,
    pub receiving_school_code: &'a str,
    pub registry_number: &'a str,
    pub id_number: &'a str,
    pub name: &'a str,
    pub birth_date: &'a str,
    pub target_grade: u32,
    pub reason: &'a str,
    pub evidence: &'a [String],
}

const MAX_EVIDENCE: usize = 20;

/// Checks a start request whole, answering every bad field.
pub fn validate_start(input: &StartInput<'_>) -> Result<StartRequest, Vec<FieldViolation>> {
    let mut v = Violations::default();
    let key = v.check(required_text("idempotency_key", input.idempotency_key, 128));
    let school = v.check(
        input
            .receiving_school_code
            .trim()
            .parse::<SchoolCode>()
            .map_err(|e| FieldViolation::new("receiving_school_code", e.to_string())),
    );
    let number = input.registry_number.trim();
    let id = input.id_number.trim().to_uppercase();
    let student = match (number.is_empty(), id.is_empty()) {
        (false, false) => {
            v.add(
                "id_number",
                "give the registry number or the resident ID number, not both",
            );
            None
        }
        (false, true) => v.check(
            number
                .parse::<RegistryNumber>()
                .map(StudentKey::RegistryNumber)
                .map_err(|e| FieldViolation::new("registry_number", e.to_string())),
        ),
        (true, false) => v.check(
            id.parse::<ResidentId>()
                .map(StudentKey::IdNumber)
                .map_err(|e| FieldViolation::new("id_number", e.to_string())),
        ),
        (true, true) => {
            v.add(
                "registry_number",
                "give the student's registry number or resident ID number",
            );
            None
        }
    };
    let name = v.check(
        xueji_validation::person_name(input.name, 50).map_err(|e| FieldViolation::new("name", e)),
    );
    let birth_date = v.check(parse_date("birth_date", input.birth_date));
    if !(1..=12).contains(&input.target_grade) {
        v.add("target_grade", "must be 1–12");
    }
    let reason = v.check(required_text("reason", input.reason, 500));
    if input.evidence.len() > MAX_EVIDENCE {
        v.add("evidence", format!("at most {MAX_EVIDENCE} references"));
    }
    let evidence: Vec<String> = input
        .evidence
        .iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    if evidence.iter().any(|e| e.chars().count() > 200) {
        v.add("evidence", "a reference is at most 200 characters");
    }
    let (Some(key), Some(school), Some(student), Some(name), Some(birth_date), Some(reason)) =
        (key, school, student, name, birth_date, reason)
    else {
        return Err(v.into_vec());
    };
    v.finish(|| StartRequest {
        idempotency_key: key,
        receiving_school: school,
        student,
        name,
        birth_date,
        target_grade: input.target_grade,
        reason,
        evidence,
    })
}

/// The kinds of party, as steps name them.
pub mod party {
    pub const RECEIVING_AUTHORITY: &str = "receiving_authority";
    pub const RECEIVING_PROVINCE: &str = "receiving_province";
    pub const SENDING_SCHOOL: &str = "sending_school";
    pub const SENDING_AUTHORITY: &str = "sending_authority";
    pub const SENDING_PROVINCE: &str = "sending_province";

    /// Whether a kind of party sits on the sending side.
    pub fn is_sending(kind: &str) -> bool {
        kind.starts_with("sending_")
    }
}

/// The parties of a transfer, in order: receiving authority → sending school → sending
/// authority; a cross-province transfer adds a province's own approval on each side whose
/// policy asks for one.
pub fn parties(
    receiving: &SchoolFacts,
    sending: &SchoolFacts,
    provincial_step: impl Fn(&str) -> bool,
) -> Vec<Party> {
    let (r, s) = (receiving.province(), sending.province());
    let at = |kind: &str, jurisdiction: String, province: &str| Party {
        kind: kind.to_owned(),
        jurisdiction,
        province: province.to_owned(),
    };
    let mut parties = vec![at(
        party::RECEIVING_AUTHORITY,
        receiving.registry_authority.to_string(),
        r,
    )];
    let cross = r != s;
    if cross && provincial_step(r) {
        parties.push(at(party::RECEIVING_PROVINCE, format!("{r}0000"), r));
    }
    parties.push(at(party::SENDING_SCHOOL, sending.code.to_string(), s));
    parties.push(at(
        party::SENDING_AUTHORITY,
        sending.registry_authority.to_string(),
        s,
    ));
    if cross && provincial_step(s) {
        parties.push(at(party::SENDING_PROVINCE, format!("{s}0000"), s));
    }
    parties
}

pub use xueji_workflow::{level_above, may_decide, may_decide_some_step};

#[cfg(test)]
mod remote_fuzz;
#[cfg(test)]
mod tests;
