//! The use cases: a report with its parts, the reconciliation of every level inside a unit,
//! the school summary table, dropouts and age–grade outliers. They take and return domain
//! types; the API turns them into messages.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use xueji_calendar::WorkingCalendar;

use crate::{
    StatsError,
    domain::{
        Cell, Month, MonthlyReport, Unit,
        dropouts::{self, FollowUp},
    },
    store::{Dropout, Store},
};

/// A unit's report and its parts' reports.
#[derive(Debug, Clone)]
pub struct ReportWithParts {
    pub report: MonthlyReport,
    pub parts: Vec<MonthlyReport>,
    pub parts_reconcile: bool,
}

/// The units directly below `unit` that have figures.
pub async fn parts_of(store: &Store, unit: &Unit, month: Month) -> Result<Vec<Unit>, StatsError> {
    Ok(match unit {
        Unit::County(_) => store
            .schools_inside(unit)
            .await?
            .into_iter()
            .map(|(school, _)| Unit::School(school))
            .collect(),
        Unit::School(_) => Vec::new(),
        _ => {
            let prefix = unit.child_prefix().unwrap_or_default();
            let mut units: Vec<Unit> = store
                .unit_balances(unit, month)
                .await?
                .into_keys()
                .filter(|key| key.starts_with(&prefix))
                .filter_map(|key| Unit::from_key(&key))
                .filter(|u| u.level() == child_level(unit))
                .collect();
            units.sort();
            units
        }
    })
}

fn child_level(unit: &Unit) -> &'static str {
    match unit {
        Unit::Nation => "province",
        Unit::Province(_) => "city",
        Unit::City(_) => "county",
        Unit::County(_) | Unit::School(_) => "school",
    }
}

pub async fn report_with_parts(
    store: &Store,
    unit: &Unit,
    month: Month,
) -> Result<ReportWithParts, StatsError> {
    let report = store.monthly_report(unit, month).await?;
    let mut parts = Vec::new();
    for part in parts_of(store, unit, month).await? {
        parts.push(store.monthly_report(&part, month).await?);
    }
    let parts_reconcile = parts.is_empty()
        || (parts.iter().map(|p| p.opening).sum::<i64>() == report.opening
            && parts.iter().map(|p| p.closing).sum::<i64>() == report.closing);
    Ok(ReportWithParts {
        report,
        parts,
        parts_reconcile,
    })
}

/// Every level inside `unit` (itself included) for `month`: each unit's parts sum to it, and
/// where breakdown cells are kept, the monthly rows' closing equals the cells' count.
pub async fn reconcile(
    store: &Store,
    unit: &Unit,
    month: Month,
) -> Result<(usize, Vec<(Unit, String)>), StatsError> {
    let balances = store.unit_balances(unit, month).await?;
    let schools = store.schools_inside(unit).await?;
    let mut mismatches = Vec::new();
    // Parents from their parts: province ← cities, city ← counties, county ← schools,
    // nation ← provinces.
    let mut sums: HashMap<String, (i64, i64)> = HashMap::new();
    let school_county: HashMap<String, String> = schools.iter().cloned().collect();
    for (key, (opening, closing)) in &balances {
        let parent = match Unit::from_key(key) {
            Some(Unit::Province(_)) => Some("nation".to_owned()),
            Some(Unit::City(c)) => Some(format!("province:{}", &c[..2.min(c.len())])),
            Some(Unit::County(c)) => Some(format!("city:{}", &c[..4.min(c.len())])),
            Some(Unit::School(s)) => school_county.get(&s).map(|c| format!("county:{c}")),
            _ => None,
        };
        if let Some(parent) = parent {
            let sum = sums.entry(parent).or_default();
            sum.0 += opening;
            sum.1 += closing;
        }
    }
    let keeps_cells = store.keeps_cells().await?;
    let end = month.last_day();
    let keys: Vec<String> = balances.keys().cloned().collect();
    let counts = if keeps_cells {
        store.unit_counts(&keys, end).await?
    } else {
        HashMap::new()
    };
    let mut ordered: Vec<(&String, &(i64, i64))> = balances.iter().collect();
    ordered.sort();
    for (key, (opening, closing)) in ordered {
        let Some(this) = Unit::from_key(key) else {
            return Err(StatsError::Internal(format!("unknown unit {key:?} stored")));
        };
        // A provincial node's nation is its own share; its parts are not all here.
        let has_all_parts = !(matches!(this, Unit::Nation) && keeps_cells);
        if let Some((parts_opening, parts_closing)) = sums.get(key).filter(|_| has_all_parts)
            && (parts_opening, parts_closing) != (opening, closing)
        {
            mismatches.push((
                this.clone(),
                format!(
                    "its parts sum to opening {parts_opening}, closing {parts_closing}; \
                     it reports opening {opening}, closing {closing}"
                ),
            ));
        }
        if keeps_cells {
            let counted = counts.get(key).copied().unwrap_or(0);
            if counted != *closing {
                mismatches.push((
                    this,
                    format!(
                        "its monthly rows close at {closing}, its breakdown counts {counted} \
                         on {end}"
                    ),
                ));
            }
        }
    }
    Ok((balances.len(), mismatches))
}

/// One school's row of the summary table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchoolSummary {
    pub school: String,
    pub county: String,
    pub students: i64,
    pub male: i64,
    pub female: i64,
    /// grade → (male, female)
    pub grades: BTreeMap<u8, (i64, i64)>,
    pub ethnic_minorities: i64,
    pub migrant_children: i64,
    pub left_behind_children: i64,
    pub entry_routes: BTreeMap<String, i64>,
}

/// The summary row read from a school's cells.
pub fn summarize(school: String, county: String, cells: &[Cell]) -> SchoolSummary {
    let mut row = SchoolSummary {
        school,
        county,
        ..Default::default()
    };
    let mut han = 0;
    for cell in cells {
        match (cell.dimension.as_str(), cell.value.as_str()) {
            ("gender", "male") => row.male += cell.students,
            ("gender", "female") => row.female += cell.students,
            ("grade_gender", value) => {
                if let Some((grade, gender)) = value.split_once('|')
                    && let Ok(grade) = grade.parse::<u8>()
                {
                    let entry = row.grades.entry(grade).or_default();
                    if gender == "male" {
                        entry.0 += cell.students;
                    } else {
                        entry.1 += cell.students;
                    }
                }
            }
            ("ethnicity", "01") => han += cell.students,
            ("migrant_child", _) => row.migrant_children += cell.students,
            ("left_behind_child", _) => row.left_behind_children += cell.students,
            ("entry_route", route) => {
                *row.entry_routes.entry(route.to_owned()).or_default() += cell.students
            }
            _ => {}
        }
    }
    row.students = row.male + row.female;
    row.ethnic_minorities = row.students - han;
    row
}

pub async fn school_summary(
    store: &Store,
    unit: &Unit,
    day: NaiveDate,
) -> Result<Vec<SchoolSummary>, StatsError> {
    let schools = store.schools_inside(unit).await?;
    let counties: HashMap<String, String> = schools.into_iter().collect();
    Ok(store
        .school_cells(unit, day)
        .await?
        .into_iter()
        .map(|(school, cells)| {
            let county = counties.get(&school).cloned().unwrap_or_default();
            summarize(school, county, &cells)
        })
        .collect())
}

/// The county's follow-up lists: students left unplaced longer than the province allows, and
/// those of them brought back this school year, each with their working days out.
#[derive(Debug, Default)]
pub struct DropoutLists {
    pub unplaced: Vec<(Dropout, u32)>,
    pub returned: Vec<(Dropout, u32)>,
}

pub async fn dropouts(
    store: &Store,
    calendar: &WorkingCalendar,
    unit: &Unit,
    as_of: NaiveDate,
    allowed: u32,
) -> Result<DropoutLists, StatsError> {
    let mut lists = DropoutLists::default();
    for student in store.left_unplaced(unit).await? {
        let back = student.returned.as_ref().map(|(on, _)| *on);
        match dropouts::follow_up(calendar, student.left_on, back, as_of, allowed) {
            Some(FollowUp::Unplaced { working_days }) => {
                lists.unplaced.push((student, working_days))
            }
            Some(FollowUp::Returned { working_days }) => {
                lists.returned.push((student, working_days))
            }
            None => {}
        }
    }
    Ok(lists)
}
