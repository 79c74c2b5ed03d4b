//! Random event histories: the ledger's reports against the brute-force recount, the report
//! identity, replays, and the parts summing to the whole.

use chrono::NaiveDate;
use proptest::prelude::*;

use super::{
    ChangeKind, Event, Gender, Ledger, Month, Unit, recount,
    synthetic::{SCHOOLS, history, placement},
};

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
        person: Default::default(),
    };
    let (removals, additions) = super::effects(&event);
    assert_eq!(removals, [Unit::School("2135000101".into())]);
    assert_eq!(additions, [Unit::School("2135000104".into())]);
}

#[test]
fn special_education_counts_as_its_own_stage() {
    use super::stage_of;
    assert_eq!(stage_of("5135000401", 3), "special");
    assert_eq!(stage_of("5135000401", 8), "special");
    assert_eq!(stage_of("2135000101", 3), "primary");
    assert_eq!(stage_of("3135000201", 8), "junior");
    assert_eq!(stage_of("3435000301", 11), "senior");
}
