//! A school's profile: what describes a school, checked whole, and how its code is made.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use xueji_auth::{Jurisdiction, Level};
use xueji_codes::{DivisionCode, Divisions, SchoolCategory, SchoolCode};
pub(super) use xueji_validation::FieldViolation;
use xueji_validation::{Violations, parse_date, required_text};

use crate::SchoolsError;

pub use xueji_codes::{Stage, StageOffered};

/// 办别.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorType {
    Public,
    Private,
}

impl OperatorType {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorType::Public => "public",
            OperatorType::Private => "private",
        }
    }
}

/// What describes a school, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    #[serde(with = "category_digits")]
    pub category: SchoolCategory,
    pub stages: Vec<StageOffered>,
    pub division: DivisionCode,
    pub registry_authority: DivisionCode,
    pub operator_type: OperatorType,
    pub address: String,
    /// The township (乡镇/街道) the school lies in, 9 digits starting with `division`; `None`
    /// where not recorded (records written before the field existed read back as `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub township: Option<String>,
}

mod category_digits {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use xueji_codes::SchoolCategory;

    pub(super) fn serialize<S: Serializer>(
        category: &SchoolCategory,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&category.digits())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SchoolCategory, D::Error> {
        let digits = String::deserialize(d)?;
        SchoolCategory::from_digits(&digits)
            .ok_or_else(|| D::Error::custom(format!("unknown school category {digits:?}")))
    }
}

impl Profile {
    /// The 2-digit province the school lies in.
    pub fn province(&self) -> &str {
        self.division.province_digits()
    }
}

/// A profile as it arrives, unchecked.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub name: String,
    pub category: String,
    /// (stage, years); `None` for an unspecified stage.
    pub stages: Vec<(Option<Stage>, u32)>,
    pub division: String,
    pub registry_authority: String,
    pub operator_type: Option<OperatorType>,
    pub address: String,
    /// Empty: not recorded.
    pub township: String,
}

/// The field names of a profile inside a request (`profile.name`, `merged.name`, …).
#[derive(Debug, Clone, Copy)]
pub struct ProfileFields {
    pub name: &'static str,
    pub category: &'static str,
    pub stages: &'static str,
    pub division: &'static str,
    pub registry_authority: &'static str,
    pub operator_type: &'static str,
    pub address: &'static str,
    pub township: &'static str,
}

pub const PROFILE: ProfileFields = ProfileFields {
    name: "profile.name",
    category: "profile.category",
    stages: "profile.stages",
    division: "profile.division",
    registry_authority: "profile.registry_authority",
    operator_type: "profile.operator_type",
    address: "profile.address",
    township: "profile.township",
};

pub const MERGED: ProfileFields = ProfileFields {
    name: "merged.name",
    category: "merged.category",
    stages: "merged.stages",
    division: "merged.division",
    registry_authority: "merged.registry_authority",
    operator_type: "merged.operator_type",
    address: "merged.address",
    township: "merged.township",
};

/// The stage a category must offer, for the categories that imply one.
fn required_stage(category: SchoolCategory) -> Option<Stage> {
    match category {
        SchoolCategory::Primary | SchoolCategory::AdultPrimary => Some(Stage::Primary),
        SchoolCategory::Junior | SchoolCategory::VocationalJunior | SchoolCategory::AdultJunior => {
            Some(Stage::Junior)
        }
        SchoolCategory::SeniorHigh | SchoolCategory::AdultSenior => Some(Stage::Senior),
        SchoolCategory::SpecialEducation => Some(Stage::Special),
        _ => None,
    }
}

pub fn parse_category(field: &'static str, text: &str) -> Result<SchoolCategory, FieldViolation> {
    SchoolCategory::from_digits(text.trim())
        .filter(|_| text.trim().len() == 2)
        .ok_or_else(|| {
            FieldViolation::new(
                field,
                format!(
                    "{text:?} is not a school category (two digits: 21 primary, 31 junior, \
                     34 senior high, 36 secondary vocational, 37 reform school, 51 special \
                     education, …)"
                ),
            )
        })
}

pub fn parse_stages(
    field: &'static str,
    category: Option<SchoolCategory>,
    stages: &[(Option<Stage>, u32)],
) -> Result<Vec<StageOffered>, FieldViolation> {
    if stages.is_empty() {
        return Err(FieldViolation::new(
            field,
            "name at least one stage with its length of schooling",
        ));
    }
    let mut checked = Vec::new();
    for (stage, years) in stages {
        let Some(stage) = stage else {
            return Err(FieldViolation::new(field, "every stage must be specified"));
        };
        if checked.iter().any(|s: &StageOffered| s.stage == *stage) {
            return Err(FieldViolation::new(
                field,
                format!("{stage} is named twice"),
            ));
        }
        let allowed = stage.allowed_years();
        if !allowed.contains(years) {
            return Err(FieldViolation::new(
                field,
                format!(
                    "{stage} schooling of {years} years is not allowed ({}–{} years)",
                    allowed.start(),
                    allowed.end()
                ),
            ));
        }
        checked.push(StageOffered {
            stage: *stage,
            years: *years,
        });
    }
    if let Some(required) = category.and_then(required_stage)
        && !checked.iter().any(|s| s.stage == required)
    {
        return Err(FieldViolation::new(
            field,
            format!("a school of this category must offer the {required} stage"),
        ));
    }
    checked.sort_by_key(|s| s.stage);
    Ok(checked)
}

/// Checks a profile whole, naming every bad field.
pub fn validate_profile(
    input: &ProfileInput,
    fields: ProfileFields,
) -> Result<Profile, Vec<FieldViolation>> {
    let mut violations = Violations::default();
    let name = violations.check(required_text(fields.name, &input.name, 100));
    let category = violations.check(parse_category(fields.category, &input.category));
    let stages = violations.check(parse_stages(fields.stages, category, &input.stages));
    let division = violations.check(
        Jurisdiction::for_level(Level::County, input.division.trim())
            .map_err(|e| FieldViolation::new(fields.division, e))
            .and_then(|jurisdiction| match jurisdiction {
                Jurisdiction::Division(code) => Ok(code),
                _ => Err(FieldViolation::new(
                    fields.division,
                    "must be a county-level division code",
                )),
            }),
    );
    let registry_authority = violations.check(
        Divisions::bundled()
            .known(input.registry_authority.trim())
            .map_err(|e| FieldViolation::new(fields.registry_authority, e.to_string()))
            .and_then(|authority| match division {
                Some(division) if !Divisions::bundled().contains(authority.code, division) => {
                    Err(FieldViolation::new(
                        fields.registry_authority,
                        format!(
                            "{} ({}) does not oversee the school's division {division}; name its \
                             county, city or province",
                            authority.code, authority.name
                        ),
                    ))
                }
                _ => Ok(authority.code),
            }),
    );
    let operator_type = violations.check(
        input
            .operator_type
            .ok_or_else(|| FieldViolation::new(fields.operator_type, "must be public or private")),
    );
    let address = violations.check(required_text(fields.address, &input.address, 200));
    let township = violations.check(township(fields.township, &input.township, division));
    violations.finish(|| Profile {
        name: name.expect("checked"),
        category: category.expect("checked"),
        stages: stages.expect("checked"),
        division: division.expect("checked"),
        registry_authority: registry_authority.expect("checked"),
        operator_type: operator_type.expect("checked"),
        address: address.expect("checked"),
        township: township.expect("checked"),
    })
}

/// A township code: empty (not recorded), or 9 digits inside the school's county `division`.
fn township(
    field: &'static str,
    text: &str,
    division: Option<DivisionCode>,
) -> Result<Option<String>, FieldViolation> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() != 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldViolation::new(
            field,
            format!("township code {text:?} must be 9 digits (the county's 6 and 3 more)"),
        ));
    }
    match division {
        Some(division) if !text.starts_with(division.as_str()) => Err(FieldViolation::new(
            field,
            format!("township {text} does not lie in the school's division {division}"),
        )),
        _ => Ok(Some(text.to_owned())),
    }
}

pub fn parse_code(field: &'static str, text: &str) -> Result<SchoolCode, SchoolsError> {
    text.trim()
        .parse()
        .map_err(|e| SchoolsError::invalid(field, format!("school code {e}")))
}

pub fn effective_date(text: &str) -> Result<NaiveDate, SchoolsError> {
    parse_date("effective_date", text).map_err(|v| SchoolsError::InvalidArgument(vec![v]))
}

pub fn reason(text: &str) -> Result<String, SchoolsError> {
    required_text("reason", text, 500).map_err(|v| SchoolsError::InvalidArgument(vec![v]))
}
