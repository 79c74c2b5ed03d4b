//! A school's lifecycle: its record, and which step (rename, merger, category change, close,
//! reopen) keeps or voids its code.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use xueji_codes::{SchoolCategory, SchoolCode};
use xueji_validation::Violations;

use crate::SchoolsError;

use super::*;

/// The code for the `sequence`-th school of a (category, province).
pub fn make_code(category: SchoolCategory, province: &str, sequence: u32) -> SchoolCode {
    format!("{}{province}{sequence:06}", category.digits())
        .parse()
        .expect("a known category, a known province and six digits make a valid code")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchoolStatus {
    Open,
    /// Closed: the code is void until the school reopens.
    Closed,
    /// Merged away or re-coded: void for ever.
    Voided,
}

impl SchoolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SchoolStatus::Open => "open",
            SchoolStatus::Closed => "closed",
            SchoolStatus::Voided => "voided",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            "voided" => Some(Self::Voided),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormerName {
    pub name: String,
    /// The day the next name took effect.
    pub replaced_on: NaiveDate,
}

/// A school as the registry records it and publications carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolRecord {
    pub code: SchoolCode,
    pub profile: Profile,
    pub status: SchoolStatus,
    pub open_from: NaiveDate,
    pub open_until: Option<NaiveDate>,
    pub former_names: Vec<FormerName>,
    /// Codes that carry this school on after a merge or a category change.
    pub successors: Vec<SchoolCode>,
}

impl SchoolRecord {
    /// Where the school sits, for jurisdiction checks.
    pub fn scope(&self) -> xueji_auth::ObjectScope {
        xueji_auth::ObjectScope {
            school: self.code.clone(),
            division: self.profile.division,
        }
    }

    pub fn is_open_on(&self, date: NaiveDate) -> bool {
        self.status == SchoolStatus::Open
            && self.open_from <= date
            && self.open_until.is_none_or(|until| date < until)
    }
}

/// What every lifecycle step names: the school, the day the step takes effect, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOrder {
    pub code: SchoolCode,
    pub effective_date: NaiveDate,
    pub reason: String,
}

/// What a lifecycle step is asked to do when it would change nothing (a retry): answer with
/// the school as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<T> {
    Apply(T),
    AlreadyDone,
}

/// Rename: refused on a void code; renaming to the current name is a retry.
pub fn rename(school: &SchoolRecord, new_name: &str) -> Result<Step<()>, SchoolsError> {
    if school.status == SchoolStatus::Voided {
        return Err(void_code(school));
    }
    if school.profile.name == new_name {
        return Ok(Step::AlreadyDone);
    }
    Ok(Step::Apply(()))
}

/// Which code the merged school carries: a predecessor's (only with that predecessor's
/// category) or a new one (`None`).
pub fn merged_code(
    predecessors: &[SchoolRecord],
    merged: &Profile,
    keep: Option<&SchoolCode>,
) -> Result<Option<SchoolCode>, SchoolsError> {
    let mut violations = Violations::default();
    if predecessors.len() < 2 {
        violations.add(
            "predecessors",
            "a merger needs at least two distinct schools",
        );
    }
    if let Some(other) = predecessors
        .iter()
        .find(|p| p.profile.province() != merged.province())
    {
        violations.add(
            "merged.division",
            format!(
                "the merged school must stay in the province of its predecessors ({} lies in \
                 province {})",
                other.code,
                other.profile.province()
            ),
        );
    }
    let kept = match keep {
        None => None,
        Some(code) => match predecessors.iter().find(|p| &p.code == code) {
            None => {
                violations.add("keep_code", "must be one of the predecessors");
                None
            }
            Some(p) if p.code.category() != merged.category => {
                violations.add(
                    "keep_code",
                    format!(
                        "a merged school keeps a predecessor's code only when the category is \
                         unchanged ({} is category {}, the merged school {}); leave keep_code \
                         empty for a new code",
                        p.code,
                        p.code.category().digits(),
                        merged.category.digits()
                    ),
                );
                None
            }
            Some(p) => Some(p.code.clone()),
        },
    };
    if !violations.is_empty() {
        return Err(SchoolsError::InvalidArgument(violations.into_vec()));
    }
    if let Some(closed) = predecessors.iter().find(|p| p.status != SchoolStatus::Open) {
        return Err(SchoolsError::FailedPrecondition(format!(
            "school {} is {}; only open schools merge",
            closed.code,
            closed.status.as_str()
        )));
    }
    Ok(kept)
}

/// A category change needs an open school and a different category.
pub fn change_category(
    school: &SchoolRecord,
    category: SchoolCategory,
) -> Result<Step<()>, SchoolsError> {
    if school.status == SchoolStatus::Voided
        && school
            .successors
            .iter()
            .any(|successor| successor.category() == category)
    {
        return Ok(Step::AlreadyDone);
    }
    if school.status != SchoolStatus::Open {
        return Err(SchoolsError::FailedPrecondition(format!(
            "school {} is {}; only an open school changes category",
            school.code,
            school.status.as_str()
        )));
    }
    if school.code.category() == category {
        return Err(SchoolsError::invalid(
            "new_category",
            format!(
                "school {} already is category {}",
                school.code,
                category.digits()
            ),
        ));
    }
    Ok(Step::Apply(()))
}

/// What still ties a school to students: checked before it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Workload {
    pub active_enrollments: u64,
    pub pending_registrations: u64,
    pub suspended_enrollments: u64,
    pub pending_tasks: u64,
}

pub fn close(school: &SchoolRecord, workload: Option<Workload>) -> Result<Step<()>, SchoolsError> {
    match school.status {
        SchoolStatus::Closed => return Ok(Step::AlreadyDone),
        SchoolStatus::Voided => return Err(void_code(school)),
        SchoolStatus::Open => {}
    }
    let workload = workload.unwrap_or_default();
    if workload != Workload::default() {
        return Err(SchoolsError::FailedPrecondition(format!(
            "school {} still has {} active students, {} suspended students, {} pending \
             registrations and {} pending tasks; transfer or close them first",
            school.code,
            workload.active_enrollments,
            workload.suspended_enrollments,
            workload.pending_registrations,
            workload.pending_tasks
        )));
    }
    Ok(Step::Apply(()))
}

/// A merger or a category change voids `code`: its students move to the successor with it,
/// but a task still running names the school as a party, so it must finish (or be cancelled)
/// first.
pub fn void_with_students(code: &SchoolCode, workload: Workload) -> Result<(), SchoolsError> {
    if workload.pending_tasks > 0 {
        return Err(SchoolsError::FailedPrecondition(format!(
            "school {code} still has {} pending tasks (transfers, status changes, corrections); \
             finish or cancel them before its code is voided",
            workload.pending_tasks
        )));
    }
    Ok(())
}

pub fn reopen(school: &SchoolRecord) -> Result<Step<()>, SchoolsError> {
    match school.status {
        SchoolStatus::Open => Ok(Step::AlreadyDone),
        SchoolStatus::Closed => Ok(Step::Apply(())),
        SchoolStatus::Voided => Err(void_code(school)),
    }
}

fn void_code(school: &SchoolRecord) -> SchoolsError {
    let successors = school
        .successors
        .iter()
        .map(SchoolCode::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    SchoolsError::FailedPrecondition(format!(
        "school code {} is void for ever (carried on by {}); act on the successor",
        school.code,
        if successors.is_empty() {
            "no school"
        } else {
            &successors
        }
    ))
}
