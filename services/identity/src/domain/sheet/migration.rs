//! What a record migrated from a previous system must agree on, beyond registration's rules.

use xueji_codes::{RegistryKind, RegistryNumber};

use super::super::{EnrollmentStatus, FieldViolation, Registration, status_change::LeftReason};
use super::SheetRecord;

/// A migrated record that passed every rule: what the bulk writer stores.
#[derive(Debug, Clone)]
pub struct MigratedRecord {
    pub registration: Registration,
    pub registry_number: RegistryNumber,
    pub aliases: Vec<RegistryNumber>,
    pub status: EnrollmentStatus,
    pub left_reason: Option<LeftReason>,
}

/// Checks a migration row: the registration rules (`registration`, already checked with the
/// school and provincial fields), then what a record from the previous system must agree on
/// (its number with its state and ID number, its aliases, a reason for a departure).
pub fn check_migration(
    record: &SheetRecord,
    registration: Registration,
) -> Result<MigratedRecord, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let number = match record.registry_number.parse::<RegistryNumber>() {
        Ok(number) => Some(number),
        Err(e) => {
            violations.push(FieldViolation::new(
                "registry_number",
                format!("registry number {e}"),
            ));
            None
        }
    };
    let status = record.status;
    if status.is_none() {
        violations.push(FieldViolation::new(
            "status",
            "a migrated record needs its state (学籍状态)",
        ));
    }
    if let Some(number) = &number {
        match number.kind() {
            RegistryKind::G => {
                let expected = registration.resident_id.as_ref().map(|id| id.as_str());
                if expected != Some(&number.as_str()[1..]) {
                    violations.push(FieldViolation::new(
                        "registry_number",
                        "a G number is G + the student's resident ID number (证件号码)",
                    ));
                }
            }
            RegistryKind::L | RegistryKind::J => {}
        }
        if status == Some(EnrollmentStatus::Pending) && number.kind() != RegistryKind::L {
            violations.push(FieldViolation::new(
                "status",
                "a record awaiting approval (待审核) carries a temporary L number",
            ));
        }
    }
    let mut aliases = Vec::new();
    for alias in &record.aliases {
        match alias.parse::<RegistryNumber>() {
            Ok(alias) if Some(&alias) == number.as_ref() || aliases.contains(&alias) => {}
            Ok(alias) => aliases.push(alias),
            Err(e) => violations.push(FieldViolation::new(
                "aliases",
                format!("{alias:?}: registry number {e}"),
            )),
        }
    }
    match (status, record.left_reason) {
        (Some(EnrollmentStatus::Left), None) => violations.push(FieldViolation::new(
            "left_reason",
            "a record that left (离校) needs its reason",
        )),
        (Some(status), Some(_)) if status != EnrollmentStatus::Left => violations.push(
            FieldViolation::new("left_reason", "only a record that left (离校) has a reason"),
        ),
        _ => {}
    }
    match (number, status) {
        (Some(registry_number), Some(status)) if violations.is_empty() => Ok(MigratedRecord {
            registration,
            registry_number,
            aliases,
            status,
            left_reason: record.left_reason,
        }),
        _ => Err(violations),
    }
}
