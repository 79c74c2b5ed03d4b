//! The identifier formats of the registry, as newtypes that can only hold valid values.
//!
//! Parse once at the edge (`"…".parse::<ResidentId>()`), then pass the typed value around:
//! nothing downstream re-checks a check digit or a length. Every parser answers a
//! [`CodeError`] that says what is wrong in the user's terms.

mod division;
mod error;
mod mod11;
mod registry_number;
mod resident_id;
mod school_code;
mod stage;
mod text_serde;

pub use division::{Division, DivisionCode, DivisionLevel, Divisions};
pub use error::CodeError;
pub use registry_number::{RegistryKind, RegistryNumber};
pub use resident_id::ResidentId;
pub use school_code::{SchoolCategory, SchoolCode};
pub use stage::{GradePlace, Stage, StageOffered, default_stages, describe_grades, grade_place};

/// The gender encoded in a resident ID number (odd sequence digit = male).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
}

/// Parses `YYYYMMDD` into a calendar date.
fn parse_compact_date(digits: &str) -> Option<chrono::NaiveDate> {
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    chrono::NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}
