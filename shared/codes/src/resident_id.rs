use std::{fmt, str::FromStr};

use chrono::NaiveDate;

use crate::{CodeError, Gender, mod11, parse_compact_date};

/// An 18-character resident ID number (GB 11643-1999) with a correct check character and a real
/// birth date. Stored upper-case: a typed lowercase `x` becomes `X`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidentId(String);

impl ResidentId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Completes 17 digits (address, birth date, sequence) with their check character.
    pub fn from_body(body: &str) -> Result<Self, CodeError> {
        let digits: &[u8; 17] = body.as_bytes().try_into().map_err(|_| CodeError::Length {
            expected: 17,
            found: body.chars().count(),
        })?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(CodeError::Character {
                position: digits.iter().position(|b| !b.is_ascii_digit()).unwrap_or(0) + 1,
                expected: "a digit",
            });
        }
        format!("{body}{}", mod11::check_char(digits)).parse()
    }

    /// The 6-digit address code of first registration (not validated against today's table:
    /// division codes change every year and old numbers stay valid).
    pub fn address_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> NaiveDate {
        parse_compact_date(&self.0[6..14]).expect("checked when parsed")
    }

    pub fn gender(&self) -> Gender {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Gender::Male
        } else {
            Gender::Female
        }
    }
}

impl FromStr for ResidentId {
    type Err = CodeError;

    fn from_str(input: &str) -> Result<Self, CodeError> {
        let bytes = input.as_bytes();
        match input.chars().count() {
            0 => return Err(CodeError::Empty),
            15 if bytes.iter().all(u8::is_ascii_digit) => return Err(CodeError::LegacyIdNumber),
            18 => {}
            found => {
                return Err(CodeError::Length {
                    expected: 18,
                    found,
                });
            }
        }
        if let Some(position) = bytes[..17].iter().position(|b| !b.is_ascii_digit()) {
            return Err(CodeError::Character {
                position: position + 1,
                expected: "a digit",
            });
        }
        let found = match bytes[17] {
            digit @ b'0'..=b'9' => char::from(digit),
            b'x' | b'X' => 'X',
            _ => {
                return Err(CodeError::Character {
                    position: 18,
                    expected: "a digit or X",
                });
            }
        };
        if parse_compact_date(&input[6..14]).is_none() {
            return Err(CodeError::Date(input[6..14].to_owned()));
        }
        let body: &[u8; 17] = bytes[..17].try_into().expect("length checked");
        let expected = mod11::check_char(body);
        if expected != found {
            return Err(CodeError::Checksum { expected, found });
        }
        if !is_issuing_province(&input[..2]) {
            return Err(CodeError::IdProvince(input[..2].to_owned()));
        }
        Ok(Self(format!("{}{}", &input[..17], found)))
    }
}

/// Numbers are issued by the provinces of the division table and, for residence permits, by
/// Hong Kong (81), Macao (82) and Taiwan (83). Only the province is checked: the rest of the
/// address code is where the holder was first registered, which may be a division abolished
/// since.
fn is_issuing_province(digits: &str) -> bool {
    matches!(digits, "81" | "82" | "83")
        || format!("{digits}0000")
            .parse()
            .ok()
            .and_then(|code| crate::Divisions::bundled().get(code))
            .is_some_and(|division| division.level == crate::DivisionLevel::Province)
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers_parse_and_expose_their_parts() {
        let id: ResidentId = "11010519491231002X".parse().unwrap();
        assert_eq!(id.address_code(), "110105");
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
        );
        assert_eq!(id.gender(), Gender::Female);
        let id: ResidentId = "440524188001010014".parse().unwrap();
        assert_eq!(id.gender(), Gender::Male);
    }

    #[test]
    fn residence_permits_of_hong_kong_macao_and_taiwan_stay_valid() {
        for body in [
            "81000019491231002",
            "82000019491231002",
            "83000019491231002",
        ] {
            let id = ResidentId::from_body(body).unwrap();
            assert_eq!(&id.as_str()[..2], &body[..2]);
        }
        assert!(ResidentId::from_body("71000019491231002").is_err());
    }

    #[test]
    fn a_body_is_completed_with_its_check_character() {
        assert_eq!(
            ResidentId::from_body("11010519491231002").unwrap().as_str(),
            "11010519491231002X"
        );
        assert!(ResidentId::from_body("1101051949123100").is_err());
        assert!(
            ResidentId::from_body("11010519490230002").is_err(),
            "no 30 February"
        );
    }

    #[test]
    fn lowercase_x_is_accepted_and_stored_upper_case() {
        let id: ResidentId = "11010519491231002x".parse().unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn invalid_numbers_are_refused_with_a_reason() {
        let cases: &[(&str, CodeError)] = &[
            ("", CodeError::Empty),
            ("110105491231002", CodeError::LegacyIdNumber),
            (
                "1101051949123100",
                CodeError::Length {
                    expected: 18,
                    found: 16,
                },
            ),
            (
                "11010519491231002XX",
                CodeError::Length {
                    expected: 18,
                    found: 19,
                },
            ),
            (
                "11010519491231002Y",
                CodeError::Character {
                    position: 18,
                    expected: "a digit or X",
                },
            ),
            (
                "1101A519491231002X",
                CodeError::Character {
                    position: 5,
                    expected: "a digit",
                },
            ),
            (
                "110105194912310021",
                CodeError::Checksum {
                    expected: 'X',
                    found: '1',
                },
            ),
            ("110105194902300028", CodeError::Date("19490230".into())),
            ("990105194912310023", CodeError::IdProvince("99".into())),
            ("000105194912310024", CodeError::IdProvince("00".into())),
            (
                "１１０１０５１９４９１２３１００２Ｘ",
                CodeError::Character {
                    position: 1,
                    expected: "a digit",
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                input.parse::<ResidentId>().as_ref(),
                Err(expected),
                "{input}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_single_digit_change_is_caught(position in 0usize..17, delta in 1u8..10) {
            let valid = "11010519491231002X";
            let mut bytes = valid.as_bytes().to_vec();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let mutated = String::from_utf8(bytes).unwrap();
            proptest::prop_assert!(mutated.parse::<ResidentId>().is_err());
        }
    }
}
