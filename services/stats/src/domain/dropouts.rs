//! The dropout rule: a student left unplaced is listed for the county of the school they left
//! once more working days than the province allows have passed (official working-day
//! calendar: weekends, holidays and make-up days), and no longer once a school picks them up.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use xueji_calendar::WorkingCalendar;

/// Working days per province.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutPolicy {
    pub default_working_days: u32,
    #[serde(default)]
    pub provinces: BTreeMap<String, u32>,
}

/// The policy shipped in `services/stats/policy/dropouts.toml`.
pub const BUNDLED_DROPOUTS: &str = include_str!("../../policy/dropouts.toml");

impl DropoutPolicy {
    pub fn bundled() -> Self {
        Self::parse(BUNDLED_DROPOUTS).expect("the bundled policy parses")
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("dropout policy: {e}"))
    }

    pub fn working_days(&self, province: &str) -> u32 {
        self.provinces
            .get(province)
            .copied()
            .unwrap_or(self.default_working_days)
    }
}

/// Working days a student who left on `left_on` has been unplaced as of `as_of`, when that is
/// at least `allowed` (listed); None while within the allowance.
pub fn overdue(
    calendar: &WorkingCalendar,
    left_on: NaiveDate,
    as_of: NaiveDate,
    allowed: u32,
) -> Option<u32> {
    let days = calendar.working_days_between(left_on, as_of);
    (days >= allowed).then_some(days)
}

/// Where a student who left unplaced stands on the day asked, for the county's follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Still unplaced, for this many working days (at least the allowance).
    Unplaced { working_days: u32 },
    /// Brought back (劝返) this school year after being listed: out for this many working
    /// days.
    Returned { working_days: u32 },
}

/// The follow-up of a student who left on `left_on` and, if a school took them back, returned
/// on `returned_on`, as of `as_of`: listed while unplaced past the allowance; once back, shown
/// as returned for the rest of the school year (from 1 September) if they had been listed.
/// None when they never reached the list, or came back in an earlier school year.
pub fn follow_up(
    calendar: &WorkingCalendar,
    left_on: NaiveDate,
    returned_on: Option<NaiveDate>,
    as_of: NaiveDate,
    allowed: u32,
) -> Option<FollowUp> {
    match returned_on.filter(|back| *back <= as_of) {
        None => overdue(calendar, left_on, as_of, allowed)
            .map(|working_days| FollowUp::Unplaced { working_days }),
        Some(back) if back >= school_year_start(as_of) => overdue(calendar, left_on, back, allowed)
            .map(|working_days| FollowUp::Returned { working_days }),
        Some(_) => None,
    }
}

/// 1 September of the school year `day` falls in.
fn school_year_start(day: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    let year = if day.month() >= 9 {
        day.year()
    } else {
        day.year() - 1
    };
    NaiveDate::from_ymd_opt(year, 9, 1).expect("1 September exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_national_day_week_does_not_count() {
        let calendar = WorkingCalendar::bundled();
        // Left on 25 September 2026: the Mid-Autumn and National Day holidays (1–7 October)
        // and the weekends are not working days.
        let left = day(2026, 9, 25);
        let counted = calendar.working_days_between(left, day(2026, 10, 9));
        let weekdays = left
            .iter_days()
            .skip(1)
            .take_while(|d| *d <= day(2026, 10, 9))
            .filter(|d| chrono::Datelike::weekday(d).number_from_monday() <= 5)
            .count() as u32;
        assert!(
            counted < weekdays,
            "holidays are not working days: {counted} vs {weekdays}"
        );
        assert_eq!(overdue(calendar, left, day(2026, 10, 9), counted + 1), None);
        assert_eq!(
            overdue(calendar, left, day(2026, 10, 9), counted),
            Some(counted)
        );
        // Ten working days from that Friday end well after a plain two weeks.
        let listed_on = calendar.add_working_days(left, 10);
        assert!(listed_on > day(2026, 10, 9), "{listed_on}");
        assert_eq!(overdue(calendar, left, listed_on, 10), Some(10));
        assert_eq!(
            overdue(calendar, left, listed_on.pred_opt().unwrap(), 10),
            None
        );
    }

    #[test]
    fn provinces_have_their_own_allowance() {
        let policy = DropoutPolicy::bundled();
        assert_eq!(policy.working_days("34"), 15);
        assert_eq!(policy.working_days("44"), policy.default_working_days);
        assert!(DropoutPolicy::parse("default_working_days = \"x\"").is_err());
    }

    #[test]
    fn a_student_brought_back_is_shown_returned_for_the_rest_of_the_school_year() {
        let calendar = WorkingCalendar::bundled();
        let left = day(2026, 3, 2);
        let allowed = 10;
        let listed_on = calendar.add_working_days(left, allowed);
        let back = listed_on + chrono::Days::new(7);
        let out_for = calendar.working_days_between(left, back);
        // Listed while out; returned once back, whatever day is asked after that.
        assert_eq!(
            follow_up(calendar, left, Some(back), listed_on, allowed),
            Some(FollowUp::Unplaced {
                working_days: allowed
            })
        );
        assert_eq!(
            follow_up(calendar, left, Some(back), day(2026, 6, 30), allowed),
            Some(FollowUp::Returned {
                working_days: out_for
            })
        );
        // The next school year no longer shows them.
        assert_eq!(
            follow_up(calendar, left, Some(back), day(2026, 9, 1), allowed),
            None
        );
        // Back within the allowance: never on the list.
        let soon = calendar.add_working_days(left, 3);
        assert_eq!(
            follow_up(calendar, left, Some(soon), day(2026, 6, 30), allowed),
            None
        );
        assert_eq!(
            follow_up(calendar, left, None, day(2026, 3, 3), allowed),
            None
        );
    }
}
