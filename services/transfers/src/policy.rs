//! The data the saga runs on: approval deadlines and timeout actions per province, the province
//! rules that refuse a transfer, and the working-day calendar. Bundled national defaults, which
//! a node's `policy_dir` may replace with files of its own (`transfers/approvals.toml`,
//! `transfers/rules.toml`), reloaded without a restart.

use xueji_calendar::WorkingCalendar;
use xueji_policy::{Live, PolicyDir, PolicyError, PolicyHook, Prepared};
use xueji_workflow::Policy;

use crate::domain::{BUNDLED_RULES, TransferRules};

/// Everything a decision is judged by.
#[derive(Debug, Clone)]
pub struct SagaPolicy {
    pub approvals: Policy,
    pub rules: TransferRules,
    pub calendar: WorkingCalendar,
}

pub const BUNDLED_APPROVALS: &str = include_str!("../policy/approvals.toml");

impl SagaPolicy {
    /// The national defaults bundled into this build, on the bundled calendar.
    pub fn bundled() -> Self {
        Self {
            approvals: Policy::from_toml(BUNDLED_APPROVALS).expect("bundled approvals are valid"),
            rules: TransferRules::bundled(),
            calendar: WorkingCalendar::bundled().clone(),
        }
    }

    /// The deployment's `transfers/approvals.toml` and `transfers/rules.toml` of `dir` over the
    /// bundled ones, each checked; the calendar is the bundled one (the ministry's years come
    /// from the national node).
    pub fn load(dir: &PolicyDir) -> Result<Self, PolicyError> {
        let (policy, _) = Self::read(dir)?;
        Ok(policy)
    }

    fn read(dir: &PolicyDir) -> Result<(Self, Vec<String>), PolicyError> {
        let approvals_text = dir.read(SERVICE, "approvals.toml", BUNDLED_APPROVALS)?;
        let approvals = approvals_text.parse(|text| {
            Policy::from_toml(text).map_err(|e| format!("transfer approvals: {e}"))
        })?;
        let rules_text = dir.read(SERVICE, "rules.toml", BUNDLED_RULES)?;
        let rules = rules_text.parse(TransferRules::from_toml)?;
        Ok((
            Self {
                approvals,
                rules,
                calendar: WorkingCalendar::bundled().clone(),
            },
            vec![approvals_text.file, rules_text.file],
        ))
    }
}

const SERVICE: &str = "transfers";

/// The transfer policy in force and where a reload reads it.
#[derive(Debug, Clone)]
pub struct TransferPolicy {
    pub live: Live<SagaPolicy>,
    dir: PolicyDir,
}

impl TransferPolicy {
    pub fn load(dir: PolicyDir) -> Result<Self, PolicyError> {
        Ok(Self {
            live: Live::new(SagaPolicy::load(&dir)?),
            dir,
        })
    }
}

impl PolicyHook for TransferPolicy {
    fn prepare(&self) -> Result<Prepared, PolicyError> {
        let (policy, files) = SagaPolicy::read(&self.dir)?;
        let live = self.live.clone();
        Ok(Prepared {
            files,
            apply: Box::new(move || live.replace(policy)),
        })
    }
}
