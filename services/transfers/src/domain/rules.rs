//! Province rules that refuse a transfer at start, as data (`policy/rules.toml`, a province
//! section replacing the fields it names).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use xueji_codes::{SchoolCategory, Stage};

use super::SchoolFacts;

/// One province's rules; `None` fields fall back to the national defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvinceRules {
    /// Inclusive `MM-DD` ranges in which no transfer may start.
    pub closed_windows: Option<Vec<[String; 2]>>,
    pub compulsory_within_township: Option<bool>,
    pub senior_within_county: Option<bool>,
    /// Categories a senior-high (34) student may move to.
    pub senior_high_targets: Option<Vec<String>>,
    /// Categories a secondary-vocational (36) student may move to.
    pub vocational_targets: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRules {
    pub defaults: ProvinceRules,
    #[serde(default)]
    pub province: BTreeMap<String, ProvinceRules>,
}

/// A province rule that forbids the transfer: which, and why in the user's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRefusal {
    /// The rule's name: `transfer_window`, `same_township`, `same_county`, `senior_high_target`.
    pub rule: &'static str,
    pub message: String,
}

fn month_day(text: &str) -> Option<(u32, u32)> {
    let (m, d) = text.split_once('-')?;
    let (m, d) = (m.parse().ok()?, d.parse().ok()?);
    NaiveDate::from_ymd_opt(2024, m, d).map(|_| (m, d))
}

/// The rules bundled into this build (`services/transfers/policy/rules.toml`).
pub const BUNDLED_RULES: &str = include_str!("../../policy/rules.toml");

impl TransferRules {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let rules: Self = toml::from_str(text).map_err(|e| format!("transfer rules: {e}"))?;
        let all = std::iter::once(("defaults".to_owned(), &rules.defaults)).chain(
            rules
                .province
                .iter()
                .map(|(p, r)| (format!("province.{p}"), r)),
        );
        for (name, section) in all {
            for [from, to] in section.closed_windows.iter().flatten() {
                if month_day(from).is_none() || month_day(to).is_none() {
                    return Err(format!(
                        "transfer rules: [{name}]: `closed_windows` {from}..{to} is not MM-DD..MM-DD"
                    ));
                }
            }
        }
        if rules.defaults.closed_windows.is_none()
            || rules.defaults.compulsory_within_township.is_none()
            || rules.defaults.senior_within_county.is_none()
            || rules.defaults.senior_high_targets.is_none()
            || rules.defaults.vocational_targets.is_none()
        {
            return Err("transfer rules: [defaults] must set every rule".into());
        }
        Ok(rules)
    }

    /// The rules bundled into this build.
    pub fn bundled() -> Self {
        Self::from_toml(BUNDLED_RULES).expect("bundled rules are valid")
    }

    fn pick<T: Clone>(&self, province: &str, field: impl Fn(&ProvinceRules) -> Option<T>) -> T {
        self.province
            .get(province)
            .and_then(&field)
            .or_else(|| field(&self.defaults))
            .expect("defaults set every rule")
    }

    /// Checks a transfer `moving` a pupil, started on `today` (China time), against the
    /// national rules of a transfer (it keeps the pupil's stage, into the pupil's grade or one
    /// beside it) and the rules of the receiving province (and, for the windows, of the sending
    /// one too). The rules read the pupil's stage, not the school's category: a grade-8 pupil
    /// of a 完全中学 is a junior-stage pupil.
    pub fn check(&self, today: NaiveDate, moving: &Move<'_>) -> Result<(), RuleRefusal> {
        let (sending, receiving) = (moving.sending, moving.receiving);
        let today_md = (today.month(), today.day());
        for province in [receiving.province(), sending.province()] {
            let windows = self.pick(province, |r| r.closed_windows.clone());
            for [from, to] in &windows {
                let (Some(from_md), Some(to_md)) = (month_day(from), month_day(to)) else {
                    continue;
                };
                let inside = if from_md <= to_md {
                    from_md <= today_md && today_md <= to_md
                } else {
                    today_md >= from_md || today_md <= to_md
                };
                if inside {
                    return Err(RuleRefusal {
                        rule: "transfer_window",
                        message: format!(
                            "no transfers start between {from} and {to} in province {province}"
                        ),
                    });
                }
            }
        }
        let (grade, target) = (moving.grade, moving.target_grade);
        if target + 1 < grade || target > grade + 1 {
            return Err(RuleRefusal {
                rule: "target_grade",
                message: format!(
                    "a pupil of grade {grade} moves into grade {}, {grade} or {}, not {target}",
                    grade.saturating_sub(1).max(1),
                    grade + 1
                ),
            });
        }
        let pupil_stage = stage_of(&sending.stages, grade);
        let target_stage = stage_of(&receiving.stages, target);
        if pupil_stage != target_stage
            && pupil_stage != Stage::Special
            && target_stage != Stage::Special
        {
            return Err(RuleRefusal {
                rule: "stage",
                message: format!(
                    "a transfer keeps the pupil's stage ({} here, {} there); the next stage is \
                     entered by progression (升学), not by a transfer",
                    stage_name(pupil_stage),
                    stage_name(target_stage)
                ),
            });
        }
        let province = receiving.province();
        let same_province = sending.province() == province;
        if same_province
            && self.pick(province, |r| r.compulsory_within_township)
            && is_compulsory(pupil_stage)
            && sending.township.is_some()
            && sending.township == receiving.township
        {
            return Err(RuleRefusal {
                rule: "same_township",
                message: "compulsory-stage transfers between schools of one township are not \
                          allowed"
                    .into(),
            });
        }
        if same_province
            && self.pick(province, |r| r.senior_within_county)
            && pupil_stage == Stage::Senior
            && sending.category() != SchoolCategory::SecondaryVocational
            && receiving.category() != SchoolCategory::SecondaryVocational
            && sending.division == receiving.division
        {
            return Err(RuleRefusal {
                rule: "same_county",
                message: "senior-high transfers between schools of one county are not allowed"
                    .into(),
            });
        }
        let targets = match (pupil_stage, sending.category()) {
            (Stage::Senior, SchoolCategory::SecondaryVocational) => {
                Some(self.pick(province, |r| r.vocational_targets.clone()))
            }
            (Stage::Senior, _) => Some(self.pick(province, |r| r.senior_high_targets.clone())),
            _ => None,
        };
        let receiving_category = receiving.category().digits();
        if let Some(targets) = targets
            && !targets.contains(&receiving_category)
        {
            return Err(RuleRefusal {
                rule: "senior_high_target",
                message: format!(
                    "a senior-stage pupil of a category-{} school may move only to categories {}",
                    sending.category().digits(),
                    targets.join(", ")
                ),
            });
        }
        Ok(())
    }
}

/// What a transfer moves: a pupil of `grade` at `sending` into `target_grade` at `receiving`.
#[derive(Debug, Clone, Copy)]
pub struct Move<'a> {
    pub sending: &'a SchoolFacts,
    pub receiving: &'a SchoolFacts,
    pub grade: u32,
    pub target_grade: u32,
}

/// The stage a grade belongs to at a school (by its 学制); where the school's record does not
/// teach the grade, the national numbering (1–6 primary, 7–9 junior, 10–12 senior).
fn stage_of(stages: &[xueji_codes::StageOffered], grade: u32) -> Stage {
    match xueji_codes::grade_place(stages, grade) {
        Some(place) => place.stage,
        None if grade <= 6 => Stage::Primary,
        None if grade <= 9 => Stage::Junior,
        None => Stage::Senior,
    }
}

fn is_compulsory(stage: Stage) -> bool {
    matches!(stage, Stage::Primary | Stage::Junior | Stage::Special)
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Primary => "primary",
        Stage::Junior => "junior",
        Stage::Senior => "senior",
        Stage::Special => "special education",
    }
}
