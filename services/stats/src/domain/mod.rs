//! What statistics count, free of transport and storage. An enrollment event moves one student
//! from a placement (a school, its county, a grade, a gender) to another, or into or out of
//! the active count; every level (school, county, city, province, nation) whose count it
//! changes sees it as an addition or a removal of the event's kind. A move that stays inside a
//! level (two schools of one county) changes nothing there.

pub mod dropouts;
pub mod intake;
mod ledger;
pub mod recount;
pub mod synthetic;
#[cfg(test)]
mod tests;

use chrono::{Datelike, NaiveDate};

pub use ledger::Ledger;

/// Why a student's count changed: the event kinds of the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// An approved registration: a new student.
    Registration,
    /// A completed transfer: out of the sending school, into the receiving one.
    Transfer,
    Suspension,
    Resumption,
    Dropout,
    /// Back from a dropout.
    Return,
    /// Another departure (其他); before the kinds were told apart, any departure but study
    /// abroad.
    Departure,
    /// 退学.
    Withdrawal,
    /// 开除 (senior high only).
    Expulsion,
    /// 失踪.
    Missing,
    /// 恢复 after going missing.
    Found,
    /// 恢复学籍 after a withdrawal, an expulsion or another departure.
    Reinstatement,
    Abroad,
    ReturnFromAbroad,
    Death,
    Graduation,
    /// Continuing at the next stage (升学) after graduating.
    Progression,
    /// The annual promotion: a grade up, same school.
    Promotion,
    /// A corrected key field (a gender, say) moves the student between counts.
    Correction,
    /// The school's code replaced by its successor (a merger): the students follow it.
    Succession,
    /// A record brought from a province's previous system (bulk migration).
    Migration,
    /// A problem record deleted (a duplicate, say).
    Deletion,
}

impl ChangeKind {
    pub const ALL: [Self; 22] = [
        Self::Registration,
        Self::Transfer,
        Self::Suspension,
        Self::Resumption,
        Self::Dropout,
        Self::Return,
        Self::Departure,
        Self::Withdrawal,
        Self::Expulsion,
        Self::Missing,
        Self::Found,
        Self::Reinstatement,
        Self::Abroad,
        Self::ReturnFromAbroad,
        Self::Death,
        Self::Graduation,
        Self::Progression,
        Self::Promotion,
        Self::Correction,
        Self::Succession,
        Self::Migration,
        Self::Deletion,
    ];

    /// A report's kind name (an addition's or a removal's) as the domain spells it; none for
    /// a name it does not know.
    pub fn known_name(name: &str) -> Option<&'static str> {
        Self::ALL
            .into_iter()
            .flat_map(|kind| [kind.addition(), kind.removal()])
            .find(|known| *known == name)
    }

    /// The kind as the feed names it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Transfer => "transfer",
            Self::Suspension => "suspension",
            Self::Resumption => "resumption",
            Self::Dropout => "dropout",
            Self::Return => "return",
            Self::Departure => "departure",
            Self::Withdrawal => "withdrawal",
            Self::Expulsion => "expulsion",
            Self::Missing => "missing",
            Self::Found => "found",
            Self::Reinstatement => "reinstatement",
            Self::Abroad => "abroad",
            Self::ReturnFromAbroad => "return_from_abroad",
            Self::Death => "death",
            Self::Graduation => "graduation",
            Self::Progression => "progression",
            Self::Promotion => "promotion",
            Self::Correction => "correction",
            Self::Succession => "succession",
            Self::Migration => "migration",
            Self::Deletion => "deletion",
        }
    }

    /// Does this removal leave a student who should be picked up by another school (dropout
    /// monitoring)? Not a transfer, a graduation, a death, a deletion or a suspension.
    pub fn leaves_unplaced(self) -> bool {
        matches!(
            self,
            Self::Dropout | Self::Departure | Self::Withdrawal | Self::Expulsion | Self::Missing
        )
    }

    /// What the kind is called where it adds a student to a count.
    pub fn addition(self) -> &'static str {
        match self {
            Self::Registration => "new_registration",
            Self::Transfer => "transfer_in",
            Self::Resumption => "resumption",
            Self::Return => "return",
            Self::Reinstatement => "reinstatement",
            Self::Found => "found",
            Self::ReturnFromAbroad => "return_from_abroad",
            Self::Progression => "progression",
            Self::Promotion => "promotion",
            Self::Correction => "correction",
            Self::Succession => "succession_in",
            Self::Migration => "migration",
            Self::Suspension
            | Self::Deletion
            | Self::Dropout
            | Self::Departure
            | Self::Withdrawal
            | Self::Expulsion
            | Self::Missing
            | Self::Abroad
            | Self::Death
            | Self::Graduation => "other_addition",
        }
    }

    /// What the kind is called where it removes a student from a count.
    pub fn removal(self) -> &'static str {
        match self {
            Self::Transfer => "transfer_out",
            Self::Suspension => "suspension",
            Self::Dropout => "dropout",
            Self::Departure => "departure",
            Self::Withdrawal => "withdrawal",
            Self::Expulsion => "expulsion",
            Self::Missing => "missing",
            Self::Abroad => "abroad",
            Self::Death => "death",
            Self::Graduation => "graduation",
            Self::Promotion => "promotion",
            Self::Correction => "correction",
            Self::Succession => "succession_out",
            Self::Deletion => "deletion",
            Self::Migration
            | Self::Registration
            | Self::Resumption
            | Self::Return
            | Self::Reinstatement
            | Self::Found
            | Self::ReturnFromAbroad
            | Self::Progression => "other_removal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gender {
    Male,
    Female,
}

/// Where an active student counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placement {
    pub school: String,
    /// The school's county-level division (6 digits).
    pub county: String,
    pub grade: u8,
    pub gender: Gender,
    /// The rest of what figures are broken down by.
    pub profile: Profile,
}

/// A student's attributes the breakdowns count by, besides school, grade and gender.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Profile {
    /// GB 3304 code, two digits (01: Han).
    pub ethnicity: String,
    /// 随迁子女
    pub migrant_child: bool,
    /// 留守儿童
    pub left_behind_child: bool,
    /// How the student entered the school.
    pub entry_route: String,
    pub birth_date: Option<NaiveDate>,
    /// Key fields the record lacks (for the data-quality lists).
    pub missing: Vec<String>,
}

/// The stage (学段) a pupil of `school` in a national grade belongs to: special education at a
/// special-education school (category 51), its own stage; elsewhere by the national grade.
pub fn stage_of(school: &str, grade: u8) -> &'static str {
    if school.starts_with("51") {
        return "special";
    }
    match grade {
        1..=6 => "primary",
        7..=9 => "junior",
        _ => "senior",
    }
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
        }
    }
}

/// The breakdown cells a placement counts in: (dimension, value). Every placement counts once
/// in each of `gender`, `grade`, `grade_gender`, `stage`, `ethnicity` and `entry_route`, and in
/// `migrant_child` / `left_behind_child` when flagged.
pub fn cells(placement: &Placement) -> Vec<(&'static str, String)> {
    let profile = &placement.profile;
    let mut cells = vec![
        ("gender", placement.gender.as_str().to_owned()),
        ("grade", placement.grade.to_string()),
        (
            "grade_gender",
            format!("{}|{}", placement.grade, placement.gender.as_str()),
        ),
        (
            "stage",
            stage_of(&placement.school, placement.grade).to_owned(),
        ),
        ("ethnicity", profile.ethnicity.clone()),
        ("entry_route", profile.entry_route.clone()),
    ];
    if profile.migrant_child {
        cells.push(("migrant_child", "yes".to_owned()));
    }
    if profile.left_behind_child {
        cells.push(("left_behind_child", "yes".to_owned()));
    }
    cells
}

/// Who an event is about, for the lists that name students (dropouts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    pub registry_number: String,
    pub name: String,
}

/// A level figures are kept for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Nation,
    /// Two digits.
    Province(String),
    /// Four digits.
    City(String),
    /// Six digits.
    County(String),
    School(String),
}

impl Unit {
    /// The unit as stored: `nation`, `province:35`, `city:3501`, `county:350102`,
    /// `school:<code>`.
    pub fn key(&self) -> String {
        match self {
            Self::Nation => "nation".to_owned(),
            Self::Province(p) => format!("province:{p}"),
            Self::City(c) => format!("city:{c}"),
            Self::County(c) => format!("county:{c}"),
            Self::School(s) => format!("school:{s}"),
        }
    }

    pub fn contains(&self, placement: &Placement) -> bool {
        match self {
            Self::Nation => true,
            Self::Province(p) => placement.county.starts_with(p.as_str()),
            Self::City(c) => placement.county.starts_with(c.as_str()),
            Self::County(c) => placement.county == *c,
            Self::School(s) => placement.school == *s,
        }
    }

    /// Every level a placement counts in, from the nation down to its school.
    pub fn all_of(placement: &Placement) -> [Unit; 5] {
        let county = &placement.county;
        [
            Self::Nation,
            Self::Province(county.get(..2).unwrap_or_default().to_owned()),
            Self::City(county.get(..4).unwrap_or_default().to_owned()),
            Self::County(county.clone()),
            Self::School(placement.school.clone()),
        ]
    }
}

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The feed position: strictly increasing; a redelivered event has its old position.
    pub position: u64,
    pub student: String,
    pub on: NaiveDate,
    pub kind: ChangeKind,
    /// Where the student counted before (none: not active).
    pub from: Option<Placement>,
    /// Where the student counts after (none: no longer active).
    pub to: Option<Placement>,
    pub person: Person,
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn of(date: NaiveDate) -> Self {
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a valid month")
    }

    /// The month's last day.
    pub fn last_day(self) -> NaiveDate {
        self.first_day()
            .checked_add_months(chrono::Months::new(1))
            .and_then(|d| d.pred_opt())
            .expect("a month after")
    }
}

/// Which units an event changes, and how: removals from the units of `from` that do not hold
/// `to`, additions to the units of `to` that do not hold `from`. A grade or gender change
/// inside one school changes no unit's count (the grade and gender breakdowns see it).
pub fn effects(event: &Event) -> (Vec<Unit>, Vec<Unit>) {
    let held =
        |unit: &Unit, other: &Option<Placement>| other.as_ref().is_some_and(|p| unit.contains(p));
    let removals = event
        .from
        .as_ref()
        .map(|from| {
            Unit::all_of(from)
                .into_iter()
                .filter(|unit| !held(unit, &event.to))
                .collect()
        })
        .unwrap_or_default();
    let additions = event
        .to
        .as_ref()
        .map(|to| {
            Unit::all_of(to)
                .into_iter()
                .filter(|unit| !held(unit, &event.from))
                .collect()
        })
        .unwrap_or_default();
    (removals, additions)
}

/// The monthly change report of one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlyReport {
    pub unit: Unit,
    pub month: Month,
    pub opening: i64,
    /// By kind name ([`ChangeKind::addition`]), in name order.
    pub additions: Vec<(&'static str, i64)>,
    /// By kind name ([`ChangeKind::removal`]), in name order.
    pub removals: Vec<(&'static str, i64)>,
    pub closing: i64,
}

impl MonthlyReport {
    /// Opening + additions − removals = closing.
    pub fn reconciles(&self) -> bool {
        let added: i64 = self.additions.iter().map(|(_, n)| n).sum();
        let removed: i64 = self.removals.iter().map(|(_, n)| n).sum();
        self.opening + added - removed == self.closing
    }
}

impl Unit {
    /// Reads a unit as users write it: `nation`, a division code (`35` or `350000` a
    /// province, `3501` or `350100` a city, `350102` a county) or a 10-digit school code.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("nation") {
            return Ok(Self::Nation);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{text:?} is not a unit: give nation, a division code or a school code"
            ));
        }
        match text.len() {
            2 => Ok(Self::Province(text.to_owned())),
            4 => Ok(Self::City(text.to_owned())),
            6 if text.ends_with("0000") => Ok(Self::Province(text[..2].to_owned())),
            6 if text.ends_with("00") => Ok(Self::City(text[..4].to_owned())),
            6 => Ok(Self::County(text.to_owned())),
            10 => Ok(Self::School(text.to_owned())),
            _ => Err(format!(
                "{text:?} is not a unit: give nation, a division code (2, 4 or 6 digits) or a \
                 10-digit school code"
            )),
        }
    }

    /// The unit read back from its stored key ([`Unit::key`]).
    pub fn from_key(key: &str) -> Option<Self> {
        let (level, code) = key.split_once(':').unwrap_or((key, ""));
        match level {
            "nation" => Some(Self::Nation),
            "province" => Some(Self::Province(code.to_owned())),
            "city" => Some(Self::City(code.to_owned())),
            "county" => Some(Self::County(code.to_owned())),
            "school" => Some(Self::School(code.to_owned())),
            _ => None,
        }
    }

    /// The level's name.
    pub fn level(&self) -> &'static str {
        match self {
            Self::Nation => "nation",
            Self::Province(_) => "province",
            Self::City(_) => "city",
            Self::County(_) => "county",
            Self::School(_) => "school",
        }
    }

    /// The code: empty for the nation.
    pub fn code(&self) -> &str {
        match self {
            Self::Nation => "",
            Self::Province(c) | Self::City(c) | Self::County(c) | Self::School(c) => c,
        }
    }

    /// The stored-key prefix of the units directly below this one (schools of a county are
    /// found through their placements, so a county has no prefix).
    pub fn child_prefix(&self) -> Option<String> {
        match self {
            Self::Nation => Some("province:".to_owned()),
            Self::Province(p) => Some(format!("city:{p}")),
            Self::City(c) => Some(format!("county:{c}")),
            Self::County(_) | Self::School(_) => None,
        }
    }
}

/// One breakdown cell's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub dimension: String,
    pub value: String,
    pub students: i64,
}

/// A mismatch the reconciliation found: a unit whose parts do not sum to it, or whose report
/// does not reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub unit: Unit,
    pub month: Month,
    /// What disagrees, in words.
    pub detail: String,
}
