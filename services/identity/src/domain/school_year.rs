//! The school year: the annual cycle's dates per province (data), its steps, and which grades of
//! a school graduate. Pure: the runner (`crate::cycle`) and the store do the work.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use xueji_codes::{Stage, StageOffered, grade_place};

/// The bundled dates: national defaults and the provinces that differ.
pub const BUNDLED_DATES: &str = include_str!("../../policy/school_year.toml");

/// One step of the annual cycle that changes enrollments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CycleStep {
    /// Students of graduating grades graduate (or complete, or leave incomplete).
    Graduation,
    /// Every other active student moves up one grade.
    Promotion,
}

impl CycleStep {
    /// In the order they run.
    pub const ALL: [Self; 2] = [Self::Graduation, Self::Promotion];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Graduation => "graduation",
            Self::Promotion => "promotion",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// How a stage ended for a student of a graduating grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraduationOutcome {
    /// 毕业
    Graduated,
    /// 结业
    Completed,
    /// 肄业
    Incomplete,
}

impl GraduationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Graduated => "graduated",
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Graduated, Self::Completed, Self::Incomplete]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// A month and day, written `MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthDay {
    pub month: u32,
    pub day: u32,
}

impl MonthDay {
    /// The day in `year` (29 February falls back to the 28th).
    pub fn in_year(self, year: i32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, self.month, self.day)
            .or_else(|| NaiveDate::from_ymd_opt(year, self.month, self.day - 1))
            .expect("checked when read")
    }
}

impl<'de> Deserialize<'de> for MonthDay {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bad = || serde::de::Error::custom(format!("{text:?} is not a month-day (MM-DD)"));
        let (month, day) = text.split_once('-').ok_or_else(bad)?;
        let (month, day) = (
            month.parse().map_err(|_| bad())?,
            day.parse().map_err(|_| bad())?,
        );
        // 2024 is a leap year: every real month-day exists in it.
        NaiveDate::from_ymd_opt(2024, month, day).ok_or_else(bad)?;
        Ok(Self { month, day })
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatesOverride {
    freeze: Option<MonthDay>,
    clearing: Option<MonthDay>,
    graduation: Option<MonthDay>,
    promotion: Option<MonthDay>,
    year_starts: Option<MonthDay>,
    intake_by: Option<MonthDay>,
    problems_by: Option<MonthDay>,
}

/// One province's dates of the annual cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleDates {
    pub freeze: MonthDay,
    pub clearing: MonthDay,
    pub graduation: MonthDay,
    pub promotion: MonthDay,
    pub year_starts: MonthDay,
    pub intake_by: MonthDay,
    /// The last day to clear the year's problem records (查重, 问题学籍).
    pub problems_by: MonthDay,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatesFile {
    defaults: CycleDates,
    #[serde(default)]
    province: BTreeMap<String, DatesOverride>,
}

/// The dates file, read and checked: national defaults and each province's own.
#[derive(Debug, Clone)]
pub struct SchoolYearPolicy {
    defaults: CycleDates,
    provinces: BTreeMap<String, CycleDates>,
}

impl SchoolYearPolicy {
    pub fn bundled() -> Self {
        Self::from_toml(BUNDLED_DATES).expect("the bundled school-year dates are valid")
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: DatesFile =
            toml::from_str(text).map_err(|e| format!("school-year dates: {e}"))?;
        let mut provinces = BTreeMap::new();
        check_order("[defaults]", &file.defaults)?;
        for (province, own) in file.province {
            if province.len() != 2 || !province.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "school-year dates: [province.{province}]: a province is named by its two digits"
                ));
            }
            let d = file.defaults;
            let dates = CycleDates {
                freeze: own.freeze.unwrap_or(d.freeze),
                clearing: own.clearing.unwrap_or(d.clearing),
                graduation: own.graduation.unwrap_or(d.graduation),
                promotion: own.promotion.unwrap_or(d.promotion),
                year_starts: own.year_starts.unwrap_or(d.year_starts),
                intake_by: own.intake_by.unwrap_or(d.intake_by),
                problems_by: own.problems_by.unwrap_or(d.problems_by),
            };
            check_order(&format!("[province.{province}]"), &dates)?;
            provinces.insert(province, dates);
        }
        Ok(Self {
            defaults: file.defaults,
            provinces,
        })
    }

    /// The dates of `province` (two digits).
    pub fn dates(&self, province: &str) -> CycleDates {
        self.provinces
            .get(province)
            .copied()
            .unwrap_or(self.defaults)
    }
}

/// The summer's steps must come in their order, all before the school year starts.
fn check_order(whose: &str, dates: &CycleDates) -> Result<(), String> {
    let order = [
        ("freeze", dates.freeze),
        ("clearing", dates.clearing),
        ("graduation", dates.graduation),
        ("promotion", dates.promotion),
        ("year_starts", dates.year_starts),
    ];
    for pair in order.windows(2) {
        if pair[0].1 > pair[1].1 {
            return Err(format!(
                "school-year dates: {whose}: `{}` must not come after `{}`",
                pair[0].0, pair[1].0
            ));
        }
    }
    if dates.intake_by < dates.year_starts {
        return Err(format!(
            "school-year dates: {whose}: `intake_by` must not come before `year_starts`"
        ));
    }
    if dates.problems_by < dates.year_starts {
        return Err(format!(
            "school-year dates: {whose}: `problems_by` must not come before `year_starts`"
        ));
    }
    Ok(())
}

impl CycleDates {
    /// The day `step` runs in the summer of `year`.
    pub fn day_of(&self, step: CycleStep, year: i32) -> NaiveDate {
        match step {
            CycleStep::Graduation => self.graduation.in_year(year),
            CycleStep::Promotion => self.promotion.in_year(year),
        }
    }

    /// The school year a day lies in, named by the calendar year it starts in (2026 for
    /// 2026–2027: from `year_starts` of 2026 to the day before that of 2027).
    pub fn school_year_of(&self, day: NaiveDate) -> i32 {
        if self.year_starts.in_year(day.year()) <= day {
            day.year()
        } else {
            day.year() - 1
        }
    }

    /// The summer whose cycle a day belongs to: the current calendar year.
    pub fn cycle_year(&self, today: NaiveDate) -> i32 {
        today.year()
    }

    /// The last summer whose graduation day has come on `today`: the latest cycle an operator
    /// may run.
    pub fn last_summer(&self, today: NaiveDate) -> i32 {
        if self.graduation.in_year(today.year()) <= today {
            today.year()
        } else {
            today.year() - 1
        }
    }

    /// Whether the scheduler runs `step` of `year` on `today`: from its day until the day
    /// before the school year starts. Later, only an operator runs it, on demand.
    pub fn scheduled(&self, step: CycleStep, year: i32, today: NaiveDate) -> bool {
        self.day_of(step, year) <= today && today < self.year_starts.in_year(year)
    }

    /// Whether new tasks are frozen for graduating grades on `today` (from the freeze until
    /// the school year starts).
    pub fn frozen(&self, today: NaiveDate) -> bool {
        let year = today.year();
        self.freeze.in_year(year) <= today && today < self.year_starts.in_year(year)
    }

    /// Whether graduating grades' pending tasks are cleared on `today` (from the clearing day
    /// until the school year starts; a task opened before the freeze may still be open).
    pub fn clearing_due(&self, today: NaiveDate) -> bool {
        let year = today.year();
        self.clearing.in_year(year) <= today && today < self.year_starts.in_year(year)
    }
}

/// Why an operator may not run a year's cycle on demand.
pub fn check_on_demand(dates: &CycleDates, year: i32, today: NaiveDate) -> Result<(), String> {
    if !(2000..=2100).contains(&year) {
        return Err("must be a year between 2000 and 2100".into());
    }
    let first = dates.day_of(CycleStep::Graduation, year);
    if today < first {
        return Err(format!(
            "the {year} cycle opens with graduation on {first}; it cannot run before"
        ));
    }
    Ok(())
}

/// The grades of a school that graduate: the last grade of each run of grades it teaches.
/// A nine-year school promotes its grade 6 into its own junior stage.
pub fn graduating_grades(stages: &[StageOffered]) -> Vec<u32> {
    let mut grades: Vec<u32> = (1..=12)
        .filter(|grade| grade_place(stages, *grade).is_some_and(|place| place.graduating))
        .collect();
    grades.dedup();
    grades
}

/// The graduating grades whose graduation the registry authority confirms: senior high.
pub fn confirmed_grades(stages: &[StageOffered]) -> Vec<u32> {
    graduating_grades(stages)
        .into_iter()
        .filter(|grade| grade_place(stages, *grade).is_some_and(|p| p.stage == Stage::Senior))
        .collect()
}

/// The finished record a progression continues, as the store holds it.
#[derive(Debug, Clone)]
pub struct FinishedRecord {
    pub registry_number: String,
    pub name: String,
    pub gender: xueji_codes::Gender,
    pub birth_date: NaiveDate,
    pub grade: u32,
}

/// Whether `registration` may continue `record` (升学): the same person (name, gender, birth
/// date as recorded: a change is a key-field correction, not a registration) entering the
/// grade after the last one the record finished.
pub fn check_progression(
    record: &FinishedRecord,
    registration: &crate::domain::Registration,
) -> Result<(), Vec<crate::domain::FieldViolation>> {
    use crate::domain::FieldViolation;
    let mut violations = Vec::new();
    if registration.name != record.name {
        violations.push(FieldViolation::new(
            "name",
            format!(
                "differs from the name on record {}; a name is changed by a key-field correction",
                record.registry_number
            ),
        ));
    }
    if registration.birth_date != record.birth_date {
        violations.push(FieldViolation::new(
            "birth_date",
            format!(
                "differs from the birth date on record {}",
                record.registry_number
            ),
        ));
    }
    if registration.gender != record.gender {
        violations.push(FieldViolation::new(
            "gender",
            format!(
                "differs from the gender on record {}",
                record.registry_number
            ),
        ));
    }
    if registration.grade != record.grade + 1 {
        violations.push(FieldViolation::new(
            "grade",
            format!(
                "{} does not follow grade {}, the last the student finished: progression \
                 continues in grade {}",
                registration.grade,
                record.grade,
                record.grade + 1
            ),
        ));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(stage: Stage, years: u32) -> StageOffered {
        StageOffered { stage, years }
    }

    #[test]
    fn bundled_dates_read_and_provinces_override() {
        let policy = SchoolYearPolicy::bundled();
        let national = policy.dates("35");
        assert_eq!(
            national.day_of(CycleStep::Promotion, 2026).to_string(),
            "2026-08-10"
        );
        let anhui = policy.dates("34");
        assert_eq!(
            anhui.day_of(CycleStep::Promotion, 2026).to_string(),
            "2026-08-01"
        );
        assert_eq!(
            anhui.day_of(CycleStep::Graduation, 2026).to_string(),
            "2026-07-31"
        );
        assert_eq!(anhui.freeze, national.freeze);
    }

    #[test]
    fn dates_out_of_order_are_refused() {
        let bad = BUNDLED_DATES.replace("promotion = \"08-10\"", "promotion = \"07-10\"");
        assert!(
            SchoolYearPolicy::from_toml(&bad)
                .unwrap_err()
                .contains("graduation")
        );
        let bad = BUNDLED_DATES.replace("\"09-30\"", "\"02-30\"");
        assert!(
            SchoolYearPolicy::from_toml(&bad)
                .unwrap_err()
                .contains("MM-DD")
        );
    }

    #[test]
    fn the_scheduler_runs_a_step_in_its_summer_window_only() {
        let dates = SchoolYearPolicy::bundled().dates("35");
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        assert!(!dates.scheduled(CycleStep::Promotion, 2026, day("2026-08-09")));
        assert!(dates.scheduled(CycleStep::Promotion, 2026, day("2026-08-10")));
        assert!(dates.scheduled(CycleStep::Promotion, 2026, day("2026-08-31")));
        assert!(!dates.scheduled(CycleStep::Promotion, 2026, day("2026-09-01")));
        assert!(!dates.clearing_due(day("2026-07-14")));
        assert!(dates.clearing_due(day("2026-07-15")));
        assert!(dates.clearing_due(day("2026-08-31")));
        assert!(!dates.clearing_due(day("2026-09-01")));
        assert!(dates.frozen(day("2026-07-01")));
        assert!(!dates.frozen(day("2026-06-30")));
        assert!(check_on_demand(&dates, 2026, day("2026-12-01")).is_ok());
        assert_eq!(dates.last_summer(day("2026-12-01")), 2026);
        assert_eq!(dates.last_summer(day("2026-07-29")), 2025);
        assert!(check_on_demand(&dates, 2027, day("2026-12-01")).is_err());
    }

    #[test]
    fn graduating_grades_follow_the_stages() {
        assert_eq!(graduating_grades(&[offered(Stage::Primary, 5)]), [5]);
        assert_eq!(
            graduating_grades(&[offered(Stage::Primary, 6), offered(Stage::Junior, 3)]),
            [9]
        );
        let twelve = [
            offered(Stage::Primary, 6),
            offered(Stage::Junior, 3),
            offered(Stage::Senior, 3),
        ];
        assert_eq!(graduating_grades(&twelve), [12]);
        assert_eq!(confirmed_grades(&twelve), [12]);
        assert_eq!(
            confirmed_grades(&[offered(Stage::Junior, 4)]),
            Vec::<u32>::new()
        );
    }
}
