use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use xueji_codes::{DivisionCode, DivisionLevel, Divisions, SchoolCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ministry,
    Province,
    City,
    County,
    School,
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ministry" => Ok(Self::Ministry),
            "province" => Ok(Self::Province),
            "city" => Ok(Self::City),
            "county" => Ok(Self::County),
            "school" => Ok(Self::School),
            other => Err(format!(
                "unknown level {other:?} (ministry, province, city, county or school)"
            )),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ministry => "ministry",
            Self::Province => "province",
            Self::City => "city",
            Self::County => "county",
            Self::School => "school",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 学籍管理员: enters and edits data.
    Operator,
    /// 学籍主管领导: approves.
    Approver,
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "operator" => Ok(Self::Operator),
            "approver" => Ok(Self::Approver),
            other => Err(format!("unknown role {other:?} (operator or approver)")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Operator => "operator",
            Self::Approver => "approver",
        })
    }
}

/// The part of the country a caller is responsible for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Jurisdiction {
    Nation,
    Division(DivisionCode),
    School(SchoolCode),
}

impl Jurisdiction {
    /// Checks that `text` names a jurisdiction of the right kind for `level`.
    pub fn for_level(level: Level, text: &str) -> Result<Self, String> {
        let divisions = Divisions::bundled();
        let division_of = |expected: &[DivisionLevel]| -> Result<Self, String> {
            let division = divisions
                .known(text)
                .map_err(|e| format!("jurisdiction {text:?}: {e}"))?;
            let is_county_level_city = division.level == DivisionLevel::City
                && expected.contains(&DivisionLevel::County)
                && !divisions
                    .counties_of(division.code.province())
                    .iter()
                    .any(|county| county.parent == Some(division.code));
            if expected.contains(&division.level) || is_county_level_city {
                Ok(Self::Division(division.code))
            } else {
                Err(format!(
                    "jurisdiction {text} ({}) is not a {level}-level division",
                    division.name
                ))
            }
        };
        match level {
            Level::Ministry => match text {
                "" | "000000" => Ok(Self::Nation),
                other => Err(format!(
                    "a ministry jurisdiction is the whole nation, not {other:?}"
                )),
            },
            Level::Province => division_of(&[DivisionLevel::Province]),
            Level::City => division_of(&[DivisionLevel::City]),
            Level::County => division_of(&[DivisionLevel::County]),
            Level::School => text
                .parse()
                .map(Self::School)
                .map_err(|e| format!("jurisdiction {text:?}: school code {e}")),
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Self::Nation => "000000".to_owned(),
            Self::Division(code) => code.to_string(),
            Self::School(code) => code.to_string(),
        }
    }

    /// The province this jurisdiction lies in (2 digits); `None` for the nation.
    pub fn province_digits(&self) -> Option<&str> {
        match self {
            Self::Nation => None,
            Self::Division(code) => Some(code.province_digits()),
            Self::School(code) => Some(code.province_digits()),
        }
    }

    /// True when `inner` lies inside (or is) this jurisdiction.
    pub fn contains(&self, inner: &Jurisdiction) -> bool {
        match (self, inner) {
            (Self::Nation, _) => true,
            (_, Self::Nation) => false,
            (Self::Division(outer), Self::Division(inner)) => {
                Divisions::bundled().contains(*outer, *inner)
            }
            (Self::Division(_), Self::School(_)) => false,
            (Self::School(outer), Self::School(inner)) => outer == inner,
            (Self::School(_), Self::Division(_)) => false,
        }
    }

    /// True when the object lies inside this jurisdiction.
    pub fn covers(&self, object: &ObjectScope) -> bool {
        match self {
            Self::Nation => true,
            Self::Division(outer) => Divisions::bundled().contains(*outer, object.division),
            Self::School(code) => *code == object.school,
        }
    }
}

/// Where an object (a student, an enrollment, a school record) sits: its school and the
/// county-level division the school lies in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectScope {
    pub school: SchoolCode,
    pub division: DivisionCode,
}

/// The authenticated operator behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub level: Level,
    pub jurisdiction: Jurisdiction,
    pub role: Role,
}

impl Caller {
    /// May this caller see or act on the object? Callers must answer a refusal here exactly
    /// like a missing object, so that scope cannot be probed.
    pub fn may_access(&self, object: &ObjectScope) -> bool {
        self.jurisdiction.covers(object)
    }

    /// Like [`may_access`](Self::may_access), for a record that names its place as text (as
    /// another service answered it): a record whose place does not parse is seen by the nation
    /// only.
    pub fn may_access_record(&self, school: &str, division: &str) -> bool {
        match (school.parse(), division.parse()) {
            (Ok(school), Ok(division)) => self.may_access(&ObjectScope { school, division }),
            _ => self.jurisdiction == Jurisdiction::Nation,
        }
    }

    /// Is this caller an approver of the registry authority `authority` (a division code)?
    pub fn is_approver_for(&self, authority: DivisionCode) -> bool {
        self.role == Role::Approver && self.jurisdiction == Jurisdiction::Division(authority)
    }

    /// `key` (an idempotency key the caller chose) in the caller's own namespace: one caller
    /// cannot take, or replay, another's key, and two callers may pick the same key.
    pub fn scoped_key(&self, key: &str) -> String {
        format!(
            "{}:{}/{}|{key}",
            self.level,
            self.jurisdiction.as_string(),
            self.user
        )
    }

    /// A short description for audit entries and logs, e.g. `county:350102/approver/alice`.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}/{}/{}",
            self.level,
            self.jurisdiction.as_string(),
            self.role,
            self.user
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(level: Level, jurisdiction: &str, role: Role) -> Caller {
        Caller {
            user: "u".into(),
            level,
            jurisdiction: Jurisdiction::for_level(level, jurisdiction).unwrap(),
            role,
        }
    }

    fn object(school: &str, division: &str) -> ObjectScope {
        ObjectScope {
            school: school.parse().unwrap(),
            division: division.parse().unwrap(),
        }
    }

    #[test]
    fn scope_matrix() {
        let in_gulou = object("2135000001", "350102");
        let in_xiamen = object("2135000002", "350203");
        let cases = [
            (caller(Level::Ministry, "", Role::Operator), true, true),
            (
                caller(Level::Province, "350000", Role::Operator),
                true,
                true,
            ),
            (
                caller(Level::Province, "340000", Role::Operator),
                false,
                false,
            ),
            (caller(Level::City, "350100", Role::Operator), true, false),
            (caller(Level::County, "350102", Role::Approver), true, false),
            (
                caller(Level::County, "350103", Role::Approver),
                false,
                false,
            ),
            (
                caller(Level::School, "2135000001", Role::Operator),
                true,
                false,
            ),
            (
                caller(Level::School, "2135000002", Role::Operator),
                false,
                true,
            ),
        ];
        for (caller, sees_gulou, sees_xiamen) in cases {
            assert_eq!(caller.may_access(&in_gulou), sees_gulou, "{caller:?}");
            assert_eq!(caller.may_access(&in_xiamen), sees_xiamen, "{caller:?}");
        }
    }

    #[test]
    fn jurisdiction_must_fit_the_level() {
        assert!(Jurisdiction::for_level(Level::County, "350100").is_err());
        assert!(Jurisdiction::for_level(Level::Province, "350102").is_err());
        assert!(Jurisdiction::for_level(Level::City, "359900").is_err());
        assert!(Jurisdiction::for_level(Level::School, "350102").is_err());
        assert!(Jurisdiction::for_level(Level::Ministry, "350000").is_err());
        // Dongguan has no counties: it is its own county-level authority.
        assert!(Jurisdiction::for_level(Level::County, "441900").is_ok());
    }

    #[test]
    fn containment_of_jurisdictions() {
        let fujian = Jurisdiction::for_level(Level::Province, "350000").unwrap();
        let gulou = Jurisdiction::for_level(Level::County, "350102").unwrap();
        let school = Jurisdiction::for_level(Level::School, "2135000001").unwrap();
        assert!(fujian.contains(&gulou));
        assert!(!gulou.contains(&fujian));
        assert!(Jurisdiction::Nation.contains(&fujian));
        assert!(school.contains(&school));
        assert!(
            !gulou.contains(&school),
            "a division cannot tell which county a school is in"
        );
    }
}
