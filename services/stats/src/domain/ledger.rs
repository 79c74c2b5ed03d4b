//! The ledger: figures kept incrementally as events arrive, so a report reads a handful of
//! sums instead of scanning events. Per unit and month it keeps the additions and removals by
//! kind; a count at a month's start is the sum of the months before it. Events are applied
//! once: a position at or before the last one applied is a redelivery and changes nothing.

use std::collections::{BTreeMap, HashMap};

use super::{Event, Month, MonthlyReport, Unit, effects};

#[derive(Debug, Clone, Default)]
struct MonthFigures {
    additions: BTreeMap<&'static str, i64>,
    removals: BTreeMap<&'static str, i64>,
}

impl MonthFigures {
    fn net(&self) -> i64 {
        self.additions.values().sum::<i64>() - self.removals.values().sum::<i64>()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The last feed position applied.
    position: u64,
    months: HashMap<Unit, BTreeMap<Month, MonthFigures>>,
}

impl Ledger {
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Applies an event; answers false (and changes nothing) for a redelivered one.
    pub fn apply(&mut self, event: &Event) -> bool {
        if event.position <= self.position {
            return false;
        }
        self.position = event.position;
        let month = Month::of(event.on);
        let (removals, additions) = effects(event);
        for unit in removals {
            *self
                .months
                .entry(unit)
                .or_default()
                .entry(month)
                .or_default()
                .removals
                .entry(event.kind.removal())
                .or_default() += 1;
        }
        for unit in additions {
            *self
                .months
                .entry(unit)
                .or_default()
                .entry(month)
                .or_default()
                .additions
                .entry(event.kind.addition())
                .or_default() += 1;
        }
        true
    }

    /// The unit's monthly change report.
    pub fn monthly_report(&self, unit: &Unit, month: Month) -> MonthlyReport {
        let months = self.months.get(unit);
        let opening = months.map_or(0, |m| m.range(..month).map(|(_, f)| f.net()).sum());
        let figures = months
            .and_then(|m| m.get(&month))
            .cloned()
            .unwrap_or_default();
        let closing = opening + figures.net();
        MonthlyReport {
            unit: unit.clone(),
            month,
            opening,
            additions: figures.additions.into_iter().collect(),
            removals: figures.removals.into_iter().collect(),
            closing,
        }
    }
}
