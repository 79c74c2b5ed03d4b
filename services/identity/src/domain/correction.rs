//! Key-field corrections (修改留痕): which fields a correction may touch, each new value checked
//! as registration checks it, and the record checked whole once edited (a resident ID number
//! must still agree with the birth date and gender). Pure.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use xueji_codes::{Gender, ResidentId};

use super::{DocumentType, FieldViolation, gender_str, normalize_name, parse_gender};

/// The key fields a correction may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyField {
    Name,
    Gender,
    BirthDate,
    IdNumber,
    Photo,
}

impl KeyField {
    pub const ALL: [Self; 5] = [
        Self::Name,
        Self::Gender,
        Self::BirthDate,
        Self::IdNumber,
        Self::Photo,
    ];

    /// The field's name, on the wire and in violations.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Gender => "gender",
            Self::BirthDate => "birth_date",
            Self::IdNumber => "id_number",
            Self::Photo => "photo",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text.trim())
    }
}

/// One corrected field: its value when asked, and the value asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

/// A record's key fields as they stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValues {
    pub name: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub document_type: DocumentType,
    /// The document's number (a resident ID when `document_type` is the resident ID card).
    pub document_number: Option<String>,
    pub photo: Option<Uuid>,
}

impl KeyValues {
    /// A field's value as text (empty when the record has none).
    pub fn value(&self, field: KeyField) -> String {
        match field {
            KeyField::Name => self.name.clone(),
            KeyField::Gender => gender_str(self.gender).to_owned(),
            KeyField::BirthDate => self.birth_date.to_string(),
            KeyField::IdNumber => match self.document_type {
                DocumentType::ResidentIdCard => self.document_number.clone().unwrap_or_default(),
                _ => String::new(),
            },
            KeyField::Photo => self.photo.map(|p| p.to_string()).unwrap_or_default(),
        }
    }

    /// The resident ID number, if the record's document is one.
    pub fn resident_id(&self) -> Option<&str> {
        match self.document_type {
            DocumentType::ResidentIdCard => self.document_number.as_deref(),
            _ => None,
        }
    }
}

/// A correction that passed every rule: what changes, and the record after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrected {
    pub changes: Vec<FieldChange>,
    pub after: KeyValues,
}

impl Corrected {
    /// The new resident ID number, when the correction gives one.
    pub fn new_id_number(&self) -> Option<&str> {
        self.changes
            .iter()
            .any(|c| c.field == KeyField::IdNumber.as_str())
            .then(|| self.after.resident_id())
            .flatten()
    }

    /// Whether the duplicate-without-ID key (name, gender, birth date) changes.
    pub fn changes_name_key(&self) -> bool {
        self.changes.iter().any(|c| {
            [KeyField::Name, KeyField::Gender, KeyField::BirthDate]
                .iter()
                .any(|f| f.as_str() == c.field)
        })
    }

    /// The new photo's evidence id, when the correction gives one.
    pub fn new_photo(&self) -> Option<Uuid> {
        self.changes
            .iter()
            .any(|c| c.field == KeyField::Photo.as_str())
            .then_some(self.after.photo)
            .flatten()
    }
}

/// Checks a correction of `current` to `values` (field name, new value), collecting every
/// violation: each field known and named once, each value valid and different from the
/// current one, and the edited record consistent (a resident ID's birth date and gender).
pub fn check_correction(
    current: &KeyValues,
    values: &[(String, String)],
    today: NaiveDate,
) -> Result<Corrected, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    if values.is_empty() {
        violations.push(FieldViolation::new(
            "values",
            "must name at least one field to correct",
        ));
    }
    let mut after = current.clone();
    let mut changes: Vec<FieldChange> = Vec::new();
    for (name, raw) in values {
        let Some(field) = KeyField::parse(name) else {
            violations.push(FieldViolation::new(
                "values",
                format!(
                    "`{}` is not a key field; correctable fields are name, gender, birth_date, \
                     id_number and photo",
                    name.trim()
                ),
            ));
            continue;
        };
        if changes.iter().any(|c| c.field == field.as_str()) {
            violations.push(FieldViolation::new(
                field.as_str(),
                "is named twice; name each field once",
            ));
            continue;
        }
        let parsed = match field {
            KeyField::Name => normalize_name(raw).map(|name| after.name = name),
            KeyField::Gender => parse_gender(raw.trim())
                .map(|gender| after.gender = gender)
                .ok_or_else(|| "must be male or female".to_owned()),
            KeyField::BirthDate => xueji_validation::parse_date("birth_date", raw)
                .map_err(|v| v.description)
                .and_then(|date| {
                    let age = today.year() - date.year();
                    if date > today {
                        Err("is in the future".to_owned())
                    } else if !(2..=30).contains(&age) {
                        Err(format!(
                            "gives an age of {age}; a student is 2 to 30 years old"
                        ))
                    } else {
                        after.birth_date = date;
                        Ok(())
                    }
                }),
            KeyField::IdNumber => raw
                .trim()
                .parse::<ResidentId>()
                .map(|id| {
                    after.document_type = DocumentType::ResidentIdCard;
                    after.document_number = Some(id.as_str().to_owned());
                })
                .map_err(|e| format!("resident ID number {e}")),
            KeyField::Photo => Uuid::parse_str(raw.trim())
                .map(|id| after.photo = Some(id))
                .map_err(|_| "must be the id of a JPEG or PNG evidence file".to_owned()),
        };
        if let Err(description) = parsed {
            violations.push(FieldViolation::new(field.as_str(), description));
            continue;
        }
        let (from, to) = (current.value(field), after.value(field));
        if from == to {
            violations.push(FieldViolation::new(
                field.as_str(),
                format!("is already {to}; a correction must change it"),
            ));
            continue;
        }
        changes.push(FieldChange {
            field: field.as_str().to_owned(),
            from,
            to,
        });
    }
    if let Some(id) = after
        .resident_id()
        .and_then(|text| text.parse::<ResidentId>().ok())
    {
        // The field at fault is the one corrected (or, when both were, the ID number).
        let blame = |other: KeyField| {
            if changes
                .iter()
                .any(|c| c.field == KeyField::IdNumber.as_str())
            {
                KeyField::IdNumber.as_str()
            } else {
                other.as_str()
            }
        };
        if id.birth_date() != after.birth_date {
            violations.push(FieldViolation::new(
                blame(KeyField::BirthDate),
                format!(
                    "the ID number says {} but the birth date is {}",
                    id.birth_date(),
                    after.birth_date
                ),
            ));
        }
        if id.gender() != after.gender {
            violations.push(FieldViolation::new(
                blame(KeyField::Gender),
                format!(
                    "the ID number says {} but the gender is {}",
                    gender_str(id.gender()),
                    gender_str(after.gender)
                ),
            ));
        }
    }
    if violations.is_empty() {
        Ok(Corrected { changes, after })
    } else {
        Err(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> KeyValues {
        KeyValues {
            name: "林小雨".into(),
            gender: Gender::Female,
            birth_date: NaiveDate::from_ymd_opt(2016, 3, 1).unwrap(),
            document_type: DocumentType::ResidentIdCard,
            document_number: Some(id("35020320160301002")),
            photo: None,
        }
    }

    /// A valid resident ID number from its first 17 digits.
    fn id(body: &str) -> String {
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body
            .bytes()
            .zip(weights)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        format!(
            "{body}{}",
            "10X98765432".as_bytes()[(sum % 11) as usize] as char
        )
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    fn values(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_name_correction_records_both_values() {
        let corrected =
            check_correction(&record(), &values(&[("name", "林小语")]), today()).unwrap();
        assert_eq!(
            corrected.changes,
            vec![FieldChange {
                field: "name".into(),
                from: "林小雨".into(),
                to: "林小语".into(),
            }]
        );
        assert!(corrected.changes_name_key());
        assert_eq!(corrected.new_id_number(), None);
    }

    #[test]
    fn unknown_repeated_unchanged_and_empty_are_refused_by_field() {
        let fields = |pairs: &[(&str, &str)]| -> Vec<&'static str> {
            check_correction(&record(), &values(pairs), today())
                .unwrap_err()
                .into_iter()
                .map(|v| v.field)
                .collect()
        };
        assert_eq!(fields(&[]), ["values"]);
        assert_eq!(fields(&[("school", "x")]), ["values"]);
        assert_eq!(fields(&[("name", "林小语"), ("name", "林小")]), ["name"]);
        assert_eq!(fields(&[("name", "林小雨")]), ["name"]);
        assert_eq!(fields(&[("gender", "unknown")]), ["gender"]);
        assert_eq!(fields(&[("photo", "not-a-uuid")]), ["photo"]);
    }

    #[test]
    fn a_birth_date_the_id_number_contradicts_is_refused() {
        let refused =
            check_correction(&record(), &values(&[("birth_date", "2016-03-02")]), today())
                .unwrap_err();
        assert_eq!(refused[0].field, "birth_date");
        // Corrected together with the ID number, it passes.
        let both = check_correction(
            &record(),
            &values(&[
                ("birth_date", "2016-03-02"),
                ("id_number", &id("35020320160302002")),
            ]),
            today(),
        )
        .unwrap();
        assert_eq!(both.new_id_number(), Some(id("35020320160302002").as_str()));
    }

    #[test]
    fn a_j_students_first_resident_id_makes_the_document_a_resident_id() {
        let mut j = record();
        j.document_type = DocumentType::Passport;
        j.document_number = Some("E12345678".into());
        let corrected = check_correction(
            &j,
            &values(&[("id_number", &id("35020320160301002"))]),
            today(),
        )
        .unwrap();
        assert_eq!(corrected.changes[0].from, "");
        assert_eq!(corrected.after.document_type, DocumentType::ResidentIdCard);
        // A wrong gender in the new ID number is the ID number's fault.
        let refused = check_correction(
            &j,
            &values(&[("id_number", &id("35020320160301011"))]),
            today(),
        )
        .unwrap_err();
        assert_eq!(refused[0].field, "id_number");
    }
}
