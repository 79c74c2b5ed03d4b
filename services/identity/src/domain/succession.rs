//! A school code voided by a merger or a category change, and the code that carries on: the
//! students of the voided code follow it (DESIGN §3: "their students and records go to the
//! merged school").

use chrono::NaiveDate;
use xueji_codes::SchoolCode;

/// Why a code was voided with a successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuccessionKind {
    /// Schools merged into the successor.
    Merge,
    /// The school changed category and was issued the successor code.
    CategoryChange,
}

impl SuccessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::CategoryChange => "category_change",
        }
    }

    /// `None` for a kind this service does not know (a caller reports it, never guesses).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "merge" => Some(Self::Merge),
            "category_change" => Some(Self::CategoryChange),
            _ => None,
        }
    }
}

/// One voided code, as the school replica lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Succession {
    pub predecessor: SchoolCode,
    pub successor: SchoolCode,
    pub kind: SuccessionKind,
    pub effective_date: NaiveDate,
    /// The publication that voided the predecessor: successions are followed in its order.
    pub version: i64,
}

/// Where following the replica's successions resumes: after this (version, voided code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuccessionCursor {
    pub version: i64,
    pub predecessor: String,
}

impl Succession {
    pub fn cursor(&self) -> SuccessionCursor {
        SuccessionCursor {
            version: self.version,
            predecessor: self.predecessor.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_refused() {
        for kind in [SuccessionKind::Merge, SuccessionKind::CategoryChange] {
            assert_eq!(SuccessionKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SuccessionKind::parse("closure"), None);
    }
}
