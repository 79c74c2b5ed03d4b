//! The rules a workflow runs on, as data: per province, how many working days each party has and
//! what a missed deadline does; the national defaults apply where a province says nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;
use xueji_calendar::WorkingCalendar;

use crate::timeout::TimeoutAction;

/// Days and timeout action of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRule {
    /// Working days the party has, counted from the day after its turn opens.
    pub days: u32,
    /// What happens when the deadline passes with no decision.
    pub timeout: TimeoutAction,
}

/// One province's policy: its step rules and its own days off. Every field is optional; what is
/// missing comes from the national defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvincePolicy {
    pub days: Option<u32>,
    pub timeout: Option<TimeoutAction>,
    /// What an escalation that reaches the top (no level above) does instead.
    pub escalation_end: Option<TimeoutAction>,
    /// Rules for particular parties (by party kind, e.g. `sending_school`).
    #[serde(default)]
    pub party: BTreeMap<String, PartyRule>,
    /// Cross-province transfers add a provincial approval on this province's side.
    #[serde(default)]
    pub provincial_step: bool,
    /// The province's own days off, on top of the national calendar.
    #[serde(default)]
    pub days_off: Vec<NaiveDate>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRule {
    pub days: Option<u32>,
    pub timeout: Option<TimeoutAction>,
}

/// The whole policy file: national defaults and provinces by their two digits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub defaults: Defaults,
    #[serde(default)]
    pub province: BTreeMap<String, ProvincePolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub days: u32,
    pub timeout: TimeoutAction,
    pub escalation_end: TimeoutAction,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("workflow policy: {0}")]
    Parse(String),
    #[error("workflow policy: [province.{province}]: {reason}")]
    Province { province: String, reason: String },
}

impl Policy {
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        for (province, rules) in &policy.province {
            let bad = |reason: &str| PolicyError::Province {
                province: province.clone(),
                reason: reason.to_owned(),
            };
            if province.len() != 2 || !province.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("a province is named by its two digits"));
            }
            if rules.escalation_end == Some(TimeoutAction::Escalate) {
                return Err(bad("`escalation_end` must approve or reject"));
            }
            let days = rules
                .party
                .values()
                .filter_map(|p| p.days)
                .chain(rules.days);
            if days.into_iter().any(|d| d == 0 || d > 60) {
                return Err(bad("`days` must be between 1 and 60"));
            }
        }
        if policy.defaults.escalation_end == TimeoutAction::Escalate {
            return Err(PolicyError::Parse(
                "[defaults]: `escalation_end` must approve or reject".into(),
            ));
        }
        Ok(policy)
    }

    fn of(&self, province: &str) -> Option<&ProvincePolicy> {
        self.province.get(province)
    }

    /// The rule for a party of `kind` in `province`: the party's own, else the province's, else
    /// the national default.
    pub fn step_rule(&self, province: &str, kind: &str) -> StepRule {
        let own = self.of(province);
        let party = own.and_then(|p| p.party.get(kind));
        StepRule {
            days: party
                .and_then(|p| p.days)
                .or(own.and_then(|p| p.days))
                .unwrap_or(self.defaults.days),
            timeout: party
                .and_then(|p| p.timeout)
                .or(own.and_then(|p| p.timeout))
                .unwrap_or(self.defaults.timeout),
        }
    }

    /// What an escalation with no level above does in `province`.
    pub fn escalation_end(&self, province: &str) -> TimeoutAction {
        self.of(province)
            .and_then(|p| p.escalation_end)
            .unwrap_or(self.defaults.escalation_end)
    }

    /// Whether `province` adds its own approval to cross-province transfers.
    pub fn provincial_step(&self, province: &str) -> bool {
        self.of(province).is_some_and(|p| p.provincial_step)
    }

    /// The national calendar with `province`'s own days off.
    pub fn calendar_of(&self, national: &WorkingCalendar, province: &str) -> WorkingCalendar {
        let days_off = self
            .of(province)
            .map(|p| p.days_off.clone())
            .unwrap_or_default();
        national.clone().with_days_off(days_off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        [defaults]
        days = 10
        timeout = "reject"
        escalation_end = "reject"

        [province.34]
        days = 20
        timeout = "approve"

        [province.35]
        timeout = "escalate"
        provincial_step = true
        days_off = ["2025-11-24"]
        party.sending_school = { days = 5 }
    "#;

    #[test]
    fn a_province_overrides_the_defaults_and_a_party_its_province() {
        let policy = Policy::from_toml(SAMPLE).unwrap();
        let anhui = policy.step_rule("34", "receiving_authority");
        assert_eq!((anhui.days, anhui.timeout), (20, TimeoutAction::Approve));
        let fujian = policy.step_rule("35", "sending_school");
        assert_eq!((fujian.days, fujian.timeout), (5, TimeoutAction::Escalate));
        let elsewhere = policy.step_rule("11", "sending_school");
        assert_eq!(
            (elsewhere.days, elsewhere.timeout),
            (10, TimeoutAction::Reject)
        );
        assert!(policy.provincial_step("35") && !policy.provincial_step("34"));
        let calendar = policy.calendar_of(WorkingCalendar::bundled(), "35");
        assert!(!calendar.is_working_day("2025-11-24".parse().unwrap()));
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let error = Policy::from_toml(&SAMPLE.replace("days = 20", "days = 0")).unwrap_err();
        assert!(error.to_string().contains("[province.34]"), "{error}");
        let error = Policy::from_toml(&SAMPLE.replace("\"approve\"", "\"maybe\"")).unwrap_err();
        assert!(error.to_string().contains("maybe"), "{error}");
    }
}
