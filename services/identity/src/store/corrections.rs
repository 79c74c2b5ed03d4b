//! Key-field corrections: the duplicate re-check when one is asked (on the transaction that
//! opens it), and the approved correction applied to the student: new values, a new `G`
//! number with the old one kept as an alias, and what the national index must learn (the
//! claim on a new ID number first, then the record as it now stands).

use std::collections::BTreeMap;

use sqlx::PgConnection;
use uuid::Uuid;

use super::{ChangeRecord, outbox, unknown};
use crate::{
    IdentityError,
    domain::outbox::{ApprovalContext, OutboxBody},
    domain::{
        DocumentType, EnrollmentStatus, correction::KeyField, gender_str, name_key, parse_gender,
        provincial_fields::CORRECTED_PREFIX,
    },
};

/// What a correction must not collide with, checked before it opens.
#[derive(Debug, Clone, Default)]
pub struct CorrectionCheck<'a> {
    /// A new resident ID number.
    pub id_number: Option<&'a str>,
    /// A new duplicate-without-ID key.
    pub name_key: Option<String>,
    /// A new photo (an evidence file of the student, which must be an image).
    pub photo: Option<Uuid>,
}

/// Why a correction cannot open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collision {
    /// Another live record holds the value: the field, and that record's number.
    Duplicate { field: &'static str, holder: String },
    /// The photo names a file that is not an image.
    NotAnImage(Uuid),
}

/// The duplicate checks of a correction, local: another live record with the new ID number
/// (or its `G` number), or with the new name, gender and birth date.
pub(super) async fn collisions(
    conn: &mut PgConnection,
    student_id: i64,
    check: &CorrectionCheck<'_>,
) -> Result<Option<Collision>, IdentityError> {
    if let Some(id_number) = check.id_number {
        let holder = sqlx::query_scalar!(
            r#"SELECT s.registry_number AS "registry_number!" FROM identity.students s
               WHERE s.id <> $1 AND s.id_number_claim = $2
               UNION ALL
               SELECT s.registry_number FROM identity.registry_numbers r
               JOIN identity.students s ON s.id = r.student_id
               WHERE r.student_id <> $1 AND r.number = 'G' || $2
               LIMIT 1"#,
            student_id,
            id_number
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(holder) = holder {
            return Ok(Some(Collision::Duplicate {
                field: "id_number",
                holder,
            }));
        }
    }
    if let Some(key) = &check.name_key {
        let holder = sqlx::query_scalar!(
            "SELECT s.registry_number FROM identity.students s
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE s.name_key = $1 AND s.id <> $2 AND e.status <> 'rejected'
             ORDER BY s.registry_number LIMIT 1",
            key,
            student_id
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(holder) = holder {
            return Ok(Some(Collision::Duplicate {
                field: "name",
                holder,
            }));
        }
    }
    if let Some(photo) = check.photo {
        let media_type = sqlx::query_scalar!(
            "SELECT media_type FROM identity.evidence WHERE id = $1 AND student_id = $2",
            photo,
            student_id
        )
        .fetch_optional(&mut *conn)
        .await?;
        if !media_type.is_some_and(|t| t.starts_with("image/")) {
            return Ok(Some(Collision::NotAnImage(photo)));
        }
    }
    Ok(None)
}

/// Applies an approved correction to its student, in the approval's transaction; answers what
/// changed. A value that changed since the correction was asked, or a new ID number another
/// record took meanwhile, refuses the approval (nothing is written).
pub(super) async fn apply(
    conn: &mut PgConnection,
    record: &ChangeRecord,
    approval: &ApprovalContext,
) -> Result<serde_json::Value, IdentityError> {
    let student = sqlx::query!(
        "SELECT s.registry_number, s.name, s.gender, s.birth_date, s.document_type,
                s.document_number, s.id_number_claim, s.photo, s.provincial_fields, e.status
         FROM identity.students s
         JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
         WHERE s.id = $1 FOR UPDATE OF s",
        record.student_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut name = student.name.clone();
    let mut gender =
        parse_gender(&student.gender).ok_or_else(|| unknown("gender", &student.gender))?;
    let mut birth_date = student.birth_date;
    let mut document_type = DocumentType::parse(&student.document_type)
        .ok_or_else(|| unknown("document type", &student.document_type))?;
    let mut document_number = student.document_number.clone();
    let mut photo = student.photo;
    let mut new_id = None;
    let mut provincial: BTreeMap<String, String> =
        serde_json::from_value(student.provincial_fields)
            .map_err(|e| unknown("provincial_fields", e.to_string()))?;
    let mut provincial_changed = false;
    for change in &record.corrections {
        if let Some(name) = change.field.strip_prefix(CORRECTED_PREFIX) {
            let now = provincial.get(name).cloned().unwrap_or_default();
            if now != change.from {
                return Err(IdentityError::FailedPrecondition(format!(
                    "the record's {} changed since the correction was asked (it is now \
                     `{now}`); reject this correction and ask again",
                    change.field
                )));
            }
            provincial.insert(name.to_owned(), change.to.clone());
            provincial_changed = true;
            continue;
        }
        let field = KeyField::parse(&change.field)
            .ok_or_else(|| unknown("corrected field", &change.field))?;
        let now = match field {
            KeyField::Name => name.clone(),
            KeyField::Gender => gender_str(gender).to_owned(),
            KeyField::BirthDate => birth_date.to_string(),
            KeyField::IdNumber if document_type == DocumentType::ResidentIdCard => {
                document_number.clone().unwrap_or_default()
            }
            KeyField::IdNumber => String::new(),
            KeyField::Photo => photo.map(|p| p.to_string()).unwrap_or_default(),
        };
        if now != change.from {
            return Err(IdentityError::FailedPrecondition(format!(
                "the record's {} changed since the correction was asked (it is now `{now}`); \
                 reject this correction and ask again",
                change.field
            )));
        }
        let bad = || unknown("corrected value", &change.to);
        match field {
            KeyField::Name => name = change.to.clone(),
            KeyField::Gender => gender = parse_gender(&change.to).ok_or_else(bad)?,
            KeyField::BirthDate => birth_date = change.to.parse().map_err(|_| bad())?,
            KeyField::IdNumber => {
                document_type = DocumentType::ResidentIdCard;
                document_number = Some(change.to.clone());
                new_id = Some(change.to.clone());
            }
            KeyField::Photo => photo = Some(Uuid::parse_str(&change.to).map_err(|_| bad())?),
        }
    }
    let key = name_key(&name, gender, birth_date);
    let claim = match (&student.id_number_claim, &new_id) {
        (Some(_), Some(id)) => Some(id.clone()),
        (claim, _) => claim.clone(),
    };
    let updated = sqlx::query!(
        "UPDATE identity.students
         SET name = $2, gender = $3, birth_date = $4, name_key = $5, document_type = $6,
             document_number = $7, id_number_claim = $8, photo = $9
         WHERE id = $1",
        record.student_id,
        name,
        gender_str(gender),
        birth_date,
        key,
        document_type.as_str(),
        document_number,
        claim,
        photo
    )
    .execute(&mut *conn)
    .await;
    if let Err(sqlx::Error::Database(error)) = &updated
        && error.is_unique_violation()
    {
        return Err(IdentityError::AlreadyExists {
            field: "id_number",
            message: "another record took this ID number after the correction was asked; \
                      reject this correction"
                .into(),
        });
    }
    updated?;
    if provincial_changed {
        sqlx::query!(
            "UPDATE identity.students SET provincial_fields = $2 WHERE id = $1",
            record.student_id,
            serde_json::to_value(&provincial).expect("a map of strings")
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query!(
        "INSERT INTO identity.duplicate_groups (key, registrations) VALUES ($1, 1)
         ON CONFLICT (key) DO UPDATE SET registrations = identity.duplicate_groups.registrations + 1",
        key
    )
    .execute(&mut *conn)
    .await?;
    // A new ID number gives an approved `G` or `J` record its `G` number; the old one stays an
    // alias. A temporary `L` keeps its number: its registration's approval issues the `G`.
    let old_number = student.registry_number.clone();
    let mut number = old_number.clone();
    if let Some(id) = &new_id
        && (old_number.starts_with('G') || old_number.starts_with('J'))
    {
        number = format!("G{id}");
        let taken = sqlx::query_scalar!(
            "INSERT INTO identity.registry_numbers (number, student_id) VALUES ($1, $2)
             ON CONFLICT (number) DO NOTHING RETURNING student_id",
            number,
            record.student_id
        )
        .fetch_optional(&mut *conn)
        .await?;
        if taken.is_none() {
            return Err(IdentityError::AlreadyExists {
                field: "id_number",
                message: format!(
                    "registry number {number} is already issued; reject this correction"
                ),
            });
        }
        sqlx::query!(
            "UPDATE identity.students SET registry_number = $2 WHERE id = $1",
            record.student_id,
            number
        )
        .execute(&mut *conn)
        .await?;
        // The national index moves the entry to the new number through the claim, before the
        // entry itself says `G` (it admits a `G` only on a granted claim).
        outbox::enqueue(
            conn,
            &OutboxBody::ClaimIdNumber {
                registry_number: old_number.clone(),
                id_number: id.clone(),
                approval: approval.clone(),
            },
        )
        .await?;
    }
    let status = EnrollmentStatus::parse(&student.status)
        .ok_or_else(|| unknown("enrollment status", &student.status))?;
    let national_status = match status {
        EnrollmentStatus::Pending | EnrollmentStatus::AwaitingNationalCheck => "pending",
        EnrollmentStatus::Rejected => "ended",
        _ => "active",
    };
    outbox::enqueue_index(conn, record.student_id, national_status).await?;
    // What the correction corrected is no longer a problem: an invalid or contested ID number
    // replaced, a name duplicate's name, gender or birth date changed (here and, for flags the
    // national index raised, in the other province).
    let mut resolved = Vec::new();
    if new_id.is_some() {
        sqlx::query!(
            "DELETE FROM identity.id_number_problems WHERE student_id = $1",
            record.student_id
        )
        .execute(&mut *conn)
        .await?;
        resolved.push("duplicate_id_number");
    }
    if record.corrections.iter().any(|c| {
        [KeyField::Name, KeyField::Gender, KeyField::BirthDate]
            .iter()
            .any(|f| f.as_str() == c.field)
    }) {
        resolved.push("duplicate_name");
    }
    super::resolutions::clear_national_flags(conn, record.student_id, &resolved, true).await?;
    Ok(serde_json::json!({
        "corrections": record.corrections,
        "registry_number": { "from": old_number, "to": number },
    }))
}
