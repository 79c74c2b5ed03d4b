//! The official working-day calendar: weekends off, public holidays off, make-up weekend working
//! days (调休) on. Deadlines of approval steps are counted in working days on this calendar.

use std::{collections::HashMap, sync::LazyLock};

use chrono::{Datelike, NaiveDate, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exception {
    Holiday,
    Workday,
}

#[derive(Debug, thiserror::Error)]
#[error("calendar line {line}: {reason}")]
pub struct CalendarError {
    line: usize,
    reason: String,
}

/// A working-day calendar built from `date,kind,name` lines (`kind` = holiday | workday).
#[derive(Debug, Clone)]
pub struct WorkingCalendar {
    exceptions: HashMap<NaiveDate, Exception>,
}

static BUNDLED: LazyLock<WorkingCalendar> = LazyLock::new(|| {
    WorkingCalendar::from_csv(include_str!("../data/calendar-cn.csv"))
        .expect("bundled calendar is valid")
});

impl WorkingCalendar {
    /// The State Council schedule bundled into this build (2025 and 2026).
    pub fn bundled() -> &'static WorkingCalendar {
        &BUNDLED
    }

    pub fn from_csv(text: &str) -> Result<Self, CalendarError> {
        let mut exceptions = HashMap::new();
        let lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
        for (index, line) in lines.skip(1) {
            let error = |reason: String| CalendarError {
                line: index + 1,
                reason,
            };
            let mut fields = line.split(',');
            let date = fields.next().unwrap_or_default();
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|e| error(format!("date {date:?}: {e}")))?;
            let kind = match fields.next() {
                Some("holiday") => Exception::Holiday,
                Some("workday") => Exception::Workday,
                other => return Err(error(format!("unknown kind {other:?}"))),
            };
            exceptions.insert(date, kind);
        }
        Ok(Self { exceptions })
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.exceptions.get(&date) {
            Some(Exception::Holiday) => false,
            Some(Exception::Workday) => true,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The date on which a period of `days` working days that starts the day after `start` ends:
    /// the deadline of a step opened on `start`.
    pub fn add_working_days(&self, start: NaiveDate, days: u32) -> NaiveDate {
        let mut date = start;
        let mut remaining = days;
        while remaining > 0 {
            date = date.succ_opt().expect("date in range");
            if self.is_working_day(date) {
                remaining -= 1;
            }
        }
        date
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

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn holidays_weekends_and_make_up_days() {
        let calendar = WorkingCalendar::bundled();
        assert!(!calendar.is_working_day(date("2025-10-01")), "National Day");
        assert!(
            calendar.is_working_day(date("2025-09-28")),
            "make-up Sunday"
        );
        assert!(
            !calendar.is_working_day(date("2025-11-22")),
            "plain Saturday"
        );
        assert!(calendar.is_working_day(date("2025-11-24")), "plain Monday");
    }

    #[test]
    fn deadlines_skip_the_golden_week() {
        let calendar = WorkingCalendar::bundled();
        // Opened on Friday 2025-09-26: Sun 28 (make-up), Mon 29 and Tue 30 count, 1–8 October
        // are off, Sat 11 October is a make-up working day.
        let deadline = calendar.add_working_days(date("2025-09-26"), 4);
        assert_eq!(deadline, date("2025-10-09"));
        assert_eq!(
            calendar.working_days_between(date("2025-09-26"), deadline),
            4
        );
        assert_eq!(
            calendar.add_working_days(date("2025-10-09"), 2),
            date("2025-10-11")
        );
        assert_eq!(
            calendar.add_working_days(date("2025-11-21"), 0),
            date("2025-11-21")
        );
    }

    #[test]
    fn malformed_lines_are_reported() {
        let error =
            WorkingCalendar::from_csv("date,kind,name\n2025-13-01,holiday,x\n").unwrap_err();
        assert!(error.to_string().contains("line 2"));
    }
}
