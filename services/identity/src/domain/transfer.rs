//! What a transfer may take: the family's data must match a problem-free record that is in
//! school, or that left it and may be picked up by another school (劝返复学, 接收).

use chrono::NaiveDate;

use super::{EnrollmentStatus, normalize_name, status_change::LeftReason};

/// How a pupil who had left school stood when a transfer picked them up: the state, and for a
/// departure its reason (出国, 失踪, 退学...). What the receiving side counts the arrival as
/// (a return, a resumption, a return from abroad).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    pub status: EnrollmentStatus,
    pub left_reason: Option<LeftReason>,
}

impl Departure {
    /// The departure a stored (state, reason) pair describes; none for a pupil who was in
    /// school. A state another school may not pick up, or an unknown reason, is an error
    /// naming it.
    pub fn parse(status: Option<&str>, left_reason: Option<&str>) -> Result<Option<Self>, String> {
        let Some(status) = status.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let status = EnrollmentStatus::parse(status)
            .filter(|s| s.may_be_picked_up())
            .ok_or_else(|| format!("{status:?} is not a state a pupil is picked up from"))?;
        let left_reason = match left_reason.filter(|r| !r.is_empty()) {
            None => None,
            Some(_) if status != EnrollmentStatus::Left => None,
            Some(reason) => Some(
                LeftReason::parse(reason)
                    .ok_or_else(|| format!("{reason:?} is not a reason for leaving"))?,
            ),
        };
        Ok(Some(Self {
            status,
            left_reason,
        }))
    }
}

/// Why a transfer cannot take a student's enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferRefusal {
    /// 2001: the family's data match no live enrollment (nothing more is said).
    DataMismatch,
    /// 2002: another task is pending on the student.
    PendingTask,
    /// 2003: the record has an open problem.
    ProblemRecord,
    /// The enrollment is neither active nor left in a way another school may pick up
    /// (pending approval, finished, or closed).
    NotActive,
    /// From the annual cycle's freeze until the school year starts, graduating grades take no
    /// new task.
    GraduatingFreeze,
}

impl TransferRefusal {
    /// The reason of the error's `google.rpc.ErrorInfo`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::DataMismatch => "DATA_MISMATCH",
            Self::PendingTask => "PENDING_TASK",
            Self::ProblemRecord => "PROBLEM_RECORD",
            Self::NotActive => "NOT_ACTIVE",
            Self::GraduatingFreeze => "GRADUATING_FREEZE",
        }
    }

    /// The national code of the refusal, where the national rules define one.
    pub fn national_code(self) -> Option<&'static str> {
        match self {
            Self::DataMismatch => Some("2001"),
            Self::PendingTask => Some("2002"),
            Self::ProblemRecord => Some("2003"),
            Self::NotActive | Self::GraduatingFreeze => None,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::DataMismatch => "the data given do not match a live enrollment",
            Self::PendingTask => "another task is pending on this student",
            Self::ProblemRecord => "the student's record has an open problem",
            Self::NotActive => {
                "the student's enrollment is not active, nor left in a way another school may \
                 pick up: it is pending approval, finished or closed"
            }
            Self::GraduatingFreeze => {
                "the student is in a graduating grade, which takes no new task from the summer's \
                 freeze until the school year starts"
            }
        }
    }
}

/// Whether a record found by the number the family gave is theirs, and may be transferred:
/// the name (compared in NFC) and the birth date must both match, then the record must be
/// in school, or have left it in a way another school may pick up (see
/// [`EnrollmentStatus::may_be_picked_up`]), and be free of problems. Answers the state a
/// pick-up starts from (none for a pupil in school). The pending-task check is the lock's, in
/// the store.
pub fn check_transfer_match(
    record_name: &str,
    record_birth_date: NaiveDate,
    status: EnrollmentStatus,
    has_problem: bool,
    typed_name: &str,
    typed_birth_date: NaiveDate,
) -> Result<Option<EnrollmentStatus>, TransferRefusal> {
    let typed = normalize_name(typed_name).unwrap_or_default();
    if typed != record_name || typed_birth_date != record_birth_date {
        return Err(TransferRefusal::DataMismatch);
    }
    let picked_up_from = match status {
        EnrollmentStatus::Active => None,
        departed if departed.may_be_picked_up() => Some(departed),
        _ => return Err(TransferRefusal::NotActive),
    };
    if has_problem {
        return Err(TransferRefusal::ProblemRecord);
    }
    Ok(picked_up_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn born() -> NaiveDate {
        NaiveDate::from_ymd_opt(2016, 3, 7).unwrap()
    }

    fn check(status: EnrollmentStatus) -> Result<Option<EnrollmentStatus>, TransferRefusal> {
        check_transfer_match("王小明", born(), status, false, "王小明", born())
    }

    #[test]
    fn a_pupil_who_left_is_picked_up_from_the_state_they_left_in() {
        assert_eq!(check(EnrollmentStatus::Active), Ok(None));
        for departed in [
            EnrollmentStatus::DroppedOut,
            EnrollmentStatus::Suspended,
            EnrollmentStatus::Left,
        ] {
            assert_eq!(check(departed), Ok(Some(departed)), "{departed:?}");
        }
    }

    #[test]
    fn a_finished_closed_or_unapproved_record_is_not_transferred() {
        for status in [
            EnrollmentStatus::Pending,
            EnrollmentStatus::AwaitingNationalCheck,
            EnrollmentStatus::Rejected,
            EnrollmentStatus::Graduated,
            EnrollmentStatus::Completed,
            EnrollmentStatus::Incomplete,
            EnrollmentStatus::Deceased,
            EnrollmentStatus::Deleted,
        ] {
            assert_eq!(check(status), Err(TransferRefusal::NotActive), "{status:?}");
        }
    }

    #[test]
    fn the_family_data_are_checked_before_the_state_and_problems_after() {
        assert_eq!(
            check_transfer_match(
                "王小明",
                born(),
                EnrollmentStatus::Deceased,
                true,
                "王小红",
                born()
            ),
            Err(TransferRefusal::DataMismatch)
        );
        assert_eq!(
            check_transfer_match(
                "王小明",
                born(),
                EnrollmentStatus::DroppedOut,
                true,
                "王小明",
                born()
            ),
            Err(TransferRefusal::ProblemRecord)
        );
    }
}
