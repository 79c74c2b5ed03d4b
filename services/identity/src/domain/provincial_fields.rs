//! Provincial fields (非基础字段): the fields a province adds to the national record, declared
//! as data (`policy/provincial_fields.toml`) and checked here: at registration (known, valid,
//! required at the student's stage) and by corrections (a key field changes only through one).
//! Pure.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use regex::Regex;
use serde::Deserialize;
use xueji_codes::Stage;

use super::{
    FieldViolation,
    correction::{FieldChange, KeyField},
};

pub const BUNDLED_FIELDS: &str = include_str!("../../policy/provincial_fields.toml");

/// Names a provincial field may not take: the national record's own fields.
const NATIONAL_FIELDS: &[&str] = &[
    "name",
    "gender",
    "birth_date",
    "ethnicity",
    "document_type",
    "document_number",
    "id_number",
    "photo",
    "school_code",
    "grade",
    "entry_date",
    "entry_route",
    "guardian",
    "registry_number",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldText {
    label: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    values: Vec<String>,
    pattern: Option<String>,
    max_length: Option<usize>,
    #[serde(default)]
    required: Vec<Stage>,
    #[serde(default)]
    key: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvinceText {
    #[serde(default)]
    field: BTreeMap<String, FieldText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    #[serde(default)]
    province: BTreeMap<String, ProvinceText>,
}

/// What a provincial field's value must be.
#[derive(Debug, Clone)]
pub enum FieldType {
    /// One of the listed values.
    Choice(Vec<String>),
    /// Free text, at most `max_length` characters, matching `pattern` whole when there is one.
    Text {
        pattern: Option<Regex>,
        max_length: usize,
    },
    /// A date, YYYY-MM-DD.
    Date,
}

/// One declared field.
#[derive(Debug, Clone)]
pub struct ProvincialField {
    pub name: String,
    pub label: String,
    pub kind: FieldType,
    /// Stages where registration must give it.
    pub required: Vec<Stage>,
    /// Changed only by a correction (with evidence, through both approvers).
    pub key: bool,
    /// `provincial_fields.<name>`, as violations name it (made once, when the file is read).
    violation_name: &'static str,
}

impl ProvincialField {
    /// The value normalized (trimmed), or why it is not one this field takes.
    pub fn check(&self, raw: &str) -> Result<String, String> {
        let value = raw.trim();
        match &self.kind {
            FieldType::Choice(values) => {
                if values.iter().any(|v| v == value) {
                    Ok(value.to_owned())
                } else {
                    Err(format!(
                        "{value:?} is not one of {} ({})",
                        values.join(", "),
                        self.label
                    ))
                }
            }
            FieldType::Text {
                pattern,
                max_length,
            } => {
                if value.chars().count() > *max_length {
                    return Err(format!(
                        "is longer than {max_length} characters ({})",
                        self.label
                    ));
                }
                if let Some(pattern) = pattern
                    && !pattern.is_match(value)
                {
                    return Err(format!(
                        "{value:?} does not have the form {} asks for",
                        self.label
                    ));
                }
                Ok(value.to_owned())
            }
            FieldType::Date => xueji_validation::parse_date(self.violation_name, value)
                .map(|date| date.to_string())
                .map_err(|v| format!("{} ({})", v.description, self.label)),
        }
    }

    pub fn violation_name(&self) -> &'static str {
        self.violation_name
    }
}

/// Every province's declared fields.
#[derive(Debug, Clone, Default)]
pub struct ProvincialFields {
    provinces: BTreeMap<String, Vec<ProvincialField>>,
}

impl ProvincialFields {
    /// The declaration shipped in the repository, read and checked once per process (the
    /// registration API and the status-change desk share it).
    pub fn bundled() -> Arc<Self> {
        static BUNDLED: OnceLock<Arc<ProvincialFields>> = OnceLock::new();
        BUNDLED
            .get_or_init(|| {
                Arc::new(
                    Self::from_toml(BUNDLED_FIELDS)
                        .expect("the bundled provincial fields are valid"),
                )
            })
            .clone()
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: FileText = toml::from_str(text).map_err(|e| format!("provincial fields: {e}"))?;
        let mut provinces = BTreeMap::new();
        for (province, own) in file.province {
            if province.len() != 2 || !province.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "provincial fields: province {province:?}: a province is named by its two \
                     digits"
                ));
            }
            let mut fields = Vec::new();
            for (name, text) in own.field {
                fields.push(field(&province, name, text)?);
            }
            provinces.insert(province, fields);
        }
        Ok(Self { provinces })
    }

    /// The fields `province` declares (none for a province that declares none).
    pub fn of(&self, province: &str) -> &[ProvincialField] {
        self.provinces.get(province).map_or(&[], Vec::as_slice)
    }
}

fn field(province: &str, name: String, text: FieldText) -> Result<ProvincialField, String> {
    let bad = |what: String| format!("provincial fields: province {province}: {name}: {what}");
    let well_formed = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !well_formed {
        return Err(bad(
            "a field's name is 1–40 lowercase letters, digits and _, starting with a letter".into(),
        ));
    }
    if NATIONAL_FIELDS.contains(&name.as_str()) || KeyField::parse(&name).is_some() {
        return Err(bad("is a field of the national record".into()));
    }
    if text.label.trim().is_empty() {
        return Err(bad("`label` is missing".into()));
    }
    let kind = match text.kind.as_str() {
        "choice" => {
            if text.values.is_empty() {
                return Err(bad("a choice field lists its `values`".into()));
            }
            FieldType::Choice(text.values.clone())
        }
        "text" => FieldType::Text {
            pattern: match &text.pattern {
                Some(pattern) => Some(
                    Regex::new(&format!("^(?:{pattern})$"))
                        .map_err(|e| bad(format!("`pattern`: {e}")))?,
                ),
                None => None,
            },
            max_length: text.max_length.unwrap_or(100),
        },
        "date" => FieldType::Date,
        other => {
            return Err(bad(format!(
                "type {other:?}: a field is a choice, text or date"
            )));
        }
    };
    if !matches!(kind, FieldType::Choice(_)) && !text.values.is_empty() {
        return Err(bad("only a choice field lists `values`".into()));
    }
    if !matches!(kind, FieldType::Text { .. }) && text.pattern.is_some() {
        return Err(bad("only a text field has a `pattern`".into()));
    }
    let violation_name: &'static str =
        Box::leak(format!("provincial_fields.{name}").into_boxed_str());
    Ok(ProvincialField {
        name,
        label: text.label,
        kind,
        required: text.required,
        key: text.key,
        violation_name,
    })
}

/// Checks the provincial fields of a registration at a school of `stage`: each named field
/// declared, each value valid, each field the stage requires given. Answers the values kept
/// (empty values are absent).
pub fn check_registration_fields(
    declared: &[ProvincialField],
    province: &str,
    given: &BTreeMap<String, String>,
    stage: Stage,
) -> Result<BTreeMap<String, String>, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut kept = BTreeMap::new();
    for (name, raw) in given {
        let Some(field) = declared.iter().find(|f| f.name == name.trim()) else {
            violations.push(FieldViolation::new(
                "provincial_fields",
                format!(
                    "{name:?} is not a field of province {province}{}",
                    known(declared)
                ),
            ));
            continue;
        };
        if raw.trim().is_empty() {
            continue;
        }
        match field.check(raw) {
            Ok(value) => {
                kept.insert(field.name.clone(), value);
            }
            Err(why) => violations.push(FieldViolation::new(field.violation_name, why)),
        }
    }
    for field in declared {
        if field.required.contains(&stage)
            && !kept.contains_key(&field.name)
            && !violations.iter().any(|v| v.field == field.violation_name)
        {
            violations.push(FieldViolation::new(
                field.violation_name,
                format!(
                    "is required for {} students in province {province} ({})",
                    stage_name(stage),
                    field.label
                ),
            ));
        }
    }
    if violations.is_empty() {
        Ok(kept)
    } else {
        Err(violations)
    }
}

/// How a corrected provincial field is named in the correction's changes and the history:
/// apart from the national key fields.
pub const CORRECTED_PREFIX: &str = "provincial_fields.";

/// A provincial field a correction names, with the value asked.
pub type AskedField<'a> = (&'a ProvincialField, String);

/// Splits a correction's (field, value) pairs into the province's own fields and the national
/// ones. A provincial field may be named bare or with its `provincial_fields.` prefix; a name
/// the province does not declare stays with the national fields (whose check refuses it).
pub fn split_correction<'a>(
    declared: &'a [ProvincialField],
    values: &[(String, String)],
) -> (Vec<AskedField<'a>>, Vec<(String, String)>) {
    let mut provincial = Vec::new();
    let mut national = Vec::new();
    for (name, value) in values {
        let bare = name.trim();
        let bare = bare.strip_prefix(CORRECTED_PREFIX).unwrap_or(bare);
        match declared.iter().find(|f| f.name == bare) {
            Some(field) => provincial.push((field, value.clone())),
            None => national.push((name.clone(), value.clone())),
        }
    }
    (provincial, national)
}

/// Checks the provincial part of a correction against the record's current values: only key
/// fields are corrected (the others are the school's to keep), each named once, each value
/// valid and different. Answers the changes, named `provincial_fields.<name>`.
pub fn check_provincial_correction(
    asked: &[AskedField<'_>],
    current: &BTreeMap<String, String>,
) -> Result<Vec<FieldChange>, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut changes: Vec<FieldChange> = Vec::new();
    for (field, raw) in asked {
        let named = format!("{CORRECTED_PREFIX}{}", field.name);
        if !field.key {
            violations.push(FieldViolation::new(
                field.violation_name,
                format!(
                    "is not a key field of the province ({}); corrections change key fields",
                    field.label
                ),
            ));
            continue;
        }
        if changes.iter().any(|c| c.field == named) {
            violations.push(FieldViolation::new(
                field.violation_name,
                "is named twice; name each field once",
            ));
            continue;
        }
        let to = match field.check(raw) {
            Ok(value) => value,
            Err(why) => {
                violations.push(FieldViolation::new(field.violation_name, why));
                continue;
            }
        };
        let from = current.get(&field.name).cloned().unwrap_or_default();
        if from == to {
            violations.push(FieldViolation::new(
                field.violation_name,
                format!("is already {to}; a correction must change it"),
            ));
            continue;
        }
        changes.push(FieldChange {
            field: named,
            from,
            to,
        });
    }
    if violations.is_empty() {
        Ok(changes)
    } else {
        Err(violations)
    }
}

fn known(declared: &[ProvincialField]) -> String {
    if declared.is_empty() {
        "; it declares none".into()
    } else {
        let names: Vec<_> = declared.iter().map(|f| f.name.as_str()).collect();
        format!("; its fields are {}", names.join(", "))
    }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Primary => "primary",
        Stage::Junior => "junior",
        Stage::Senior => "senior high",
        Stage::Special => "special education",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Arc<ProvincialFields> {
        ProvincialFields::bundled()
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_choice_takes_only_its_values() {
        let fujian = fields();
        let ok = check_registration_fields(
            fujian.of("35"),
            "35",
            &given(&[("boarding", " 是 ")]),
            Stage::Primary,
        )
        .unwrap();
        assert_eq!(ok, given(&[("boarding", "是")]));
        let refused = check_registration_fields(
            fujian.of("35"),
            "35",
            &given(&[("boarding", "有时")]),
            Stage::Primary,
        )
        .unwrap_err();
        assert_eq!(refused[0].field, "provincial_fields.boarding");
        assert!(refused[0].description.contains("是, 否"), "{refused:?}");
    }

    #[test]
    fn a_text_field_matches_its_pattern_whole() {
        let fujian = fields();
        for bad in ["35010", "3501020", "950102", "35a102"] {
            let refused = check_registration_fields(
                fujian.of("35"),
                "35",
                &given(&[("hukou_division", bad)]),
                Stage::Junior,
            )
            .unwrap_err();
            assert_eq!(
                refused[0].field, "provincial_fields.hukou_division",
                "{bad}"
            );
        }
        assert!(
            check_registration_fields(
                fujian.of("35"),
                "35",
                &given(&[("hukou_division", "350102")]),
                Stage::Junior,
            )
            .is_ok()
        );
    }

    #[test]
    fn a_field_is_required_only_at_its_stages() {
        let fujian = fields();
        let refused = check_registration_fields(fujian.of("35"), "35", &given(&[]), Stage::Special)
            .unwrap_err();
        assert_eq!(refused[0].field, "provincial_fields.disability_category");
        assert!(refused[0].description.contains("special education"));
        assert!(
            check_registration_fields(fujian.of("35"), "35", &given(&[]), Stage::Primary).is_ok()
        );
    }

    #[test]
    fn another_province_s_field_is_refused_by_name() {
        let all = fields();
        let refused = check_registration_fields(
            all.of("35"),
            "35",
            &given(&[("household_type", "农业户口")]),
            Stage::Primary,
        )
        .unwrap_err();
        assert_eq!(refused[0].field, "provincial_fields");
        assert!(refused[0].description.contains("household_type"));
        let none = check_registration_fields(
            all.of("11"),
            "11",
            &given(&[("boarding", "是")]),
            Stage::Primary,
        )
        .unwrap_err();
        assert!(none[0].description.contains("declares none"));
    }

    #[test]
    fn only_a_key_field_is_corrected_and_named_apart() {
        let fujian = fields();
        let asked = vec![
            ("hukou_division".to_owned(), "350103".to_owned()),
            ("name".to_owned(), "林小语".to_owned()),
        ];
        let (provincial, national) = split_correction(fujian.of("35"), &asked);
        assert_eq!(national, vec![("name".to_owned(), "林小语".to_owned())]);
        let current = given(&[("hukou_division", "350102")]);
        let changes = check_provincial_correction(&provincial, &current).unwrap();
        assert_eq!(changes[0].field, "provincial_fields.hukou_division");
        assert_eq!(
            (changes[0].from.as_str(), changes[0].to.as_str()),
            ("350102", "350103")
        );

        let (not_key, _) = split_correction(
            fujian.of("35"),
            &[("provincial_fields.boarding".into(), "是".into())],
        );
        let refused = check_provincial_correction(&not_key, &current).unwrap_err();
        assert!(refused[0].description.contains("not a key field"));
        let (same, _) = split_correction(
            fujian.of("35"),
            &[("hukou_division".into(), "350102".into())],
        );
        assert!(check_provincial_correction(&same, &current).is_err());
    }

    #[test]
    fn declarations_that_would_mislead_are_refused_at_load() {
        for (text, why) in [
            (
                "[province.35.field.name]\nlabel = \"姓名\"\ntype = \"text\"",
                "national record",
            ),
            (
                "[province.35.field.x]\nlabel = \"x\"\ntype = \"choice\"",
                "lists its `values`",
            ),
            (
                "[province.35.field.x]\nlabel = \"x\"\ntype = \"text\"\npattern = \"(\"",
                "`pattern`",
            ),
            (
                "[province.35.field.x]\nlabel = \"x\"\ntype = \"number\"",
                "choice, text or date",
            ),
            (
                "[province.3.field.x]\nlabel = \"x\"\ntype = \"date\"",
                "two digits",
            ),
            (
                "[province.35.field.Bad]\nlabel = \"x\"\ntype = \"date\"",
                "lowercase",
            ),
        ] {
            let error = ProvincialFields::from_toml(text).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
    }
}
