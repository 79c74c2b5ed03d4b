//! The brute-force recount: a report computed from the raw events alone, by replaying every
//! student's placement, with none of the ledger's bookkeeping. The ledger's figures are
//! checked against it; the benchmark's baseline scans in the same spirit.

use std::collections::{BTreeMap, HashMap};

use super::{Event, Month, MonthlyReport, Placement, Unit};

/// The report of `unit` for `month` from `events` (in feed order, effective dates not going
/// back; redeliveries, an event whose position is not above the last one seen, are skipped as
/// the ledger skips them). The opening and closing counts are counted from the students'
/// placements at the month's start and end, not derived from the changes.
pub fn monthly_report(events: &[Event], unit: &Unit, month: Month) -> MonthlyReport {
    let start = month.first_day();
    let end = start
        .checked_add_months(chrono::Months::new(1))
        .expect("a month after");
    let before_start: Vec<&Event> = fresh(events).filter(|e| e.on < start).collect();
    let before_end: Vec<&Event> = fresh(events).filter(|e| e.on < end).collect();
    let mut additions: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut removals: BTreeMap<&'static str, i64> = BTreeMap::new();
    for event in fresh(events).filter(|e| Month::of(e.on) == month) {
        let was = event.from.as_ref().is_some_and(|p| unit.contains(p));
        let is = event.to.as_ref().is_some_and(|p| unit.contains(p));
        if was && !is {
            *removals.entry(event.kind.removal()).or_default() += 1;
        }
        if is && !was {
            *additions.entry(event.kind.addition()).or_default() += 1;
        }
    }
    MonthlyReport {
        unit: unit.clone(),
        month,
        opening: count(&before_start, unit),
        additions: additions.into_iter().collect(),
        removals: removals.into_iter().collect(),
        closing: count(&before_end, unit),
    }
}

/// The events in feed order without redeliveries.
fn fresh(events: &[Event]) -> impl Iterator<Item = &Event> {
    let mut last = 0;
    events.iter().filter(move |e| {
        let new = e.position > last;
        last = last.max(e.position);
        new
    })
}

/// Students whose last placement after `events` lies in `unit`.
fn count(events: &[&Event], unit: &Unit) -> i64 {
    let mut placed: HashMap<&str, Option<&Placement>> = HashMap::new();
    for event in events {
        placed.insert(event.student.as_str(), event.to.as_ref());
    }
    placed
        .values()
        .filter(|p| p.is_some_and(|p| unit.contains(p)))
        .count() as i64
}

/// Active students of `unit` after every event up to and including `day`.
pub fn active_on(events: &[Event], unit: &Unit, day: chrono::NaiveDate) -> i64 {
    let upto: Vec<&Event> = fresh(events).filter(|e| e.on <= day).collect();
    count(&upto, unit)
}
