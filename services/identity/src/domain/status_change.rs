//! Status changes (异动): which change a record in a given state may take, as data
//! (`policy/status_changes.toml`, national defaults and each province's own), and what an
//! approved change does to the enrollment. Pure.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;
use xueji_codes::Stage;

use super::{EnrollmentStatus, FieldViolation};

pub const BUNDLED_RULES: &str = include_str!("../../policy/status_changes.toml");
pub const BUNDLED_APPROVALS: &str = include_str!("../../policy/status_approvals.toml");

/// The kinds of status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    Suspension,
    Resumption,
    Dropout,
    Return,
    Withdrawal,
    Expulsion,
    Reinstatement,
    StudyAbroad,
    ReturnFromAbroad,
    Missing,
    Found,
    Death,
    OtherDeparture,
    RepeatYear,
    SkipYear,
    /// 延长休学: a suspension past its term, extended on new evidence.
    SuspensionExtension,
}

impl ChangeKind {
    pub const ALL: [Self; 16] = [
        Self::Suspension,
        Self::Resumption,
        Self::Dropout,
        Self::Return,
        Self::Withdrawal,
        Self::Expulsion,
        Self::Reinstatement,
        Self::StudyAbroad,
        Self::ReturnFromAbroad,
        Self::Missing,
        Self::Found,
        Self::Death,
        Self::OtherDeparture,
        Self::RepeatYear,
        Self::SkipYear,
        Self::SuspensionExtension,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspension => "suspension",
            Self::Resumption => "resumption",
            Self::Dropout => "dropout",
            Self::Return => "return",
            Self::Withdrawal => "withdrawal",
            Self::Expulsion => "expulsion",
            Self::Reinstatement => "reinstatement",
            Self::StudyAbroad => "study_abroad",
            Self::ReturnFromAbroad => "return_from_abroad",
            Self::Missing => "missing",
            Self::Found => "found",
            Self::Death => "death",
            Self::OtherDeparture => "other_departure",
            Self::RepeatYear => "repeat_year",
            Self::SkipYear => "skip_year",
            Self::SuspensionExtension => "suspension_extension",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// What a request on a record's workflow asks: a status change, or a key-field correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    Status(ChangeKind),
    Correction,
    ProblemResolution,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status(kind) => kind.as_str(),
            Self::Correction => "correction",
            Self::ProblemResolution => "problem_resolution",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "correction" => Some(Self::Correction),
            "problem_resolution" => Some(Self::ProblemResolution),
            other => ChangeKind::parse(other).map(Self::Status),
        }
    }

    /// The pending-task kind the request holds while open.
    pub fn task_kind(self) -> &'static str {
        match self {
            Self::Status(_) => "status_change",
            Self::Correction => "correction",
            Self::ProblemResolution => "problem_resolution",
        }
    }
}

/// Why a student left the school (the `left` state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeftReason {
    Withdrawal,
    Expulsion,
    Abroad,
    Missing,
    Other,
}

impl LeftReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Withdrawal => "withdrawal",
            Self::Expulsion => "expulsion",
            Self::Abroad => "abroad",
            Self::Missing => "missing",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Withdrawal,
            Self::Expulsion,
            Self::Abroad,
            Self::Missing,
            Self::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// An enrollment state as the rules name it: a status, with the reason for `left`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordState {
    pub status: EnrollmentStatus,
    pub left_reason: Option<LeftReason>,
}

impl RecordState {
    fn parse(text: &str) -> Option<Self> {
        match text.split_once(':') {
            Some(("left", reason)) => Some(Self {
                status: EnrollmentStatus::Left,
                left_reason: Some(LeftReason::parse(reason)?),
            }),
            Some(_) => None,
            None => {
                let status = EnrollmentStatus::parse(text)?;
                (status != EnrollmentStatus::Left).then_some(Self {
                    status,
                    left_reason: None,
                })
            }
        }
    }

    pub fn describe(&self) -> String {
        match self.left_reason {
            Some(reason) => format!("left ({})", reason.as_str()),
            None => self.status.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    allowed: Option<bool>,
    from: Option<Vec<String>>,
    to: Option<String>,
    stages: Option<Vec<Stage>>,
    grade: Option<i32>,
    evidence: Option<u32>,
    not_graduating: Option<bool>,
    compulsory_grounds: Option<Vec<String>>,
    term_months: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvinceText {
    #[serde(default)]
    change: BTreeMap<String, RuleText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesText {
    change: BTreeMap<String, RuleText>,
    #[serde(default)]
    province: BTreeMap<String, ProvinceText>,
}

/// One change's rule, resolved for a province.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRule {
    pub allowed: bool,
    pub from: Vec<RecordState>,
    pub to: RecordState,
    pub stages: Vec<Stage>,
    pub grade: i32,
    pub evidence: u32,
    pub not_graduating: bool,
    pub compulsory_grounds: Vec<String>,
    /// For a change into `suspended`: the months the suspension lasts (休学期限), counted from
    /// the effective date, or, for an extension, from the end of the term it extends.
    pub term_months: u32,
}

impl ChangeRule {
    /// What an approved change of `kind` under this rule does.
    pub fn transition(&self, kind: ChangeKind) -> Transition {
        Transition {
            to: self.to,
            grade_delta: self.grade,
            term: (self.to.status == EnrollmentStatus::Suspended).then_some(SuspensionTerm {
                months: self.term_months,
                extends: kind == ChangeKind::SuspensionExtension,
            }),
        }
    }
}

/// The rules file, read and checked.
#[derive(Debug, Clone)]
pub struct ChangeRules {
    national: BTreeMap<ChangeKind, ChangeRule>,
    provinces: BTreeMap<String, BTreeMap<ChangeKind, ChangeRule>>,
}

/// Resolves the rule of `kind` written in the table `table` (`change.<kind>`, or
/// `province.NN.change.<kind>`) over the national rule `base`.
fn resolve(table: &str, base: Option<&ChangeRule>, text: &RuleText) -> Result<ChangeRule, String> {
    let bad = |what: String| format!("status-change rules: [{table}]: {what}");
    let states = |list: &Vec<String>| -> Result<Vec<RecordState>, String> {
        list.iter()
            .map(|s| RecordState::parse(s).ok_or_else(|| bad(format!("{s:?} is not a state"))))
            .collect()
    };
    let from = match (&text.from, base) {
        (Some(list), _) => states(list)?,
        (None, Some(base)) => base.from.clone(),
        (None, None) => return Err(bad("`from` is missing".into())),
    };
    let to = match (&text.to, base) {
        (Some(to), _) => {
            RecordState::parse(to).ok_or_else(|| bad(format!("{to:?} is not a state")))?
        }
        (None, Some(base)) => base.to,
        (None, None) => return Err(bad("`to` is missing".into())),
    };
    let rule = ChangeRule {
        allowed: text.allowed.or(base.map(|b| b.allowed)).unwrap_or(true),
        from,
        to,
        stages: text
            .stages
            .clone()
            .or_else(|| base.map(|b| b.stages.clone()))
            .ok_or_else(|| bad("`stages` is missing".into()))?,
        grade: text.grade.or(base.map(|b| b.grade)).unwrap_or(0),
        evidence: text.evidence.or(base.map(|b| b.evidence)).unwrap_or(0),
        not_graduating: text
            .not_graduating
            .or(base.map(|b| b.not_graduating))
            .unwrap_or(false),
        compulsory_grounds: text
            .compulsory_grounds
            .clone()
            .or_else(|| base.map(|b| b.compulsory_grounds.clone()))
            .unwrap_or_default(),
        term_months: text
            .term_months
            .or(base.map(|b| b.term_months))
            .unwrap_or(0),
    };
    if !(-1..=1).contains(&rule.grade) {
        return Err(bad("`grade` must be -1, 0 or 1".into()));
    }
    if rule.evidence > 10 {
        return Err(bad("`evidence` must be at most 10".into()));
    }
    let suspends = rule.to.status == EnrollmentStatus::Suspended;
    match (suspends, rule.term_months) {
        (true, 0) if text.term_months.is_none() => {
            return Err(bad(
                "`term_months` is missing: a suspension lasts a term (1–60 months)".into(),
            ));
        }
        (true, 1..=60) | (false, 0) => {}
        (true, _) => return Err(bad("`term_months` must be 1–60".into())),
        (false, _) => {
            return Err(bad(
                "`term_months` applies only to a change into `suspended`".into(),
            ));
        }
    }
    Ok(rule)
}

impl ChangeRules {
    pub fn bundled() -> Self {
        Self::from_toml(BUNDLED_RULES).expect("the bundled status-change rules are valid")
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: RulesText =
            toml::from_str(text).map_err(|e| format!("status-change rules: {e}"))?;
        let mut national = BTreeMap::new();
        for (name, text) in &file.change {
            let kind = ChangeKind::parse(name).ok_or_else(|| {
                format!("status-change rules: [change.{name}]: not a status change")
            })?;
            national.insert(kind, resolve(&format!("change.{name}"), None, text)?);
        }
        if let Some(missing) = ChangeKind::ALL.iter().find(|k| !national.contains_key(k)) {
            return Err(format!(
                "status-change rules: the national rule of {} is missing",
                missing.as_str()
            ));
        }
        let mut provinces = BTreeMap::new();
        for (province, own) in &file.province {
            if province.len() != 2 || !province.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "status-change rules: [province.{province}]: a province is named by its two digits"
                ));
            }
            let mut rules = national.clone();
            for (name, text) in &own.change {
                let kind = ChangeKind::parse(name).ok_or_else(|| {
                    format!(
                        "status-change rules: [province.{province}.change.{name}]: not a status change"
                    )
                })?;
                let resolved = resolve(
                    &format!("province.{province}.change.{name}"),
                    national.get(&kind),
                    text,
                )?;
                rules.insert(kind, resolved);
            }
            provinces.insert(province.clone(), rules);
        }
        Ok(Self {
            national,
            provinces,
        })
    }

    /// The rule of `kind` in `province`.
    pub fn rule(&self, province: &str, kind: ChangeKind) -> &ChangeRule {
        self.provinces
            .get(province)
            .unwrap_or(&self.national)
            .get(&kind)
            .expect("every kind has a national rule")
    }
}

/// What a request carries, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequest {
    pub kind: ChangeKind,
    pub reason: String,
    pub effective_date: NaiveDate,
    pub evidence: usize,
    pub grounds: String,
}

/// What an approved change does to the enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: RecordState,
    /// Grades to move (repeat −1, skip +1), applied to the grade the record has then.
    pub grade_delta: i32,
    /// The suspension's term, for a change into `suspended`; a record leaving `suspended`
    /// loses its term.
    pub term: Option<SuspensionTerm>,
}

/// How long a suspension lasts (Model rules 第十五条: 休学期限为一年, extended on a new request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuspensionTerm {
    pub months: u32,
    /// True for an extension: the months count from the end of the term it extends, not from
    /// the effective date (an extension asked late does not lengthen the suspension).
    pub extends: bool,
}

impl SuspensionTerm {
    /// The last day of the term, for a change effective on `effective` of a record whose term
    /// ended (or ends) on `previous_end`.
    pub fn ends(&self, effective: NaiveDate, previous_end: Option<NaiveDate>) -> NaiveDate {
        let start = match (self.extends, previous_end) {
            (true, Some(end)) => end,
            _ => effective,
        };
        start
            .checked_add_months(chrono::Months::new(self.months))
            .unwrap_or(NaiveDate::MAX)
    }
}

impl Transition {
    /// The grade a record in `grade` ends in.
    pub fn grade_after(&self, grade: u32) -> u32 {
        (grade as i32 + self.grade_delta).max(1) as u32
    }
}

/// Checks a request against the province's rule for its kind and the record it concerns:
/// every violation, each naming its field (`kind` for a change the record may not take).
pub fn check_change(
    rule: &ChangeRule,
    request: &ChangeRequest,
    state: RecordState,
    grade: u32,
    stages: &[xueji_codes::StageOffered],
) -> Result<Transition, Vec<FieldViolation>> {
    let kind = request.kind.as_str();
    let mut violations = Vec::new();
    let place = xueji_codes::grade_place(stages, grade);
    if !rule.allowed {
        violations.push(FieldViolation::new(
            "kind",
            format!("{kind} is not a status change this province allows"),
        ));
    }
    if !rule.from.contains(&state) {
        let from: Vec<String> = rule.from.iter().map(RecordState::describe).collect();
        violations.push(FieldViolation::new(
            "kind",
            format!(
                "{kind} applies to a record that is {}; this one is {}",
                from.join(" or "),
                state.describe()
            ),
        ));
    }
    match place {
        Some(place) if !rule.stages.contains(&place.stage) => violations.push(FieldViolation::new(
            "kind",
            format!("{kind} is not allowed in the {} stage", place.stage),
        )),
        Some(place) if rule.not_graduating && place.graduating => {
            violations.push(FieldViolation::new(
                "kind",
                format!("{kind} is not allowed in a graduating grade (grade {grade})"),
            ))
        }
        Some(place)
            if place.stage.is_compulsory()
                && !rule.compulsory_grounds.is_empty()
                && !rule.compulsory_grounds.contains(&request.grounds) =>
        {
            violations.push(FieldViolation::new(
                "grounds",
                format!(
                    "in the compulsory stage {kind} is allowed only on the grounds {}",
                    rule.compulsory_grounds.join(", ")
                ),
            ))
        }
        _ => {}
    }
    let new_grade = grade as i32 + rule.grade;
    if rule.grade != 0 {
        let stays = new_grade >= 1
            && place.is_some_and(|place| {
                xueji_codes::grade_place(stages, new_grade as u32)
                    .is_some_and(|next| next.stage == place.stage)
            });
        if !stays {
            violations.push(FieldViolation::new(
                "kind",
                format!(
                    "{kind} would move the student out of the {} stage",
                    place.map_or("school's".to_owned(), |p| p.stage.to_string())
                ),
            ));
        }
    }
    if request.evidence < rule.evidence as usize {
        violations.push(FieldViolation::new(
            "evidence_ids",
            format!(
                "{kind} needs at least {} evidence file(s) (uploaded with UploadEvidence)",
                rule.evidence
            ),
        ));
    }
    if violations.is_empty() {
        Ok(rule.transition(request.kind))
    } else {
        Err(violations)
    }
}

#[cfg(test)]
mod tests;
