//! Problem-record resolution (问题学籍处理): which problem a record has open, and whether it may be
//! confirmed genuine or deleted. A correction (see `correction`) resolves what it corrects.
//! Pure.

use serde::{Deserialize, Serialize};

/// A problem a record can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// The resident ID number fails its checksum or disagrees with the birth date or gender.
    InvalidIdNumber,
    /// Another record (in another province) carries the same resident ID number.
    DuplicateIdNumber,
    /// Another live record has the same name, gender and birth date.
    DuplicateName,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidIdNumber => "invalid_id_number",
            Self::DuplicateIdNumber => "duplicate_id_number",
            Self::DuplicateName => "duplicate_name",
        }
    }
}

/// How a problem is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Evidence shows the record is genuine.
    Confirm,
    /// The record is a duplicate and goes (kept, visible to its authorities).
    Delete,
}

/// A resolution that may be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub problem: Problem,
    pub action: Action,
}

/// A record's open problems, as the resolution rules need them.
#[derive(Debug, Clone, Default)]
pub struct OpenProblems {
    pub kinds: Vec<Problem>,
    /// Whether the record holds its ID number's claim (its number is `G` + the ID number).
    pub holds_id_claim: bool,
}

/// Whether `resolution` may be asked for a record with `open` problems; the refusal says why.
pub fn check_resolution(resolution: Resolution, open: &OpenProblems) -> Result<(), String> {
    let problem = resolution.problem.as_str();
    if !open.kinds.contains(&resolution.problem) {
        return Err(format!("the record has no open {problem} problem"));
    }
    match (resolution.problem, resolution.action) {
        (Problem::InvalidIdNumber, Action::Confirm) => Err(
            "an invalid ID number cannot be confirmed: correct it (RequestCorrection) or delete \
             the record"
                .into(),
        ),
        (Problem::DuplicateIdNumber, Action::Confirm) if !open.holds_id_claim => Err(
            "only one record of an ID-number duplicate may be confirmed, the one holding the \
             national claim on the number; correct or delete this one"
                .into(),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(kinds: &[Problem], holds_id_claim: bool) -> OpenProblems {
        OpenProblems {
            kinds: kinds.to_vec(),
            holds_id_claim,
        }
    }

    fn resolution(problem: Problem, action: Action) -> Resolution {
        Resolution { problem, action }
    }

    #[test]
    fn several_name_duplicates_may_be_confirmed() {
        let twins = open(&[Problem::DuplicateName], false);
        assert!(
            check_resolution(resolution(Problem::DuplicateName, Action::Confirm), &twins).is_ok()
        );
        assert!(
            check_resolution(resolution(Problem::DuplicateName, Action::Delete), &twins).is_ok()
        );
    }

    #[test]
    fn only_the_claim_holder_of_an_id_duplicate_may_be_confirmed() {
        let holder = open(&[Problem::DuplicateIdNumber], true);
        let other = open(&[Problem::DuplicateIdNumber], false);
        let confirm = resolution(Problem::DuplicateIdNumber, Action::Confirm);
        assert!(check_resolution(confirm, &holder).is_ok());
        assert!(
            check_resolution(confirm, &other)
                .unwrap_err()
                .contains("only one record")
        );
        assert!(
            check_resolution(
                resolution(Problem::DuplicateIdNumber, Action::Delete),
                &other
            )
            .is_ok()
        );
    }

    #[test]
    fn an_invalid_id_number_is_corrected_or_deleted_never_confirmed() {
        let invalid = open(&[Problem::InvalidIdNumber], false);
        assert!(
            check_resolution(
                resolution(Problem::InvalidIdNumber, Action::Confirm),
                &invalid
            )
            .is_err()
        );
        assert!(
            check_resolution(
                resolution(Problem::InvalidIdNumber, Action::Delete),
                &invalid
            )
            .is_ok()
        );
    }

    #[test]
    fn a_problem_the_record_does_not_have_is_refused() {
        let clean = open(&[], true);
        let refused = check_resolution(resolution(Problem::DuplicateName, Action::Confirm), &clean)
            .unwrap_err();
        assert!(refused.contains("no open duplicate_name"), "{refused}");
    }
}
