use std::{fmt, str::FromStr};

use crate::{CodeError, Divisions};

/// The category part (`AA`) of a school code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchoolCategory {
    Kindergarten = 11,
    Primary = 21,
    AdultPrimary = 22,
    Junior = 31,
    VocationalJunior = 32,
    AdultJunior = 33,
    SeniorHigh = 34,
    AdultSenior = 35,
    SecondaryVocational = 36,
    ReformSchool = 37,
    University = 41,
    SpecialEducation = 51,
}

impl SchoolCategory {
    pub const ALL: [SchoolCategory; 12] = [
        Self::Kindergarten,
        Self::Primary,
        Self::AdultPrimary,
        Self::Junior,
        Self::VocationalJunior,
        Self::AdultJunior,
        Self::SeniorHigh,
        Self::AdultSenior,
        Self::SecondaryVocational,
        Self::ReformSchool,
        Self::University,
        Self::SpecialEducation,
    ];

    pub fn from_digits(digits: &str) -> Option<Self> {
        let number: u8 = digits.parse().ok()?;
        Self::ALL.into_iter().find(|c| *c as u8 == number)
    }

    pub fn digits(self) -> String {
        format!("{:02}", self as u8)
    }

    /// The national grades (1–12) a school of this category teaches; `None` outside the
    /// primary and secondary registry (kindergartens, universities).
    pub fn grades(self) -> Option<std::ops::RangeInclusive<u32>> {
        Some(match self {
            Self::Primary | Self::AdultPrimary => 1..=6,
            Self::Junior | Self::VocationalJunior | Self::AdultJunior | Self::ReformSchool => 7..=9,
            Self::SeniorHigh | Self::AdultSenior | Self::SecondaryVocational => 10..=12,
            Self::SpecialEducation => 1..=12,
            Self::Kindergarten | Self::University => return None,
        })
    }

    /// Primary and junior: the compulsory stage.
    pub fn is_compulsory(self) -> bool {
        matches!(self, Self::Primary | Self::Junior)
    }
}

/// A 10-digit school code `AABBCCCCCC`: known category, known province, sequence.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchoolCode(String);

impl SchoolCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn category(&self) -> SchoolCategory {
        SchoolCategory::from_digits(&self.0[..2]).expect("checked when parsed")
    }

    /// The 2-digit province part, e.g. `"35"`.
    pub fn province_digits(&self) -> &str {
        &self.0[2..4]
    }

    pub fn sequence(&self) -> u32 {
        self.0[4..].parse().expect("checked when parsed")
    }
}

impl FromStr for SchoolCode {
    type Err = CodeError;

    fn from_str(input: &str) -> Result<Self, CodeError> {
        if input.is_empty() {
            return Err(CodeError::Empty);
        }
        if input.len() != 10 || !input.is_ascii() {
            return Err(CodeError::Length {
                expected: 10,
                found: input.chars().count(),
            });
        }
        if let Some(position) = input.bytes().position(|b| !b.is_ascii_digit()) {
            return Err(CodeError::Character {
                position: position + 1,
                expected: "a digit",
            });
        }
        if SchoolCategory::from_digits(&input[..2]).is_none() {
            return Err(CodeError::SchoolCategory(input[..2].to_owned()));
        }
        let province = format!("{}0000", &input[2..4]);
        let is_province = province
            .parse()
            .ok()
            .and_then(|code| Divisions::bundled().get(code))
            .is_some_and(|d| d.parent.is_none());
        if !is_province {
            return Err(CodeError::Province(input[2..4].to_owned()));
        }
        Ok(Self(input.to_owned()))
    }
}

impl fmt::Display for SchoolCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SchoolCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchoolCode({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes_expose_their_parts() {
        let code: SchoolCode = "2135000123".parse().unwrap();
        assert_eq!(code.category(), SchoolCategory::Primary);
        assert_eq!(code.province_digits(), "35");
        assert_eq!(code.sequence(), 123);
    }

    #[test]
    fn invalid_codes() {
        let cases: &[(&str, CodeError)] = &[
            ("", CodeError::Empty),
            (
                "213500012",
                CodeError::Length {
                    expected: 10,
                    found: 9,
                },
            ),
            (
                "21350001a3",
                CodeError::Character {
                    position: 9,
                    expected: "a digit",
                },
            ),
            ("2535000123", CodeError::SchoolCategory("25".into())),
            ("2199000123", CodeError::Province("99".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(
                input.parse::<SchoolCode>().as_ref(),
                Err(expected),
                "{input}"
            );
        }
    }
}
