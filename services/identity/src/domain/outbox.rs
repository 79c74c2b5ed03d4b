//! What the province owes the national index and what the national node answers: the outbox's
//! messages, their outcomes and the national node's notices. Pure data: the store writes and
//! reads them, the deliverer carries them, the adapter puts them on the wire.

use serde::{Deserialize, Serialize};

/// Who approved a registration whose `G` waits for the national check: the promotion, when
/// the answer arrives, is audited in their name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalContext {
    pub decided_by: String,
    pub jurisdiction: String,
    pub request_id: String,
}

/// A message to the national index, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxBody {
    IndexStudent {
        registry_number: String,
        aliases: Vec<String>,
        id_number: Option<String>,
        duplicate_digest: String,
        /// pending, active or ended.
        status: String,
        /// Written by a migration import: the national index claims its ID number with it.
        #[serde(default)]
        migrated: bool,
    },
    ClaimIdNumber {
        registry_number: String,
        id_number: String,
        approval: ApprovalContext,
    },
    ReleaseStudent {
        registry_number: String,
    },
    /// The province resolved a problem the national index raised between its student and
    /// another province's: the other side's flag goes too.
    ResolveProblem {
        registry_number: String,
        problem: NoticeKind,
        other_registry_number: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub sequence: i64,
    /// The id of the transaction that wrote it (xid8, as text): with `sequence`, its place in
    /// delivery order.
    pub transaction: String,
    pub message_id: uuid::Uuid,
    pub body: OutboxBody,
}

/// The national node's answer to one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    Applied,
    Granted,
    Refused {
        owner_province: String,
        owner_registry_number: String,
    },
    /// Refused for good: kept with the reason, and delivery goes on past it.
    Rejected {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    DuplicateIdNumber,
    DuplicateName,
    /// Not a problem: the province's finished record continues at a school of the other
    /// province (升学 across provinces), which holds the student's national entry from now on.
    ContinuedElsewhere,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DuplicateIdNumber => "duplicate_id_number",
            Self::DuplicateName => "duplicate_name",
            Self::ContinuedElsewhere => "continued_elsewhere",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "duplicate_id_number" => Some(Self::DuplicateIdNumber),
            "duplicate_name" => Some(Self::DuplicateName),
            "continued_elsewhere" => Some(Self::ContinuedElsewhere),
            _ => None,
        }
    }
}

/// A problem the national index found that concerns one of this province's students.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub sequence: i64,
    pub registry_number: String,
    pub kind: NoticeKind,
    pub other_province: String,
    pub other_registry_number: String,
    pub detail: String,
    /// The problem was resolved on the other side: the flag on the pair goes.
    pub cleared: bool,
}
