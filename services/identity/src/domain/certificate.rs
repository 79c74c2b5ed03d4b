//! Certificates about a pupil's record (学籍证明, 在读证明): which records a kind may certify,
//! the verification code's alphabet, and whether a certificate still stands. Pure.

use super::EnrollmentStatus;

/// What a certificate states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKind {
    /// 学籍证明: the pupil holds a 学籍 at the school.
    Enrollment,
    /// 在读证明: the pupil is in school there.
    Attendance,
}

impl CertificateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrollment => "enrollment",
            Self::Attendance => "attendance",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Enrollment, Self::Attendance]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// The certificate's title on paper.
    pub fn title(self) -> &'static str {
        match self {
            Self::Enrollment => "学籍证明",
            Self::Attendance => "在读证明",
        }
    }

    /// Whether a record in `status` may be certified so: a 学籍 is held in school, suspended
    /// (休学) and, in the compulsory stage, dropped out (辍学); 在读 only in school.
    pub fn certifies(self, status: EnrollmentStatus) -> bool {
        match self {
            Self::Enrollment => matches!(
                status,
                EnrollmentStatus::Active
                    | EnrollmentStatus::Suspended
                    | EnrollmentStatus::DroppedOut
            ),
            Self::Attendance => status == EnrollmentStatus::Active,
        }
    }
}

/// The record's state in the words a certificate prints.
pub fn status_words(status: EnrollmentStatus) -> &'static str {
    match status {
        EnrollmentStatus::Active => "在籍在读",
        EnrollmentStatus::Suspended => "在籍（休学）",
        EnrollmentStatus::DroppedOut => "在籍（辍学）",
        _ => "不在籍",
    }
}

/// Letters and digits a clerk reads off paper without doubt: no 0/O, no 1/I.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A verification code from 60 random bits (`random`'s low bits).
pub fn verification_code(random: u64) -> String {
    (0..12)
        .map(|i| ALPHABET[((random >> (5 * i)) & 31) as usize] as char)
        .collect()
}

/// A code as typed: spaces and dashes dropped, upper case; `None` when it cannot be one.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 12 && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// Whether a certificate issued on a record at `school` still stands on the record now: what
/// changed, in words, or `None`.
pub fn changed_since(
    kind: CertificateKind,
    (certified_school, certified_status): (&str, EnrollmentStatus),
    (school_now, status_now): (&str, EnrollmentStatus),
) -> Option<String> {
    if school_now != certified_school {
        return Some(format!(
            "the pupil's record is now at school {school_now}, no longer at {certified_school}"
        ));
    }
    if !kind.certifies(status_now) {
        return Some(format!(
            "the record is now {} ({})",
            status_now.as_str(),
            status_words(status_now)
        ));
    }
    (status_now != certified_status).then(|| {
        format!(
            "the record is now {} ({}), was {}",
            status_now.as_str(),
            status_words(status_now),
            certified_status.as_str()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_back_as_typed_and_never_holds_look_alikes() {
        let code = verification_code(0x0123_4567_89ab_cdef);
        assert_eq!(code.len(), 12);
        assert!(!code.contains(['0', 'O', '1', 'I']));
        let typed = format!("{} {}", &code[..6], code[6..].to_lowercase());
        assert_eq!(normalize_code(&typed).as_deref(), Some(code.as_str()));
        assert_eq!(normalize_code("OOOO00001111"), None);
        assert_eq!(normalize_code("ABC"), None);
    }

    #[test]
    fn a_certificate_stands_while_the_record_does() {
        use EnrollmentStatus::*;
        let at = |status| ("2135000101", status);
        assert_eq!(
            changed_since(CertificateKind::Attendance, at(Active), at(Active)),
            None
        );
        assert!(changed_since(CertificateKind::Attendance, at(Active), at(Suspended)).is_some());
        assert!(
            changed_since(
                CertificateKind::Enrollment,
                at(Active),
                ("2135000102", Active)
            )
            .unwrap()
            .contains("2135000102")
        );
        assert!(CertificateKind::Enrollment.certifies(Suspended));
        assert!(!CertificateKind::Enrollment.certifies(Graduated));
        assert!(!CertificateKind::Attendance.certifies(Suspended));
    }
}
