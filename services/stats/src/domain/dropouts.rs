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

impl DropoutPolicy {
    /// The policy shipped in `policy/dropouts.toml`.
    pub fn bundled() -> Self {
        Self::parse(include_str!("../../policy/dropouts.toml")).expect("the bundled policy parses")
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
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
}
