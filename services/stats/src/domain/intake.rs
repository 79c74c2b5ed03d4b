//! What the national node checks of a province's report before storing it: one province's
//! figures must never poison the nation's sum or block another province's report. Counts are
//! bounded; each level's rows are the sum of the level below (counties → their city → the
//! province) for every month, direction and kind, so a report that does not reconcile is
//! refused, naming the unit.

use std::collections::BTreeMap;

/// No monthly count of one unit, kind and direction comes near this (the nation has about
/// 290 million students): a larger one is not a figure but an attack or a bug.
pub const MAX_STUDENTS: i64 = 1_000_000_000;

/// One reported row as the check needs it: unit key (`province:35`, `city:3501`,
/// `county:350102`), month (any key), direction, kind, count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    pub unit: &'a str,
    pub month: String,
    pub direction: &'a str,
    pub kind: &'a str,
    pub students: i64,
}

/// Checks a province's rows; answers the first problem, naming the unit.
pub fn check_report(rows: &[Row<'_>]) -> Result<(), String> {
    // (level, parent) sums per (month, direction, kind), and each row's own count.
    type Key = (String, String, String);
    let mut own: BTreeMap<(String, Key), i64> = BTreeMap::new();
    let mut sum_of_parts: BTreeMap<(String, Key), i64> = BTreeMap::new();
    for row in rows {
        if !(0..=MAX_STUDENTS).contains(&row.students) {
            return Err(format!(
                "{}: {} students is not a count (0 to {MAX_STUDENTS})",
                row.unit, row.students
            ));
        }
        let key: Key = (
            row.month.clone(),
            row.direction.to_owned(),
            row.kind.to_owned(),
        );
        if own
            .insert((row.unit.to_owned(), key.clone()), row.students)
            .is_some()
        {
            return Err(format!(
                "{}: {} {} {} reported twice",
                row.unit, key.0, key.1, key.2
            ));
        }
        let parent = match row.unit.split_once(':') {
            Some(("county", code)) => code.get(..4).map(|c| format!("city:{c}")),
            Some(("city", code)) => code.get(..2).map(|p| format!("province:{p}")),
            _ => None,
        };
        if let Some(parent) = parent {
            *sum_of_parts.entry((parent, key)).or_default() += row.students;
        }
    }
    // Every whole equals its parts, and no parts stand without their whole.
    for ((unit, key), whole) in &own {
        if unit.starts_with("county:") {
            continue;
        }
        let parts = sum_of_parts
            .get(&(unit.clone(), key.clone()))
            .copied()
            .unwrap_or(0);
        if parts != *whole {
            return Err(format!(
                "{unit}: {} {} {} is {whole}, its parts sum to {parts}",
                key.0, key.1, key.2
            ));
        }
    }
    for ((unit, key), parts) in &sum_of_parts {
        if !own.contains_key(&(unit.clone(), key.clone())) && *parts != 0 {
            return Err(format!(
                "{unit}: {} {} {} is missing, its parts sum to {parts}",
                key.0, key.1, key.2
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(unit: &'a str, students: i64) -> Row<'a> {
        Row {
            unit,
            month: "2026-09".into(),
            direction: "addition",
            kind: "registration",
            students,
        }
    }

    #[test]
    fn a_reconciling_report_passes_and_others_are_refused_naming_the_unit() {
        let good = [
            row("province:35", 5),
            row("city:3501", 5),
            row("county:350102", 2),
            row("county:350103", 3),
        ];
        assert_eq!(check_report(&good), Ok(()));
        let mut overflow = good.to_vec();
        overflow[2].students = i64::MAX;
        assert!(
            check_report(&overflow)
                .unwrap_err()
                .starts_with("county:350102")
        );
        let mut negative = good.to_vec();
        negative[0].students = -1;
        assert!(check_report(&negative).is_err());
        let mut off = good.to_vec();
        off[0].students = 6;
        assert!(check_report(&off).unwrap_err().starts_with("province:35"));
        let orphan = [row("province:35", 0), row("county:350102", 2)];
        assert!(check_report(&orphan).unwrap_err().starts_with("city:3501"));
    }
}
