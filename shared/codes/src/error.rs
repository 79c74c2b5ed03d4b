/// Why a string is not a valid code. Messages are written for the operator who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("must not be empty")]
    Empty,
    #[error("must be {expected} characters long, not {found}")]
    Length { expected: usize, found: usize },
    #[error(
        "is a 15-digit first-generation ID number; only 18-digit resident ID numbers are accepted"
    )]
    LegacyIdNumber,
    #[error("character {position} must be {expected}")]
    Character {
        position: usize,
        expected: &'static str,
    },
    #[error("contains an impossible date {0:?}")]
    Date(String),
    #[error("check character is {found}, expected {expected}")]
    Checksum { expected: char, found: char },
    #[error("must start with G, L or J")]
    RegistryKind,
    #[error("school category {0} is not a known category")]
    SchoolCategory(String),
    #[error(
        "starts with {0}, which is no province's code (nor 81, 82 or 83 for a residence permit)"
    )]
    IdProvince(String),
    #[error("province {0} is not a known province")]
    Province(String),
    #[error("division {0} is not in the division table")]
    UnknownDivision(String),
}
