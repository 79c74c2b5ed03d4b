//! Key-field corrections on the status-change workflow: checked whole, duplicate-checked
//! (locally on the opening transaction, nationally through the link when the ID number
//! changes), then decided like any status change; the last approval applies them.

use xueji_auth::Caller;

use super::{
    ChangeDesk,
    common::{Opening, check_common, request_hash},
};
use crate::{
    IdentityError,
    domain::{
        EnrollmentStatus, School,
        correction::{Corrected, KeyValues, check_correction},
        name_key,
        provincial_fields::{check_provincial_correction, split_correction},
        status_change::RequestKind,
    },
    store::{ChangeRecord, CorrectionCheck, StudentRecord},
};

/// A correction as decoded from the wire (not yet checked).
#[derive(Debug, Clone)]
pub(crate) struct CorrectionInput {
    pub idempotency_key: String,
    /// (field, new value) pairs.
    pub values: Vec<(String, String)>,
    pub reason: String,
    pub evidence: Vec<String>,
}

impl ChangeDesk {
    /// Asks for a correction of `record`'s key fields. Refuses at once, writing nothing, a
    /// malformed request, a record that is not approved, or a value another live record holds
    /// (here or, for an ID number, in another province).
    pub(crate) async fn request_correction(
        &self,
        caller: &Caller,
        request_id: &str,
        record: &StudentRecord,
        school: &School,
        input: CorrectionInput,
    ) -> Result<ChangeRecord, IdentityError> {
        let (mut violations, key, reason, evidence) = check_common(
            caller,
            "corrections",
            (&input.idempotency_key, &input.reason, &input.evidence),
            true,
        )?;
        let today = xueji_calendar::china_today(self.now());
        let current = KeyValues {
            name: record.name.clone(),
            gender: record.gender,
            birth_date: record.birth_date,
            document_type: record.document_type,
            document_number: record.document_number.clone(),
            photo: self.store.photo_of(record.id).await?,
        };
        // The province's key fields are checked against its declaration, the national ones
        // by the national rules; a request may correct both at once.
        let (provincial, national) =
            split_correction(self.fields.of(&self.province), &input.values);
        let corrected = if national.is_empty() && !provincial.is_empty() {
            Some(Corrected {
                changes: Vec::new(),
                after: current.clone(),
            })
        } else {
            violations.absorb(check_correction(&current, &national, today))
        };
        let provincial = violations.absorb(check_provincial_correction(
            &provincial,
            &record.provincial_fields,
        ));
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let (Some(mut corrected), Some(provincial)) = (corrected, provincial) else {
            return Err(IdentityError::Internal(
                "a checked correction lost its fields".into(),
            ));
        };
        corrected.changes.extend(provincial);
        // Key fields are the approved record's: before approval the registration itself is
        // rejected and registered again.
        if !matches!(
            record.status,
            EnrollmentStatus::Active
                | EnrollmentStatus::Suspended
                | EnrollmentStatus::Left
                | EnrollmentStatus::Graduated
                | EnrollmentStatus::Completed
                | EnrollmentStatus::Incomplete
                | EnrollmentStatus::DroppedOut
        ) {
            return Err(IdentityError::FailedPrecondition(format!(
                "a {} record takes no correction: key fields are corrected once the \
                 registration is approved (until then its authority rejects it and the school \
                 registers it again)",
                record.status.as_str()
            )));
        }
        self.refuse_when_frozen(record, school, today)?;
        let new_id = corrected.new_id_number();
        if let (Some(id), Some(national)) = (new_id, &self.national)
            && let Some((province, holder)) = national.id_number_holder(id).await?
        {
            return Err(IdentityError::AlreadyExists {
                field: "id_number",
                message: format!(
                    "the national duplicate check refuses this correction: record {holder} of \
                     province {province} already has this resident ID number"
                ),
            });
        }
        let check = CorrectionCheck {
            id_number: new_id,
            name_key: corrected.changes_name_key().then(|| {
                name_key(
                    &corrected.after.name,
                    corrected.after.gender,
                    corrected.after.birth_date,
                )
            }),
            photo: corrected.new_photo(),
        };
        let described: Vec<String> = corrected
            .changes
            .iter()
            .map(|c| format!("{}={}", c.field, c.to))
            .collect();
        let mut parts: Vec<&str> = vec![&reason];
        parts.extend(described.iter().map(String::as_str));
        let hash = request_hash("correction", &parts, &evidence, &record.registry_number);
        self.open(
            caller,
            request_id,
            record,
            school,
            Opening {
                kind: RequestKind::Correction,
                key: &key,
                hash: &hash,
                reason: &reason,
                grounds: "",
                effective_date: today,
                evidence: &evidence,
                corrections: Some((&corrected.changes, check)),
                resolution: None,
            },
        )
        .await
    }
}
