use std::{fmt, str::FromStr};

use chrono::NaiveDate;

use crate::{CodeError, DivisionCode, ResidentId, mod11, parse_compact_date};

/// Which rule a registry number was issued under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryKind {
    /// `G` + resident ID number: issued once the national duplicate check passed and the
    /// registration was approved.
    G,
    /// Temporary: division + birth date + 4 random digits. Never checksummed.
    L,
    /// No usable resident ID: division + birth date + 3-digit sequence + MOD 11-2 check.
    J,
}

/// A 19-character registry number (学籍号).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryNumber(String);

impl RegistryNumber {
    /// The `G` number of a student with this resident ID.
    pub fn g(resident_id: &ResidentId) -> Self {
        Self(format!("G{resident_id}"))
    }

    /// An `L` number from its parts; `random` is taken modulo 10,000.
    pub fn l(division: DivisionCode, birth_date: NaiveDate, random: u16) -> Self {
        Self(format!(
            "L{division}{}{:04}",
            birth_date.format("%Y%m%d"),
            random % 10_000
        ))
    }

    /// A `J` number from its parts; `sequence` must be 1..=999.
    pub fn j(division: DivisionCode, birth_date: NaiveDate, sequence: u16) -> Option<Self> {
        if !(1..=999).contains(&sequence) {
            return None;
        }
        let body = format!("{division}{}{sequence:03}", birth_date.format("%Y%m%d"));
        let digits: &[u8; 17] = body.as_bytes().try_into().expect("17 digits");
        Some(Self(format!("J{body}{}", mod11::check_char(digits))))
    }

    pub fn kind(&self) -> RegistryKind {
        match self.0.as_bytes()[0] {
            b'G' => RegistryKind::G,
            b'L' => RegistryKind::L,
            _ => RegistryKind::J,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn birth_date(&self) -> NaiveDate {
        parse_compact_date(&self.0[7..15]).expect("checked when parsed")
    }
}

impl FromStr for RegistryNumber {
    type Err = CodeError;

    fn from_str(input: &str) -> Result<Self, CodeError> {
        let Some(first) = input.chars().next() else {
            return Err(CodeError::Empty);
        };
        let kind = match first.to_ascii_uppercase() {
            'G' => RegistryKind::G,
            'L' => RegistryKind::L,
            'J' => RegistryKind::J,
            _ => return Err(CodeError::RegistryKind),
        };
        let body = &input[1..];
        if kind == RegistryKind::G {
            let resident_id: ResidentId = body.parse().map_err(|e| match e {
                CodeError::Length { found, .. } => CodeError::Length {
                    expected: 19,
                    found: found + 1,
                },
                CodeError::Character { position, expected } => CodeError::Character {
                    position: position + 1,
                    expected,
                },
                other => other,
            })?;
            return Ok(Self::g(&resident_id));
        }
        let found = input.chars().count();
        if found != 19 {
            return Err(CodeError::Length {
                expected: 19,
                found,
            });
        }
        let digit_count = if kind == RegistryKind::J { 17 } else { 18 };
        if let Some(position) = body.as_bytes()[..digit_count]
            .iter()
            .position(|b| !b.is_ascii_digit())
        {
            return Err(CodeError::Character {
                position: position + 2,
                expected: "a digit",
            });
        }
        if parse_compact_date(&body[6..14]).is_none() {
            return Err(CodeError::Date(body[6..14].to_owned()));
        }
        let prefix = if kind == RegistryKind::L { 'L' } else { 'J' };
        if kind == RegistryKind::J {
            let digits: &[u8; 17] = body.as_bytes()[..17].try_into().expect("length checked");
            let expected = mod11::check_char(digits);
            let found = body[17..].chars().next().expect("length checked");
            if found.to_ascii_uppercase() != expected {
                return Err(CodeError::Checksum { expected, found });
            }
            return Ok(Self(format!("{prefix}{}{expected}", &body[..17])));
        }
        Ok(Self(format!("{prefix}{body}")))
    }
}

impl fmt::Display for RegistryNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RegistryNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistryNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn g_numbers_wrap_a_valid_resident_id() {
        let number: RegistryNumber = "G11010519491231002x".parse().unwrap();
        assert_eq!(number.as_str(), "G11010519491231002X");
        assert_eq!(number.kind(), RegistryKind::G);
        assert_eq!(
            "G110105194912310021".parse::<RegistryNumber>(),
            Err(CodeError::Checksum {
                expected: 'X',
                found: '1'
            })
        );
        assert_eq!(
            "G11010519491231002".parse::<RegistryNumber>(),
            Err(CodeError::Length {
                expected: 19,
                found: 18
            })
        );
    }

    #[test]
    fn l_bodies_are_never_checksummed() {
        // Any last four digits are valid, including ones a MOD 11-2 check would refuse.
        for tail in ["0000", "0001", "9999", "1234"] {
            let input = format!("L35010220150901{tail}");
            let number: RegistryNumber = input.parse().unwrap();
            assert_eq!(number.kind(), RegistryKind::L);
            assert_eq!(number.birth_date(), date(2015, 9, 1));
        }
        // An L number ending in X is a bad character, not a bad checksum.
        assert_eq!(
            "L35010220150901123X".parse::<RegistryNumber>(),
            Err(CodeError::Character {
                position: 19,
                expected: "a digit"
            })
        );
        let built = RegistryNumber::l("350102".parse().unwrap(), date(2015, 9, 1), 42);
        assert_eq!(built.as_str(), "L350102201509010042");
    }

    #[test]
    fn j_numbers_carry_a_check_character() {
        let built = RegistryNumber::j("350102".parse().unwrap(), date(2015, 9, 1), 7).unwrap();
        let parsed: RegistryNumber = built.as_str().parse().unwrap();
        assert_eq!(parsed, built);
        assert_eq!(parsed.kind(), RegistryKind::J);
        let mut wrong = built.as_str()[..18].to_owned();
        let check = built.as_str().chars().last().unwrap();
        wrong.push(if check == '0' { '1' } else { '0' });
        assert!(matches!(
            wrong.parse::<RegistryNumber>(),
            Err(CodeError::Checksum { .. })
        ));
        assert!(RegistryNumber::j("350102".parse().unwrap(), date(2015, 9, 1), 0).is_none());
        assert!(RegistryNumber::j("350102".parse().unwrap(), date(2015, 9, 1), 1000).is_none());
    }

    #[test]
    fn other_shapes_are_refused() {
        assert_eq!("".parse::<RegistryNumber>(), Err(CodeError::Empty));
        assert_eq!(
            "X350102201509010042".parse::<RegistryNumber>(),
            Err(CodeError::RegistryKind)
        );
        assert_eq!(
            "L35010220150231004".parse::<RegistryNumber>(),
            Err(CodeError::Length {
                expected: 19,
                found: 18
            })
        );
        assert_eq!(
            "L350102201502310042".parse::<RegistryNumber>(),
            Err(CodeError::Date("20150231".into()))
        );
        assert_eq!(
            "l350102201509010042"
                .parse::<RegistryNumber>()
                .unwrap()
                .as_str(),
            "L350102201509010042"
        );
    }
}
