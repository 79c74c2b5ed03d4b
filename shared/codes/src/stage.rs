//! Stages (学段) and lengths of schooling (学制), and the national grades they give a school.
//!
//! Grades are national: 1–6 primary, 7–9 junior, 10–12 senior under the 6-3 system. A school's
//! length of schooling moves the boundary: a 5-year primary ends at grade 5 and a 4-year junior
//! (the 5-4 system) starts at grade 6. Registration, promotion and graduation all read the
//! grades from here, so a wrong length of schooling never makes a student graduate early.

use std::{fmt, ops::RangeInclusive};

use serde::{Deserialize, Serialize};

/// 学段.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Primary,
    Junior,
    Senior,
    Special,
}

impl Stage {
    /// The lengths of schooling (学制) the stage allows, in years.
    pub fn allowed_years(self) -> RangeInclusive<u32> {
        match self {
            Stage::Primary => 5..=6,
            Stage::Junior => 3..=4,
            Stage::Senior => 3..=3,
            Stage::Special => 1..=12,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Primary => "primary",
            Stage::Junior => "junior",
            Stage::Senior => "senior",
            Stage::Special => "special",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Stage::Primary, Stage::Junior, Stage::Senior, Stage::Special]
            .into_iter()
            .find(|stage| stage.as_str() == text)
    }

    /// Primary and junior: the compulsory stage (义务教育).
    /// Whether the stage is compulsory education (义务教育): primary, junior, and special
    /// education, whose schools teach the compulsory years (Model rules 第十六条).
    pub fn is_compulsory(self) -> bool {
        matches!(self, Stage::Primary | Stage::Junior | Stage::Special)
    }

    /// The national grades the stage spans at a school with `years` of schooling in it.
    pub fn grades(self, years: u32) -> RangeInclusive<u32> {
        match self {
            Stage::Primary => 1..=years,
            Stage::Junior => (10 - years)..=9,
            Stage::Senior => 10..=(9 + years),
            Stage::Special => 1..=years.min(12),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage a school offers, with its length of schooling in years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageOffered {
    pub stage: Stage,
    pub years: u32,
}

impl StageOffered {
    pub fn grades(self) -> RangeInclusive<u32> {
        self.stage.grades(self.years)
    }
}

/// The stages a school of `category` offers when nothing else is recorded: the national
/// 6-3-3 system (special education: nine years).
pub fn default_stages(category: crate::SchoolCategory) -> Vec<StageOffered> {
    use crate::SchoolCategory as C;
    let (stage, years) = match category {
        C::Primary | C::AdultPrimary => (Stage::Primary, 6),
        C::Junior | C::VocationalJunior | C::AdultJunior | C::ReformSchool => (Stage::Junior, 3),
        C::SeniorHigh | C::AdultSenior | C::SecondaryVocational => (Stage::Senior, 3),
        C::SpecialEducation => (Stage::Special, 9),
        C::Kindergarten | C::University => return Vec::new(),
    };
    vec![StageOffered { stage, years }]
}

/// Where a grade sits at a school: the stage that teaches it, and whether it is that stage's
/// last grade at this school with no later stage continuing it here (the graduating grade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradePlace {
    pub stage: Stage,
    pub graduating: bool,
}

/// The place of `grade` among a school's stages; `None` when the school does not teach it.
/// A school that teaches the next grade in a later stage (a nine-year or twelve-year school)
/// promotes its students there: only the last grade it teaches graduates.
pub fn grade_place(stages: &[StageOffered], grade: u32) -> Option<GradePlace> {
    let offered = stages.iter().find(|s| s.grades().contains(&grade))?;
    let taught_next = stages.iter().any(|s| s.grades().contains(&(grade + 1)));
    Some(GradePlace {
        stage: offered.stage,
        graduating: !taught_next,
    })
}

/// The grades a school teaches, lowest first, as a human reads them ("1–6, 7–9").
pub fn describe_grades(stages: &[StageOffered]) -> String {
    let mut spans: Vec<_> = stages.iter().map(|s| s.grades()).collect();
    spans.sort_by_key(|g| *g.start());
    spans
        .iter()
        .map(|g| format!("{}–{}", g.start(), g.end()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(stage: Stage, years: u32) -> StageOffered {
        StageOffered { stage, years }
    }

    #[test]
    fn lengths_of_schooling_move_the_stage_boundary() {
        assert_eq!(Stage::Primary.grades(6), 1..=6);
        assert_eq!(Stage::Primary.grades(5), 1..=5);
        assert_eq!(Stage::Junior.grades(3), 7..=9);
        assert_eq!(Stage::Junior.grades(4), 6..=9);
        assert_eq!(Stage::Senior.grades(3), 10..=12);
    }

    #[test]
    fn the_last_grade_taught_graduates() {
        let five_year_primary = [offered(Stage::Primary, 5)];
        assert_eq!(grade_place(&five_year_primary, 6), None);
        assert!(grade_place(&five_year_primary, 5).unwrap().graduating);
        assert!(!grade_place(&five_year_primary, 4).unwrap().graduating);
        let nine_year = [offered(Stage::Primary, 6), offered(Stage::Junior, 3)];
        assert!(!grade_place(&nine_year, 6).unwrap().graduating);
        assert_eq!(grade_place(&nine_year, 7).unwrap().stage, Stage::Junior);
        assert!(grade_place(&nine_year, 9).unwrap().graduating);
        assert_eq!(describe_grades(&nine_year), "1–6, 7–9");
    }
}
