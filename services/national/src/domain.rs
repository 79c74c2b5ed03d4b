//! What provinces tell the national index, the checks it applies before anything is written,
//! and what it answers. Pure: no transport, no storage.

use serde::{Deserialize, Serialize};
use xueji_codes::{RegistryKind, RegistryNumber, ResidentId};
use xueji_validation::{FieldViolation, Violations};

pub use crate::index_key::IdDigest;

/// A student's state as the index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexStatus {
    Pending,
    Active,
    Ended,
    /// Finished its stage: not live for the duplicate check; another province may continue it.
    Finished,
}

impl IndexStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Ended => "ended",
            Self::Finished => "finished",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "ended" => Some(Self::Ended),
            "finished" => Some(Self::Finished),
            _ => None,
        }
    }
}

/// One message of a province's outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub message_id: uuid::Uuid,
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Index(IndexStudent),
    Claim(Claim),
    Release {
        registry_number: RegistryNumber,
    },
    /// The province resolved a problem between its student and another province's.
    Resolve {
        registry_number: RegistryNumber,
        /// `duplicate_id_number` or `duplicate_name`.
        kind: &'static str,
        other_registry_number: RegistryNumber,
    },
    /// A message whose body does not decode: refused for good (a bug at the sender), with the
    /// reason, so that the messages after it still flow.
    Malformed {
        reason: String,
    },
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Index(_) => "index_student",
            Self::Claim(_) => "claim_id_number",
            Self::Release { .. } => "release_student",
            Self::Resolve { .. } => "resolve_problem",
            Self::Malformed { .. } => "malformed",
        }
    }

    /// The registry number the message is about, if it decoded.
    pub fn number(&self) -> Option<&str> {
        match self {
            Self::Index(index) => Some(index.registry_number.as_str()),
            Self::Claim(claim) => Some(claim.registry_number.as_str()),
            Self::Release { registry_number }
            | Self::Resolve {
                registry_number, ..
            } => Some(registry_number.as_str()),
            Self::Malformed { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexStudent {
    pub registry_number: RegistryNumber,
    pub aliases: Vec<RegistryNumber>,
    /// The keyed digest of the ID number the province reported (claimed or not).
    pub id_digest: Option<IdDigest>,
    /// The keyed form of the province's name digest.
    pub duplicate_digest: String,
    /// For a `G` number, the keyed digest of the ID number it is made of: the claim it needs.
    pub number_id_digest: Option<IdDigest>,
    pub status: IndexStatus,
    /// From the province's previous system: its numbers were issued there (a `G` without a
    /// claim granted here), and its ID number is claimed with the entry.
    pub migrated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub registry_number: RegistryNumber,
    /// The ID number claimed: only to form the `G` number the claim grants, never stored.
    pub id_number: ResidentId,
    pub id_digest: IdDigest,
}

/// What applying a message answered; stored with the message id, so that a redelivery answers
/// exactly the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    Granted,
    Refused {
        owner_province: String,
        owner_registry_number: String,
    },
    /// Refused for good: the message can never be applied (a number of another province, a
    /// `G` without a granted claim, a body that does not decode). The sender records it and
    /// moves on; the stored outcome answers a redelivery alike.
    Rejected {
        reason: String,
    },
}

pub fn parse_registry_number(
    field: &'static str,
    text: &str,
) -> Result<RegistryNumber, FieldViolation> {
    text.trim()
        .parse()
        .map_err(|e| FieldViolation::new(field, format!("registry number {e}")))
}

pub fn parse_id_number(field: &'static str, text: &str) -> Result<ResidentId, FieldViolation> {
    text.trim()
        .parse()
        .map_err(|e| FieldViolation::new(field, format!("resident ID number {e}")))
}

/// A digest is 64 lowercase hex characters (SHA-256).
pub fn parse_digest(field: &'static str, text: &str) -> Result<String, FieldViolation> {
    if text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(text.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "must be the 64 lowercase hex characters of a SHA-256 digest",
        ))
    }
}

pub fn parse_message_id(field: &'static str, text: &str) -> Result<uuid::Uuid, FieldViolation> {
    text.parse()
        .map_err(|_| FieldViolation::new(field, "must be a UUID"))
}

/// Whether `province` may introduce `number` to the index: `L` and `J` numbers carry the
/// division of the school that issued them; a `G` number is reached only through a claim on
/// an indexed student (its digits name a birthplace, not a province).
pub fn may_introduce(number: &RegistryNumber, province: &str) -> bool {
    match number.kind() {
        RegistryKind::L | RegistryKind::J => number.as_str()[1..3] == *province,
        RegistryKind::G => false,
    }
}

/// What a number looked up by an operator is.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    RegistryNumber(RegistryNumber),
    IdNumber(ResidentId),
}

pub fn parse_lookup(field: &'static str, text: &str) -> Result<Lookup, Vec<FieldViolation>> {
    let text = text.trim();
    let mut violations = Violations::default();
    if text.is_empty() {
        violations.add(field, "give a registry number or a resident ID number");
        return Err(violations.into_vec());
    }
    if text.chars().count() == 18 {
        return parse_id_number(field, text)
            .map(Lookup::IdNumber)
            .map_err(|e| vec![e]);
    }
    parse_registry_number(field, text)
        .map(Lookup::RegistryNumber)
        .map_err(|e| vec![e])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provinces_introduce_only_their_own_numbers() {
        let fujian: RegistryNumber = "L350102201503011234".parse().unwrap();
        assert!(may_introduce(&fujian, "35"));
        assert!(!may_introduce(&fujian, "34"));
        let g: RegistryNumber = "G11010519491231002X".parse().unwrap();
        assert!(!may_introduce(&g, "11"), "G numbers arrive only by claim");
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert!(parse_digest("d", &"a".repeat(64)).is_ok());
        assert!(parse_digest("d", &"A".repeat(64)).is_err());
        assert!(parse_digest("d", "abc").is_err());
    }

    #[test]
    fn lookups_tell_id_numbers_from_registry_numbers() {
        assert!(matches!(
            parse_lookup("number", "11010519491231002x"),
            Ok(Lookup::IdNumber(_))
        ));
        assert!(matches!(
            parse_lookup("number", "L350102201503011234"),
            Ok(Lookup::RegistryNumber(_))
        ));
        assert!(parse_lookup("number", "").is_err());
        assert!(parse_lookup("number", "X1").is_err());
    }

    #[test]
    fn outcomes_survive_storage() {
        let refused = Outcome::Refused {
            owner_province: "34".into(),
            owner_registry_number: "G11010519491231002X".into(),
        };
        let text = serde_json::to_value(&refused).unwrap();
        assert_eq!(serde_json::from_value::<Outcome>(text).unwrap(), refused);
    }
}
