use std::{collections::HashMap, fmt, str::FromStr, sync::LazyLock};

use crate::CodeError;

/// A 6-digit administrative division code (GB/T 2260). Parsing checks the format only, because
/// codes change every year and a registry number keeps the code it was issued with; use
/// [`Divisions::get`] to ask whether a code is in the current table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DivisionCode([u8; 6]);

impl DivisionCode {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII digits")
    }

    /// The 2-digit province part, e.g. `"35"`.
    pub fn province_digits(&self) -> &str {
        &self.as_str()[..2]
    }

    /// The province this code lies in, e.g. `350000` for `350102`.
    pub fn province(&self) -> DivisionCode {
        let mut digits = *b"000000";
        digits[..2].copy_from_slice(&self.0[..2]);
        DivisionCode(digits)
    }
}

impl FromStr for DivisionCode {
    type Err = CodeError;

    fn from_str(input: &str) -> Result<Self, CodeError> {
        if input.is_empty() {
            return Err(CodeError::Empty);
        }
        let bytes: [u8; 6] = input.as_bytes().try_into().map_err(|_| CodeError::Length {
            expected: 6,
            found: input.chars().count(),
        })?;
        if let Some(position) = bytes.iter().position(|b| !b.is_ascii_digit()) {
            return Err(CodeError::Character {
                position: position + 1,
                expected: "a digit",
            });
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DivisionCode({})", self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DivisionLevel {
    Province,
    City,
    County,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    pub code: DivisionCode,
    pub name: String,
    pub level: DivisionLevel,
    pub parent: Option<DivisionCode>,
}

/// The division table shipped with this build (`data/divisions.csv`, one dated version of the
/// National Bureau of Statistics codes).
#[derive(Debug)]
pub struct Divisions {
    by_code: HashMap<DivisionCode, Division>,
}

static BUNDLED: LazyLock<Divisions> = LazyLock::new(|| {
    Divisions::from_csv(include_str!("../data/divisions.csv")).expect("bundled table is valid")
});

impl Divisions {
    /// The table bundled into the binary.
    pub fn bundled() -> &'static Divisions {
        &BUNDLED
    }

    /// Parses `code,name,level,parent` lines after a header line.
    pub fn from_csv(text: &str) -> Result<Self, String> {
        let mut by_code = HashMap::new();
        for (index, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let [code, name, level, parent] = fields[..] else {
                return Err(format!("line {}: expected 4 fields", index + 1));
            };
            let code: DivisionCode = code
                .parse()
                .map_err(|e| format!("line {}: code {e}", index + 1))?;
            let level = match level {
                "province" => DivisionLevel::Province,
                "city" => DivisionLevel::City,
                "county" => DivisionLevel::County,
                other => return Err(format!("line {}: unknown level {other:?}", index + 1)),
            };
            let parent = match parent {
                "" => None,
                parent => Some(
                    parent
                        .parse()
                        .map_err(|e| format!("line {}: parent {e}", index + 1))?,
                ),
            };
            by_code.insert(
                code,
                Division {
                    code,
                    name: name.to_owned(),
                    level,
                    parent,
                },
            );
        }
        Ok(Self { by_code })
    }

    pub fn get(&self, code: DivisionCode) -> Option<&Division> {
        self.by_code.get(&code)
    }

    /// Parses and looks up in one step, for user input that must name a current division.
    pub fn known(&self, input: &str) -> Result<&Division, CodeError> {
        let code: DivisionCode = input.parse()?;
        self.get(code)
            .ok_or_else(|| CodeError::UnknownDivision(input.to_owned()))
    }

    /// `code` itself followed by every division above it, up to the province.
    pub fn lineage(&self, code: DivisionCode) -> impl Iterator<Item = &Division> {
        std::iter::successors(self.get(code), |division| {
            division.parent.and_then(|parent| self.get(parent))
        })
    }

    /// True when `inner` is `outer` or lies inside it.
    pub fn contains(&self, outer: DivisionCode, inner: DivisionCode) -> bool {
        self.lineage(inner).any(|division| division.code == outer)
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// Every county-level division of a province, in code order.
    pub fn counties_of(&self, province: DivisionCode) -> Vec<&Division> {
        let mut counties: Vec<&Division> = self
            .by_code
            .values()
            .filter(|d| d.level == DivisionLevel::County && d.code.province() == province)
            .collect();
        counties.sort_by_key(|d| d.code);
        counties
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> DivisionCode {
        s.parse().unwrap()
    }

    #[test]
    fn bundled_table_has_every_level() {
        let table = Divisions::bundled();
        assert_eq!(table.len(), 31 + 342 + 2975);
        let gulou = table.get(code("350102")).unwrap();
        assert_eq!(gulou.name, "鼓楼区");
        assert_eq!(gulou.level, DivisionLevel::County);
        let names: Vec<_> = table
            .lineage(code("350102"))
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["鼓楼区", "福州市", "福建省"]);
    }

    #[test]
    fn containment_follows_parents() {
        let table = Divisions::bundled();
        assert!(table.contains(code("350000"), code("350102")));
        assert!(table.contains(code("350100"), code("350102")));
        assert!(table.contains(code("350102"), code("350102")));
        assert!(!table.contains(code("350200"), code("350102")));
        assert!(!table.contains(code("340000"), code("350102")));
        // A city without counties is its own county-level authority.
        assert!(table.contains(code("441900"), code("441900")));
    }

    #[test]
    fn format_errors_and_unknown_codes() {
        assert_eq!("".parse::<DivisionCode>(), Err(CodeError::Empty));
        assert_eq!(
            "35010".parse::<DivisionCode>(),
            Err(CodeError::Length {
                expected: 6,
                found: 5
            })
        );
        assert_eq!(
            "35a102".parse::<DivisionCode>(),
            Err(CodeError::Character {
                position: 3,
                expected: "a digit"
            })
        );
        assert_eq!(
            Divisions::bundled().known("359999").unwrap_err(),
            CodeError::UnknownDivision("359999".into())
        );
        assert_eq!(code("350102").province(), code("350000"));
    }
}
