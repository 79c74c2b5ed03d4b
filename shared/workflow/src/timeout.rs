//! What a missed deadline does: a policy names it, a task carries it out.

use serde::{Deserialize, Serialize};

/// What a missed deadline does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutAction {
    /// The system approves on the party's behalf (e.g. Anhui: "超出时限，系统默认审批同意").
    Approve,
    /// The system rejects, and the task ends.
    Reject,
    /// The turn passes to the level above (county → city → province), with a fresh deadline.
    Escalate,
}

impl TimeoutAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Escalate => "escalate",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "approve" => Some(Self::Approve),
            "reject" => Some(Self::Reject),
            "escalate" => Some(Self::Escalate),
            _ => None,
        }
    }
}
