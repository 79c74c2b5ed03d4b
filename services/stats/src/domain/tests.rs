//! Random event histories: the ledger's reports against the brute-force recount, the report
//! identity, replays, and the parts summing to the whole.

use chrono::NaiveDate;
use proptest::prelude::*;

use super::{ChangeKind, Event, Gender, Ledger, Month, Placement, Unit, recount};

const SCHOOLS: [(&str, &str); 5] = [
    ("2135000101", "350102"),
    ("2135000104", "350102"),
    ("2135000102", "350103"),
    ("2135000103", "350203"),
    ("2134000101", "340102"),
];

#[derive(Debug, Clone)]
enum State {
    Never,
    Active(Placement),
    Suspended(Placement),
    DroppedOut(Placement),
    Graduated,
    Ended,
}

fn placement(school: usize, grade: u8, gender: Gender) -> Placement {
    Placement {
        school: SCHOOLS[school].0.into(),
        county: SCHOOLS[school].1.into(),
        grade,
        gender,
    }
}

/// Turns random choices into a valid history: each student's next event is one its state
/// allows, dates never go back.
fn history(steps: &[(usize, u8, usize, u32)], students: usize) -> Vec<Event> {
    let mut states = vec![State::Never; students];
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut events = Vec::new();
    for (n, &(student, action, school, days)) in steps.iter().enumerate() {
        let student = student % students;
        day = day + chrono::Days::new(u64::from(days));
        let state = states[student].clone();
        let (kind, from, to, next) = match state {
            State::Never => {
                let to = placement(
                    school,
                    1,
                    if action % 2 == 0 {
                        Gender::Male
                    } else {
                        Gender::Female
                    },
                );
                (
                    ChangeKind::Registration,
                    None,
                    Some(to.clone()),
                    State::Active(to),
                )
            }
            State::Active(at) => match action % 7 {
                0 => {
                    let mut to = at.clone();
                    let target =
                        (SCHOOLS.iter().position(|s| s.0 == at.school).unwrap() + 1 + school % 4)
                            % 5;
                    to.school = SCHOOLS[target].0.into();
                    to.county = SCHOOLS[target].1.into();
                    (
                        ChangeKind::Transfer,
                        Some(at),
                        Some(to.clone()),
                        State::Active(to),
                    )
                }
                1 => (
                    ChangeKind::Suspension,
                    Some(at.clone()),
                    None,
                    State::Suspended(at),
                ),
                2 => (
                    ChangeKind::Dropout,
                    Some(at.clone()),
                    None,
                    State::DroppedOut(at),
                ),
                3 => (ChangeKind::Death, Some(at), None, State::Ended),
                4 => (ChangeKind::Graduation, Some(at), None, State::Graduated),
                5 => {
                    let mut to = at.clone();
                    to.grade += 1;
                    (
                        ChangeKind::Promotion,
                        Some(at),
                        Some(to.clone()),
                        State::Active(to),
                    )
                }
                _ => {
                    let mut to = at.clone();
                    to.gender = match at.gender {
                        Gender::Male => Gender::Female,
                        Gender::Female => Gender::Male,
                    };
                    (
                        ChangeKind::Correction,
                        Some(at),
                        Some(to.clone()),
                        State::Active(to),
                    )
                }
            },
            State::Suspended(at) => (
                ChangeKind::Resumption,
                None,
                Some(at.clone()),
                State::Active(at),
            ),
            State::DroppedOut(at) => (
                ChangeKind::Return,
                None,
                Some(at.clone()),
                State::Active(at),
            ),
            State::Graduated => {
                let to = placement(school, 7, Gender::Female);
                (
                    ChangeKind::Progression,
                    None,
                    Some(to.clone()),
                    State::Active(to),
                )
            }
            State::Ended => continue,
        };
        states[student] = next;
        events.push(Event {
            position: n as u64 + 1,
            student: format!("s{student}"),
            on: day,
            kind,
            from,
            to,
        });
    }
    events
}

fn units() -> Vec<Unit> {
    let mut units = vec![Unit::Nation];
    for (school, county) in SCHOOLS {
        units.push(Unit::School(school.into()));
        units.push(Unit::County(county.into()));
        units.push(Unit::City(county[..4].into()));
        units.push(Unit::Province(county[..2].into()));
    }
    units.sort();
    units.dedup();
    units
}

fn months(events: &[Event]) -> Vec<Month> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return vec![Month {
            year: 2026,
            month: 1,
        }];
    };
    let mut months = Vec::new();
    let mut at = Month::of(first.on).first_day();
    while at <= last.on {
        months.push(Month::of(at));
        at = at.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    months
}

fn steps() -> impl Strategy<Value = Vec<(usize, u8, usize, u32)>> {
    prop::collection::vec((0usize..12, any::<u8>(), 0usize..5, 0u32..25), 0..80)
}

proptest! {
    #[test]
    fn reports_match_a_recount_and_always_reconcile(steps in steps()) {
        let events = history(&steps, 12);
        let mut ledger = Ledger::default();
        for event in &events {
            ledger.apply(event);
        }
        for unit in units() {
            let mut previous_closing = None;
            for month in months(&events) {
                let report = ledger.monthly_report(&unit, month);
                prop_assert!(report.reconciles(), "{report:?}");
                let recounted = recount::monthly_report(&events, &unit, month);
                prop_assert!(recounted.reconciles(), "the recount: {recounted:?}");
                prop_assert_eq!(&report, &recounted);
                if let Some(closing) = previous_closing {
                    prop_assert_eq!(report.opening, closing);
                }
                previous_closing = Some(report.closing);
            }
        }
    }

    #[test]
    fn a_replayed_feed_changes_nothing(steps in steps(), cut in 0usize..80) {
        let events = history(&steps, 12);
        let mut once = Ledger::default();
        for event in &events {
            once.apply(event);
        }
        // Delivered at least once: a prefix again (a consumer that resumed from an older
        // position), then the whole feed again.
        let mut twice = Ledger::default();
        let cut = cut.min(events.len());
        for event in events.iter().chain(&events[..cut]).chain(&events) {
            twice.apply(event);
        }
        prop_assert_eq!(once.position(), twice.position());
        for unit in units() {
            for month in months(&events) {
                prop_assert_eq!(once.monthly_report(&unit, month), twice.monthly_report(&unit, month));
            }
        }
    }

    #[test]
    fn the_parts_sum_to_the_whole(steps in steps()) {
        let events = history(&steps, 12);
        let mut ledger = Ledger::default();
        for event in &events {
            ledger.apply(event);
        }
        for month in months(&events) {
            let nation = ledger.monthly_report(&Unit::Nation, month);
            let provinces: i64 = ["35", "34"]
                .iter()
                .map(|p| ledger.monthly_report(&Unit::Province((*p).into()), month).closing)
                .sum();
            prop_assert_eq!(nation.closing, provinces);
            for county in ["350102", "350103", "350203", "340102"] {
                let whole = ledger.monthly_report(&Unit::County(county.into()), month);
                let parts: i64 = SCHOOLS
                    .iter()
                    .filter(|(_, c)| *c == county)
                    .map(|(s, _)| ledger.monthly_report(&Unit::School((*s).into()), month))
                    .map(|r| r.closing)
                    .sum();
                prop_assert_eq!(whole.closing, parts);
                prop_assert_eq!(
                    whole.closing,
                    recount::active_on(&events, &Unit::County(county.into()),
                        month.first_day().checked_add_months(chrono::Months::new(1)).unwrap().pred_opt().unwrap())
                );
            }
        }
    }
}

#[test]
fn a_transfer_inside_a_county_moves_schools_not_the_county() {
    let from = placement(0, 3, Gender::Male);
    let to = placement(1, 3, Gender::Male);
    let event = Event {
        position: 1,
        student: "s".into(),
        on: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        kind: ChangeKind::Transfer,
        from: Some(from),
        to: Some(to),
    };
    let (removals, additions) = super::effects(&event);
    assert_eq!(removals, [Unit::School("2135000101".into())]);
    assert_eq!(additions, [Unit::School("2135000104".into())]);
}
