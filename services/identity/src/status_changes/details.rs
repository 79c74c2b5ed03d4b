//! Updates of a record's non-key fields (非关键字段): the school and its authorities keep
//! them without an approval (Anhui 第十七条). Checked against the declaration of the province's
//! own fields and against the record as it stands when locked; audited with the old values.

use xueji_auth::Caller;

use super::{
    ChangeDesk,
    common::{check_common, request_hash},
};
use crate::{
    IdentityError,
    domain::{EnrollmentStatus, correction::FieldChange, details::check_details},
    store::{Actor, DetailOutcome, StudentRecord},
};

/// An update as decoded from the wire (not yet checked).
#[derive(Debug, Clone)]
pub(crate) struct DetailsInput {
    pub idempotency_key: String,
    /// (field, new value) pairs.
    pub values: Vec<(String, String)>,
    pub reason: String,
}

/// What an update did, for the answer.
#[derive(Debug, Clone)]
pub(crate) struct DetailsUpdated {
    pub changes: Vec<FieldChange>,
    pub replayed: bool,
}

impl ChangeDesk {
    /// Updates `record`'s non-key fields. Refuses at once, writing nothing, a malformed
    /// request, a key field, or a record that left the registry (rejected, deleted).
    pub(crate) async fn update_details(
        &self,
        caller: &Caller,
        request_id: &str,
        record: &StudentRecord,
        input: DetailsInput,
    ) -> Result<DetailsUpdated, IdentityError> {
        let (mut violations, key, reason, _) = check_common(
            caller,
            "updates of a record",
            (&input.idempotency_key, &input.reason, &[]),
            false,
        )?;
        let declared = self.fields.of(&self.province);
        // The values are checked once here, so that a bad request names every bad field
        // before anything is locked; the store checks them again against the locked record.
        violations.absorb(check_details(
            &record_details(record),
            &input.values,
            declared,
        ));
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        if matches!(
            record.status,
            EnrollmentStatus::Rejected | EnrollmentStatus::Deleted
        ) {
            return Err(IdentityError::FailedPrecondition(format!(
                "a {} record is no longer kept: nothing of it changes",
                record.status.as_str()
            )));
        }
        let described: Vec<String> = input
            .values
            .iter()
            .map(|(field, value)| format!("{}={}", field.trim(), value.trim()))
            .collect();
        let mut parts: Vec<&str> = vec![&reason];
        parts.extend(described.iter().map(String::as_str));
        let hash = request_hash("details", &parts, &[], &record.registry_number);
        let key = caller.scoped_key(&key);
        let outcome = self
            .store
            .update_details(
                record.id,
                &record.registry_number,
                (&key, &hash, &reason),
                Actor { caller, request_id },
                |current| {
                    check_details(current, &input.values, declared)
                        .map_err(IdentityError::InvalidArgument)
                },
            )
            .await?;
        match outcome {
            DetailOutcome::Updated(changes) => Ok(DetailsUpdated {
                changes,
                replayed: false,
            }),
            DetailOutcome::Replayed(changes) => Ok(DetailsUpdated {
                changes,
                replayed: true,
            }),
            DetailOutcome::KeyReused => Err(IdentityError::invalid(
                "idempotency_key",
                "was already used for a different update; use a new key",
            )),
        }
    }
}

/// The record's non-key fields as a read shows them.
fn record_details(record: &StudentRecord) -> crate::domain::details::Details {
    crate::domain::details::Details {
        guardian: record.guardian.clone(),
        ethnicity: record.ethnicity.clone(),
        entry_route: record.entry_route,
        migrant_child: record.flags.migrant_child,
        left_behind_child: record.flags.left_behind_child,
        provincial: record.provincial_fields.clone(),
    }
}
