//! The official working-day calendar: weekends off, public holidays off, make-up weekend working
//! days (调休) on. Deadlines of approval steps are counted in working days on this calendar.
//!
//! The State Council publishes each year's schedule late in the year before, so the calendar is
//! data: years are loaded (the bundled CSV, then whatever a ministry operator loads), and a
//! deadline that reaches into a year nobody loaded is still computed (weekends and the
//! statutory holidays the rules fix, [`statutory`]) but comes back *estimated*, so that the
//! task and the metrics can say the next year is missing.
//!
//! Calendar days are China Standard Time (UTC+8, no daylight saving): [`china_today`] and
//! [`end_of_day`] convert, so a server running in UTC does not shift a deadline by a day.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::LazyLock,
};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};

/// What the official schedule says about one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A day off, even on a weekday.
    Holiday,
    /// A weekend day that is a working day (调休).
    Workday,
}

impl DayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Holiday => "holiday",
            Self::Workday => "workday",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "holiday" => Some(Self::Holiday),
            "workday" => Some(Self::Workday),
            _ => None,
        }
    }
}

/// One line of a year's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarDay {
    pub date: NaiveDate,
    pub kind: DayKind,
    pub name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("calendar line {line}: {reason}")]
pub struct CalendarError {
    pub line: usize,
    pub reason: String,
}

/// A year of the official schedule as the ministry loaded it on the national node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedYear {
    pub year: i32,
    pub days: Vec<CalendarDay>,
    /// The national version of the load: later loads of a year replace earlier ones.
    pub version: i64,
    pub loaded_by: String,
    pub loaded_at: DateTime<Utc>,
}

impl PublishedYear {
    /// A year as stored: its days as [`to_csv`] wrote them. Only checked schedules are
    /// stored, so one that does not read back is an error to report, never to skip.
    pub fn from_stored(
        year: i32,
        days_csv: &str,
        version: i64,
        loaded_by: String,
        loaded_at: DateTime<Utc>,
    ) -> Result<Self, CalendarError> {
        Ok(Self {
            year,
            days: parse_csv(days_csv)?,
            version,
            loaded_by,
            loaded_at,
        })
    }
}

/// A deadline counted on the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deadline {
    /// The last working day of the period.
    pub date: NaiveDate,
    /// Some day of the period lies in a year whose schedule is not loaded: it was counted on
    /// weekends alone, and the date may move once the year is loaded.
    pub estimated: bool,
}

/// A working-day calendar: the years loaded, their exceptions, and any extra days off (a
/// province's own).
#[derive(Debug, Clone, Default)]
pub struct WorkingCalendar {
    exceptions: BTreeMap<NaiveDate, DayKind>,
    years: BTreeSet<i32>,
}

static BUNDLED: LazyLock<WorkingCalendar> = LazyLock::new(|| {
    let days = parse_csv(BUNDLED_CSV).expect("bundled calendar is valid");
    WorkingCalendar::from_days(&days)
});

/// The State Council schedules bundled into this build.
pub const BUNDLED_CSV: &str = include_str!("../data/calendar-cn.csv");

/// Reads `date,kind,name` lines (`kind` = holiday | workday; `#` comments; one header line).
pub fn parse_csv(text: &str) -> Result<Vec<CalendarDay>, CalendarError> {
    let mut days = Vec::new();
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    for (index, line) in lines.skip(1) {
        let error = |reason: String| CalendarError {
            line: index + 1,
            reason,
        };
        let mut fields = line.splitn(3, ',');
        let date = fields.next().unwrap_or_default().trim();
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|e| error(format!("date {date:?}: {e}")))?;
        let kind = fields.next().unwrap_or_default().trim();
        let kind = DayKind::parse(kind).ok_or_else(|| {
            error(format!(
                "kind {kind:?} is neither \"holiday\" nor \"workday\""
            ))
        })?;
        let name = fields.next().unwrap_or_default().trim().to_owned();
        days.push(CalendarDay { date, kind, name });
    }
    Ok(days)
}

/// Writes days as [`parse_csv`] reads them (with its header line).
pub fn to_csv(days: &[CalendarDay]) -> String {
    let mut text = String::from("date,kind,name\n");
    for day in days {
        text.push_str(&format!(
            "{},{},{}\n",
            day.date,
            day.kind.as_str(),
            day.name
        ));
    }
    text
}

/// The years a schedule may be loaded for.
pub const LOADABLE_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Why a year's schedule cannot be loaded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum YearError {
    #[error("year {0} is outside {start}–{end}", start = LOADABLE_YEARS.start(), end = LOADABLE_YEARS.end())]
    Year(i32),
    #[error("the schedule names no day; every year has public holidays")]
    Empty,
    #[error("days[{index}]: {date} is not in {year}")]
    OutsideYear {
        index: usize,
        date: NaiveDate,
        year: i32,
    },
    #[error("days[{index}]: {date} is named twice")]
    Duplicate { index: usize, date: NaiveDate },
    #[error("days[{index}]: {date} is a {weekday}; a make-up working day falls on a weekend")]
    WorkdayOnWeekday {
        index: usize,
        date: NaiveDate,
        weekday: Weekday,
    },
}

impl YearError {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Year(_) => "year",
            _ => "days",
        }
    }
}

/// Everything wrong with `days` as the schedule of `year` (empty when it may be loaded).
pub fn check_year(year: i32, days: &[CalendarDay]) -> Vec<YearError> {
    if !LOADABLE_YEARS.contains(&year) {
        return vec![YearError::Year(year)];
    }
    if days.is_empty() {
        return vec![YearError::Empty];
    }
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, day) in days.iter().enumerate() {
        let date = day.date;
        if date.year() != year {
            errors.push(YearError::OutsideYear { index, date, year });
        }
        if !seen.insert(date) {
            errors.push(YearError::Duplicate { index, date });
        }
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        if day.kind == DayKind::Workday && !weekend {
            errors.push(YearError::WorkdayOnWeekday {
                index,
                date,
                weekday: date.weekday(),
            });
        }
    }
    errors
}

impl WorkingCalendar {
    /// The schedules bundled into this build (2025 and 2026).
    pub fn bundled() -> &'static WorkingCalendar {
        &BUNDLED
    }

    /// A calendar of the years these days fall in.
    pub fn from_days(days: &[CalendarDay]) -> Self {
        let mut calendar = Self::default();
        for day in days {
            calendar.exceptions.insert(day.date, day.kind);
            calendar.years.insert(day.date.year());
        }
        calendar
    }

    /// Loads one year's schedule, replacing what was known of that year.
    pub fn load_year(&mut self, year: i32, days: &[CalendarDay]) {
        let first = NaiveDate::from_ymd_opt(year, 1, 1).expect("valid year");
        let last = NaiveDate::from_ymd_opt(year, 12, 31).expect("valid year");
        self.exceptions
            .retain(|date, _| !(first..=last).contains(date));
        for day in days.iter().filter(|d| d.date.year() == year) {
            self.exceptions.insert(day.date, day.kind);
        }
        self.years.insert(year);
    }

    /// Adds days off of one's own (a province's): they are off whatever the national schedule says.
    pub fn with_days_off(mut self, days: impl IntoIterator<Item = NaiveDate>) -> Self {
        for date in days {
            self.exceptions.insert(date, DayKind::Holiday);
        }
        self
    }

    /// The years whose schedule is loaded.
    pub fn loaded_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    pub fn is_loaded(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.exceptions.get(&date) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            // A year nobody loaded: the holidays the rules fix are off (an estimate).
            None if !self.is_loaded(date.year()) && statutory::is_statutory_holiday(date) => false,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The last day of a period of `days` working days that starts the day after `start`: the
    /// deadline of a step opened on `start`. Zero days: `start` itself.
    pub fn deadline(&self, start: NaiveDate, days: u32) -> Deadline {
        let mut date = start;
        let mut remaining = days;
        let mut estimated = false;
        while remaining > 0 {
            date = date.succ_opt().expect("date in range");
            estimated |= !self.is_loaded(date.year());
            if self.is_working_day(date) {
                remaining -= 1;
            }
        }
        Deadline { date, estimated }
    }

    /// The date of [`WorkingCalendar::deadline`].
    pub fn add_working_days(&self, start: NaiveDate, days: u32) -> NaiveDate {
        self.deadline(start, days).date
    }

    /// Working days in `(from, to]`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .count() as u32
    }
}

/// China Standard Time: UTC+8 all year.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// The calendar day it is in China at `now`.
pub fn china_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&china()).date_naive()
}

/// The first instant after `date` ends in China: a deadline on `date` has passed at this instant.
pub fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    let next = date.succ_opt().expect("date in range");
    china()
        .from_local_datetime(&next.and_time(NaiveTime::MIN))
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

pub mod statutory;

#[cfg(test)]
mod tests;
