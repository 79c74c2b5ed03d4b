//! The data the saga runs on: approval deadlines and timeout actions per province, the province
//! rules that refuse a transfer, and the working-day calendar. Bundled national defaults, which
//! a node may replace with files of its own.

use std::path::Path;

use xueji_calendar::WorkingCalendar;
use xueji_workflow::Policy;

use crate::domain::TransferRules;

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

    /// The bundled defaults, with `approvals.toml` and `rules.toml` from `dir` where present.
    pub fn from_dir(dir: &Path) -> Result<Self, String> {
        let mut policy = Self::bundled();
        let read = |name: &str| -> Result<Option<String>, String> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("reading {}: {e}", path.display())),
            }
        };
        if let Some(text) = read("approvals.toml")? {
            policy.approvals = Policy::from_toml(&text).map_err(|e| e.to_string())?;
        }
        if let Some(text) = read("rules.toml")? {
            policy.rules = TransferRules::from_toml(&text)?;
        }
        Ok(policy)
    }
}
