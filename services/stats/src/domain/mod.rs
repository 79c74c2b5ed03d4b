//! What statistics count, free of transport and storage. An enrollment event moves one student
//! from a placement (a school, its county, a grade, a gender) to another, or into or out of
//! the active count; every level (school, county, city, province, nation) whose count it
//! changes sees it as an addition or a removal of the event's kind. A move that stays inside a
//! level (two schools of one county) changes nothing there.

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
    /// Withdrawal, expulsion, a missing student, another departure.
    Departure,
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
}

impl ChangeKind {
    pub const ALL: [Self; 15] = [
        Self::Registration,
        Self::Transfer,
        Self::Suspension,
        Self::Resumption,
        Self::Dropout,
        Self::Return,
        Self::Departure,
        Self::Reinstatement,
        Self::Abroad,
        Self::ReturnFromAbroad,
        Self::Death,
        Self::Graduation,
        Self::Progression,
        Self::Promotion,
        Self::Correction,
    ];

    /// What the kind is called where it adds a student to a count.
    pub fn addition(self) -> &'static str {
        match self {
            Self::Registration => "new_registration",
            Self::Transfer => "transfer_in",
            Self::Resumption => "resumption",
            Self::Return => "return",
            Self::Reinstatement => "reinstatement",
            Self::ReturnFromAbroad => "return_from_abroad",
            Self::Progression => "progression",
            Self::Promotion => "promotion",
            Self::Correction => "correction",
            Self::Suspension
            | Self::Dropout
            | Self::Departure
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
            Self::Abroad => "abroad",
            Self::Death => "death",
            Self::Graduation => "graduation",
            Self::Promotion => "promotion",
            Self::Correction => "correction",
            Self::Registration
            | Self::Resumption
            | Self::Return
            | Self::Reinstatement
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
