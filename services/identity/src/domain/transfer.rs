//! What a transfer may take: the family's data must match a live, problem-free record.

use chrono::NaiveDate;

use super::{EnrollmentStatus, normalize_name};

/// Why a transfer cannot take a student's enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferRefusal {
    /// 2001: the family's data match no live enrollment (nothing more is said).
    DataMismatch,
    /// 2002: another task is pending on the student.
    PendingTask,
    /// 2003: the record has an open problem.
    ProblemRecord,
    /// The enrollment is not active (pending approval, or closed).
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
            Self::NotActive => "the student's enrollment is not active",
            Self::GraduatingFreeze => {
                "the student is in a graduating grade, which takes no new task from the summer's \
                 freeze until the school year starts"
            }
        }
    }
}

/// Whether a record found by the number the family gave is theirs, and may be transferred:
/// the name (compared in NFC) and the birth date must both match, then the record must be
/// active and free of problems. The pending-task check is the lock's, in the store.
pub fn check_transfer_match(
    record_name: &str,
    record_birth_date: NaiveDate,
    status: EnrollmentStatus,
    has_problem: bool,
    typed_name: &str,
    typed_birth_date: NaiveDate,
) -> Result<(), TransferRefusal> {
    let typed = normalize_name(typed_name).unwrap_or_default();
    if typed != record_name || typed_birth_date != record_birth_date {
        return Err(TransferRefusal::DataMismatch);
    }
    if status != EnrollmentStatus::Active {
        return Err(TransferRefusal::NotActive);
    }
    if has_problem {
        return Err(TransferRefusal::ProblemRecord);
    }
    Ok(())
}
