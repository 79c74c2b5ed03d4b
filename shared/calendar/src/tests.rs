use proptest::prelude::*;

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
    let deadline = calendar.deadline(date("2025-09-26"), 4);
    assert_eq!(
        deadline,
        Deadline {
            date: date("2025-10-09"),
            estimated: false
        }
    );
    assert_eq!(
        calendar.working_days_between(date("2025-09-26"), deadline.date),
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
fn a_deadline_past_the_loaded_years_is_estimated_until_the_year_is_loaded() {
    let mut calendar = WorkingCalendar::bundled().clone();
    // 20 working days from mid-December 2026 reach into 2027, which is not bundled.
    let deadline = calendar.deadline(date("2026-12-15"), 20);
    assert!(deadline.estimated);
    // The estimate keeps the statutory holidays off: 2027-01-01 (a Friday) is 元旦.
    assert_eq!(deadline.date, date("2027-01-13"));
    // Inside the loaded years nothing is estimated.
    assert!(!calendar.deadline(date("2026-11-02"), 10).estimated);

    calendar.load_year(
        2027,
        &[CalendarDay {
            date: date("2027-01-01"),
            kind: DayKind::Holiday,
            name: "元旦".into(),
        }],
    );
    let deadline = calendar.deadline(date("2026-12-15"), 20);
    assert!(!deadline.estimated);
    assert_eq!(deadline.date, date("2027-01-13"), "New Year's Day is off");
}

#[test]
fn a_province_adds_days_off_of_its_own() {
    let calendar = WorkingCalendar::bundled()
        .clone()
        .with_days_off([date("2025-11-24")]);
    assert!(!calendar.is_working_day(date("2025-11-24")));
    assert_eq!(
        calendar.add_working_days(date("2025-11-21"), 1),
        date("2025-11-25")
    );
}

#[test]
fn the_end_of_a_day_is_midnight_in_china() {
    // 2025-11-24 ends at 2025-11-24T16:00:00Z.
    let end = end_of_day(date("2025-11-24"));
    assert_eq!(end.to_rfc3339(), "2025-11-24T16:00:00+00:00");
    // 20:00 UTC on the 24th is already the 25th in China.
    let evening: DateTime<Utc> = "2025-11-24T20:00:00Z".parse().unwrap();
    assert_eq!(china_today(evening), date("2025-11-25"));
}

#[test]
fn malformed_lines_are_reported() {
    let error = parse_csv("date,kind,name\n2025-13-01,holiday,x\n").unwrap_err();
    assert_eq!(error.line, 2);
    let error = parse_csv("date,kind,name\n2025-12-01,party,x\n").unwrap_err();
    assert!(error.reason.contains("party"), "{error}");
}

/// The naive oracle: walk day by day, asking the raw data about each date.
#[test]
fn a_year_is_checked_before_it_is_loaded() {
    let day = |d: &str, kind| CalendarDay {
        date: date(d),
        kind,
        name: "节".into(),
    };
    let good = [
        day("2027-01-01", DayKind::Holiday),
        day("2027-02-20", DayKind::Workday),
    ];
    assert!(check_year(2027, &good).is_empty());
    assert_eq!(check_year(1999, &good), vec![YearError::Year(1999)]);
    assert_eq!(check_year(2027, &[]), vec![YearError::Empty]);
    let bad = [
        day("2027-01-01", DayKind::Holiday),
        day("2026-12-31", DayKind::Holiday),
        day("2027-01-01", DayKind::Holiday),
        day("2027-02-22", DayKind::Workday),
    ];
    let errors = check_year(2027, &bad);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(matches!(errors[0], YearError::OutsideYear { index: 1, .. }));
    assert!(matches!(errors[1], YearError::Duplicate { index: 2, .. }));
    assert!(matches!(
        errors[2],
        YearError::WorkdayOnWeekday { index: 3, .. }
    ));
    assert_eq!(errors[2].field(), "days");
    assert_eq!(
        errors[2].to_string(),
        "days[3]: 2027-02-22 is a Mon; a make-up working day falls on a weekend"
    );
    // What `to_csv` writes, `parse_csv` reads back.
    assert_eq!(parse_csv(&to_csv(&good)).unwrap(), good);
}

fn oracle(
    days: &[CalendarDay],
    off: &[NaiveDate],
    start: NaiveDate,
    count: u32,
) -> (NaiveDate, bool) {
    let years: BTreeSet<i32> = days.iter().map(|d| d.date.year()).collect();
    let working = |d: NaiveDate| {
        if off.contains(&d) {
            return false;
        }
        match days.iter().rev().find(|x| x.date == d).map(|x| x.kind) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None if !years.contains(&d.year())
                && statutory::statutory_holidays(d.year()).contains(&d) =>
            {
                false
            }
            None => d.weekday().number_from_monday() <= 5,
        }
    };
    let mut date = start;
    let mut left = count;
    let mut estimated = false;
    while left > 0 {
        date = date + chrono::Days::new(1);
        if !years.contains(&date.year()) {
            estimated = true;
        }
        if working(date) {
            left -= 1;
        }
    }
    (date, estimated)
}

fn any_date() -> impl Strategy<Value = NaiveDate> {
    (0u64..(365 * 4)).prop_map(|offset| date("2024-06-01") + chrono::Days::new(offset))
}

proptest! {
    #[test]
    fn deadlines_agree_with_a_day_by_day_count(
        start in any_date(),
        count in 0u32..40,
        holidays in proptest::collection::vec(any_date(), 0..30),
        workdays in proptest::collection::vec(any_date(), 0..10),
        off in proptest::collection::vec(any_date(), 0..5),
    ) {
        let mut days: Vec<CalendarDay> = parse_csv(BUNDLED_CSV).unwrap();
        days.extend(holidays.iter().map(|&date| CalendarDay { date, kind: DayKind::Holiday, name: String::new() }));
        days.extend(workdays.iter().map(|&date| CalendarDay { date, kind: DayKind::Workday, name: String::new() }));
        let calendar = WorkingCalendar::from_days(&days).with_days_off(off.iter().copied());
        let (expected, estimated) = oracle(&days, &off, start, count);
        let deadline = calendar.deadline(start, count);
        prop_assert_eq!(deadline.date, expected);
        prop_assert_eq!(deadline.estimated, estimated);
        prop_assert_eq!(calendar.working_days_between(start, deadline.date), count);
    }
}

/// The holidays the rules fix, against dates read off the published lunar calendar: 2027 and
/// 2028 (no schedule loaded yet), every one of them.
#[test]
fn the_statutory_holidays_of_a_year_follow_the_rules() {
    let dates = |list: &[&str]| -> std::collections::BTreeSet<NaiveDate> {
        list.iter().map(|d| date(d)).collect()
    };
    assert_eq!(
        statutory::statutory_holidays(2027),
        dates(&[
            "2027-01-01",
            "2027-02-05",
            "2027-02-06",
            "2027-02-07",
            "2027-02-08",
            "2027-04-05",
            "2027-05-01",
            "2027-05-02",
            "2027-06-09",
            "2027-09-15",
            "2027-10-01",
            "2027-10-02",
            "2027-10-03",
        ])
    );
    assert_eq!(
        statutory::statutory_holidays(2028),
        dates(&[
            "2028-01-01",
            "2028-01-25",
            "2028-01-26",
            "2028-01-27",
            "2028-01-28",
            "2028-04-04",
            // 中秋 falls on 3 October, a day of 国庆 already.
            "2028-05-01",
            "2028-05-02",
            "2028-05-28",
            "2028-10-01",
            "2028-10-02",
            "2028-10-03",
        ])
    );
}

/// The loaded schedules of 2025 and 2026 (which agree day by day with two independent
/// calendars) give every statutory holiday off: the rules and the schedule agree.
#[test]
fn every_statutory_holiday_is_off_in_the_loaded_schedules() {
    let loaded = parse_csv(BUNDLED_CSV).unwrap();
    for year in [2025, 2026] {
        for day in statutory::statutory_holidays(year) {
            assert!(
                loaded
                    .iter()
                    .any(|d| d.date == day && d.kind == DayKind::Holiday),
                "{day} is a statutory holiday the {year} schedule does not give off"
            );
        }
    }
}

/// 1 January 2027 is a holiday even before the 2027 schedule is loaded; the deadline is
/// still flagged as an estimate.
#[test]
fn an_estimate_past_the_loaded_years_skips_the_statutory_holidays() {
    let calendar = WorkingCalendar::bundled();
    // 31 December 2026 is a Thursday: the next working day is Monday 4 January, not 1 January.
    let deadline = calendar.deadline(date("2026-12-31"), 1);
    assert_eq!(deadline.date, date("2027-01-04"));
    assert!(deadline.estimated);
    assert!(!calendar.is_working_day(date("2027-02-08")), "初三 of 2027");
}
