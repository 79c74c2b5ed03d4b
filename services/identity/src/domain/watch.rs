//! The authority's watch lists against the school year's deadlines (控辍保学 and the September
//! intake): which deadline each list is measured against on a given day. Pure.

use chrono::{Datelike, NaiveDate};

use super::school_year::{CycleDates, MonthDay};

/// The watch lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchList {
    /// 休学期满未复学 (Model rules 第十五条).
    SuspensionsPastTerm,
    /// 小升初未升学: the main leak of the compulsory stage.
    PrimaryGraduatesUnplaced,
    /// Registrations after the intake deadline, or still waiting when it passed (Anhui 第十五条).
    LateRegistrations,
    /// Problem records still open after the problems deadline.
    ProblemsOpenLate,
}

/// What a list reads on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchWindow {
    /// The deadline the list is measured against.
    pub deadline: NaiveDate,
    /// The first day of the school year the deadline belongs to.
    pub year_starts: NaiveDate,
    /// The first day of the next school year: graduates of the summer before it.
    pub next_year_starts: NaiveDate,
    /// Whether the deadline has passed (registrations still waiting are late only then).
    pub passed: bool,
}

/// The latest `day` strictly before `today`.
fn last_passed(day: MonthDay, today: NaiveDate) -> NaiveDate {
    let this_year = day.in_year(today.year());
    if this_year < today {
        this_year
    } else {
        day.in_year(today.year() - 1)
    }
}

/// The window `list` reads on `today` under a province's `dates`.
pub fn window(list: WatchList, dates: &CycleDates, today: NaiveDate) -> WatchWindow {
    let starts = |year: i32| dates.year_starts.in_year(year);
    let current = dates.school_year_of(today);
    match list {
        WatchList::SuspensionsPastTerm => WatchWindow {
            deadline: today,
            year_starts: starts(current),
            next_year_starts: starts(current + 1),
            passed: true,
        },
        WatchList::LateRegistrations => {
            let deadline = dates.intake_by.in_year(current);
            WatchWindow {
                deadline,
                year_starts: starts(current),
                next_year_starts: starts(current + 1),
                passed: deadline < today,
            }
        }
        WatchList::PrimaryGraduatesUnplaced => {
            // The graduates of the summer before the last intake deadline that has passed.
            let deadline = last_passed(dates.intake_by, today);
            WatchWindow {
                deadline,
                year_starts: starts(deadline.year() - 1),
                next_year_starts: starts(deadline.year()),
                passed: true,
            }
        }
        WatchList::ProblemsOpenLate => {
            let deadline = last_passed(dates.problems_by, today);
            WatchWindow {
                deadline,
                year_starts: starts(deadline.year()),
                next_year_starts: starts(deadline.year() + 1),
                passed: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::school_year::SchoolYearPolicy;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn dates() -> CycleDates {
        SchoolYearPolicy::bundled().dates("35")
    }

    #[test]
    fn late_registrations_are_measured_against_this_years_intake_deadline() {
        let w = window(WatchList::LateRegistrations, &dates(), day("2026-12-07"));
        assert_eq!(
            (w.deadline, w.year_starts, w.passed),
            (day("2026-09-30"), day("2026-09-01"), true)
        );
        let w = window(WatchList::LateRegistrations, &dates(), day("2026-09-30"));
        assert!(!w.passed, "on the deadline itself nothing is late yet");
        let w = window(WatchList::LateRegistrations, &dates(), day("2027-03-01"));
        assert_eq!(w.deadline, day("2026-09-30"));
    }

    #[test]
    fn unplaced_graduates_are_the_summer_before_the_last_passed_intake_deadline() {
        let w = window(
            WatchList::PrimaryGraduatesUnplaced,
            &dates(),
            day("2026-12-07"),
        );
        assert_eq!(
            (w.deadline, w.year_starts, w.next_year_starts),
            (day("2026-09-30"), day("2025-09-01"), day("2026-09-01"))
        );
        // Before this year's deadline, last year's graduates are the ones overdue.
        let w = window(
            WatchList::PrimaryGraduatesUnplaced,
            &dates(),
            day("2026-09-15"),
        );
        assert_eq!(
            (w.deadline, w.next_year_starts),
            (day("2025-09-30"), day("2025-09-01"))
        );
    }

    #[test]
    fn problems_are_late_after_the_last_passed_problems_deadline() {
        let w = window(WatchList::ProblemsOpenLate, &dates(), day("2026-12-07"));
        assert_eq!(w.deadline, day("2026-10-30"));
        let w = window(WatchList::ProblemsOpenLate, &dates(), day("2026-10-30"));
        assert_eq!(w.deadline, day("2025-10-30"));
    }
}
