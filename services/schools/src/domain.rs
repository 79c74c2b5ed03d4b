//! The rules of the school-code registry, free of transport and storage: what a valid school
//! profile is, how codes are made, which lifecycle step keeps or voids a code, and who endorses
//! an application at each stage.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use xueji_auth::{Caller, Jurisdiction, Level, Role};
use xueji_codes::{DivisionCode, Divisions, SchoolCategory, SchoolCode};
pub use xueji_validation::FieldViolation;
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

    pub fn serialize<S: Serializer>(category: &SchoolCategory, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&category.digits())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SchoolCategory, D::Error> {
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

/// The code for the `sequence`-th school of a (category, province).
pub fn make_code(category: SchoolCategory, province: &str, sequence: u32) -> SchoolCode {
    format!("{}{province}{sequence:06}", category.digits())
        .parse()
        .expect("a known category, a known province and six digits make a valid code")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchoolStatus {
    Open,
    /// Closed: the code is void until the school reopens.
    Closed,
    /// Merged away or re-coded: void for ever.
    Voided,
}

impl SchoolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SchoolStatus::Open => "open",
            SchoolStatus::Closed => "closed",
            SchoolStatus::Voided => "voided",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            "voided" => Some(Self::Voided),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormerName {
    pub name: String,
    /// The day the next name took effect.
    pub replaced_on: NaiveDate,
}

/// A school as the registry records it and publications carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolRecord {
    pub code: SchoolCode,
    pub profile: Profile,
    pub status: SchoolStatus,
    pub open_from: NaiveDate,
    pub open_until: Option<NaiveDate>,
    pub former_names: Vec<FormerName>,
    /// Codes that carry this school on after a merge or a category change.
    pub successors: Vec<SchoolCode>,
}

impl SchoolRecord {
    /// Where the school sits, for jurisdiction checks.
    pub fn scope(&self) -> xueji_auth::ObjectScope {
        xueji_auth::ObjectScope {
            school: self.code.clone(),
            division: self.profile.division,
        }
    }

    pub fn is_open_on(&self, date: NaiveDate) -> bool {
        self.status == SchoolStatus::Open
            && self.open_from <= date
            && self.open_until.is_none_or(|until| date < until)
    }
}

/// What a lifecycle step is asked to do when it would change nothing (a retry): answer with
/// the school as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<T> {
    Apply(T),
    AlreadyDone,
}

/// Rename: refused on a void code; renaming to the current name is a retry.
pub fn rename(school: &SchoolRecord, new_name: &str) -> Result<Step<()>, SchoolsError> {
    if school.status == SchoolStatus::Voided {
        return Err(void_code(school));
    }
    if school.profile.name == new_name {
        return Ok(Step::AlreadyDone);
    }
    Ok(Step::Apply(()))
}

/// Which code the merged school carries: a predecessor's (only with that predecessor's
/// category) or a new one (`None`).
pub fn merged_code(
    predecessors: &[SchoolRecord],
    merged: &Profile,
    keep: Option<&SchoolCode>,
) -> Result<Option<SchoolCode>, SchoolsError> {
    let mut violations = Violations::default();
    if predecessors.len() < 2 {
        violations.add(
            "predecessors",
            "a merger needs at least two distinct schools",
        );
    }
    if let Some(other) = predecessors
        .iter()
        .find(|p| p.profile.province() != merged.province())
    {
        violations.add(
            "merged.division",
            format!(
                "the merged school must stay in the province of its predecessors ({} lies in \
                 province {})",
                other.code,
                other.profile.province()
            ),
        );
    }
    let kept = match keep {
        None => None,
        Some(code) => match predecessors.iter().find(|p| &p.code == code) {
            None => {
                violations.add("keep_code", "must be one of the predecessors");
                None
            }
            Some(p) if p.code.category() != merged.category => {
                violations.add(
                    "keep_code",
                    format!(
                        "a merged school keeps a predecessor's code only when the category is \
                         unchanged ({} is category {}, the merged school {}); leave keep_code \
                         empty for a new code",
                        p.code,
                        p.code.category().digits(),
                        merged.category.digits()
                    ),
                );
                None
            }
            Some(p) => Some(p.code.clone()),
        },
    };
    if !violations.is_empty() {
        return Err(SchoolsError::InvalidArgument(violations.into_vec()));
    }
    if let Some(closed) = predecessors.iter().find(|p| p.status != SchoolStatus::Open) {
        return Err(SchoolsError::FailedPrecondition(format!(
            "school {} is {}; only open schools merge",
            closed.code,
            closed.status.as_str()
        )));
    }
    Ok(kept)
}

/// A category change needs an open school and a different category.
pub fn change_category(
    school: &SchoolRecord,
    category: SchoolCategory,
) -> Result<Step<()>, SchoolsError> {
    if school.status == SchoolStatus::Voided
        && school
            .successors
            .iter()
            .any(|successor| successor.category() == category)
    {
        return Ok(Step::AlreadyDone);
    }
    if school.status != SchoolStatus::Open {
        return Err(SchoolsError::FailedPrecondition(format!(
            "school {} is {}; only an open school changes category",
            school.code,
            school.status.as_str()
        )));
    }
    if school.code.category() == category {
        return Err(SchoolsError::invalid(
            "new_category",
            format!(
                "school {} already is category {}",
                school.code,
                category.digits()
            ),
        ));
    }
    Ok(Step::Apply(()))
}

/// What still ties a school to students: checked before it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Workload {
    pub active_enrollments: u64,
    pub pending_registrations: u64,
    pub suspended_enrollments: u64,
    pub pending_tasks: u64,
}

pub fn close(school: &SchoolRecord, workload: Option<Workload>) -> Result<Step<()>, SchoolsError> {
    match school.status {
        SchoolStatus::Closed => return Ok(Step::AlreadyDone),
        SchoolStatus::Voided => return Err(void_code(school)),
        SchoolStatus::Open => {}
    }
    let workload = workload.unwrap_or_default();
    if workload != Workload::default() {
        return Err(SchoolsError::FailedPrecondition(format!(
            "school {} still has {} active students, {} suspended students, {} pending \
             registrations and {} pending tasks; transfer or close them first",
            school.code,
            workload.active_enrollments,
            workload.suspended_enrollments,
            workload.pending_registrations,
            workload.pending_tasks
        )));
    }
    Ok(Step::Apply(()))
}

/// A merger or a category change voids `code`: its students move to the successor with it,
/// but a task still running names the school as a party, so it must finish (or be cancelled)
/// first.
pub fn void_with_students(code: &SchoolCode, workload: Workload) -> Result<(), SchoolsError> {
    if workload.pending_tasks > 0 {
        return Err(SchoolsError::FailedPrecondition(format!(
            "school {code} still has {} pending tasks (transfers, status changes, corrections); \
             finish or cancel them before its code is voided",
            workload.pending_tasks
        )));
    }
    Ok(())
}

pub fn reopen(school: &SchoolRecord) -> Result<Step<()>, SchoolsError> {
    match school.status {
        SchoolStatus::Open => Ok(Step::AlreadyDone),
        SchoolStatus::Closed => Ok(Step::Apply(())),
        SchoolStatus::Voided => Err(void_code(school)),
    }
}

fn void_code(school: &SchoolRecord) -> SchoolsError {
    let successors = school
        .successors
        .iter()
        .map(SchoolCode::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    SchoolsError::FailedPrecondition(format!(
        "school code {} is void for ever (carried on by {}); act on the successor",
        school.code,
        if successors.is_empty() {
            "no school"
        } else {
            &successors
        }
    ))
}

/// Where an application stands in the province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationStatus {
    Filed,
    CountyEndorsed,
    CityEndorsed,
    ProvinceEndorsed,
    Submitted,
    Approved,
    Rejected,
    Returned,
}

impl ApplicationStatus {
    pub const ALL: [ApplicationStatus; 8] = [
        Self::Filed,
        Self::CountyEndorsed,
        Self::CityEndorsed,
        Self::ProvinceEndorsed,
        Self::Submitted,
        Self::Approved,
        Self::Rejected,
        Self::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filed => "filed",
            Self::CountyEndorsed => "county_endorsed",
            Self::CityEndorsed => "city_endorsed",
            Self::ProvinceEndorsed => "province_endorsed",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Returned => "returned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The level whose approver acts next, while the application is in the province.
    pub fn endorser(self) -> Option<Level> {
        match self {
            Self::Filed => Some(Level::County),
            Self::CountyEndorsed => Some(Level::City),
            Self::CityEndorsed => Some(Level::Province),
            _ => None,
        }
    }

    /// The status an endorsement moves to.
    pub fn endorsed(self) -> Option<Self> {
        match self {
            Self::Filed => Some(Self::CountyEndorsed),
            Self::CountyEndorsed => Some(Self::CityEndorsed),
            Self::CityEndorsed => Some(Self::ProvinceEndorsed),
            _ => None,
        }
    }
}

/// May `caller` file an application for a school in `county`? Operators and approvers of that
/// county.
pub fn may_file(caller: &Caller, county: DivisionCode) -> bool {
    caller.level == Level::County && caller.jurisdiction == Jurisdiction::Division(county)
}

/// May `caller` see an application filed in `county`? The county and the city and province
/// above it (and the ministry).
pub fn may_see_application(caller: &Caller, county: DivisionCode) -> bool {
    match &caller.jurisdiction {
        Jurisdiction::Nation => true,
        Jurisdiction::Division(division) => Divisions::bundled().contains(*division, county),
        Jurisdiction::School(_) => false,
    }
}

/// Is it `caller`'s turn to endorse or return an application in `status` from `county`? Only
/// an approver of the level whose turn it is, over that county.
pub fn check_turn(
    caller: &Caller,
    status: ApplicationStatus,
    county: DivisionCode,
) -> Result<(), SchoolsError> {
    let Some(level) = status.endorser() else {
        return Err(SchoolsError::FailedPrecondition(format!(
            "the application is {}; nobody in the province acts on it now",
            status.as_str()
        )));
    };
    if caller.level != level || caller.role != Role::Approver {
        return Err(SchoolsError::PermissionDenied(format!(
            "the application waits for a {level}-level approver"
        )));
    }
    Ok(()).and_then(|()| {
        if may_see_application(caller, county) {
            Ok(())
        } else {
            Err(SchoolsError::PermissionDenied(format!(
                "the application waits for the {level} over {county}"
            )))
        }
    })
}

/// The ministry decides applications and applies the lifecycle rules.
pub fn require_ministry(caller: &Caller, what: &str) -> Result<(), SchoolsError> {
    if caller.jurisdiction == Jurisdiction::Nation && caller.role == Role::Approver {
        Ok(())
    } else {
        Err(SchoolsError::PermissionDenied(format!(
            "only a ministry approver may {what}; the national authority issues and changes codes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProfileInput {
        ProfileInput {
            name: "福州市鼓楼区第一中心小学".into(),
            category: "21".into(),
            stages: vec![(Some(Stage::Primary), 6)],
            division: "350102".into(),
            registry_authority: "350102".into(),
            operator_type: Some(OperatorType::Public),
            address: "福州市鼓楼区某路1号".into(),
            township: "350102001".into(),
        }
    }

    fn record(code: &str, status: SchoolStatus) -> SchoolRecord {
        let mut profile = validate_profile(&input(), PROFILE).unwrap();
        profile.category = SchoolCategory::from_digits(&code[..2]).unwrap();
        SchoolRecord {
            code: code.parse().unwrap(),
            profile,
            status,
            open_from: NaiveDate::from_ymd_opt(2000, 9, 1).unwrap(),
            open_until: None,
            former_names: vec![],
            successors: vec![],
        }
    }

    fn fields(result: Result<Profile, Vec<FieldViolation>>) -> Vec<&'static str> {
        result.unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_good_profile_passes() {
        let profile = validate_profile(&input(), PROFILE).unwrap();
        assert_eq!(profile.province(), "35");
        assert_eq!(profile.township.as_deref(), Some("350102001"));
        let unrecorded = ProfileInput {
            township: " ".into(),
            ..input()
        };
        assert_eq!(
            validate_profile(&unrecorded, PROFILE).unwrap().township,
            None
        );
    }

    #[test]
    fn bad_profiles_name_their_fields() {
        type Spoil = fn(&mut ProfileInput);
        let cases: Vec<(Spoil, &str)> = vec![
            (|i| i.name = "  ".into(), "profile.name"),
            (|i| i.category = "25".into(), "profile.category"),
            (|i| i.category = "2".into(), "profile.category"),
            (|i| i.stages = vec![], "profile.stages"),
            (
                |i| i.stages = vec![(Some(Stage::Primary), 9)],
                "profile.stages",
            ),
            (
                |i| i.stages = vec![(Some(Stage::Junior), 3)],
                "profile.stages",
            ),
            (|i| i.division = "359999".into(), "profile.division"),
            (|i| i.division = "350100".into(), "profile.division"),
            (
                |i| i.registry_authority = "340100".into(),
                "profile.registry_authority",
            ),
            (|i| i.operator_type = None, "profile.operator_type"),
            (|i| i.address = String::new(), "profile.address"),
            (|i| i.township = "35010200".into(), "profile.township"),
            (|i| i.township = "35010200x".into(), "profile.township"),
            (|i| i.township = "350103001".into(), "profile.township"),
        ];
        for (spoil, field) in cases {
            let mut bad = input();
            spoil(&mut bad);
            assert_eq!(fields(validate_profile(&bad, PROFILE)), vec![field]);
        }
        let mut all_bad = input();
        all_bad.name.clear();
        all_bad.address.clear();
        assert_eq!(
            fields(validate_profile(&all_bad, MERGED)),
            vec!["merged.name", "merged.address"]
        );
    }

    #[test]
    fn codes_are_category_province_sequence() {
        assert_eq!(
            make_code(SchoolCategory::Junior, "34", 42).as_str(),
            "3134000042"
        );
    }

    #[test]
    fn a_merge_keeps_a_code_only_within_its_category() {
        let a = record("2135000001", SchoolStatus::Open);
        let b = record("3135000002", SchoolStatus::Open);
        let mut merged = a.profile.clone();
        assert_eq!(
            merged_code(&[a.clone(), b.clone()], &merged, Some(&a.code)).unwrap(),
            Some(a.code.clone())
        );
        assert!(matches!(
            merged_code(&[a.clone(), b.clone()], &merged, Some(&b.code)),
            Err(SchoolsError::InvalidArgument(v)) if v[0].field == "keep_code"
        ));
        assert_eq!(
            merged_code(&[a.clone(), b.clone()], &merged, None).unwrap(),
            None
        );
        merged.category = SchoolCategory::Junior;
        assert!(merged_code(&[a.clone(), b.clone()], &merged, Some(&a.code)).is_err());
        assert!(merged_code(std::slice::from_ref(&a), &merged, None).is_err());
        let closed = record("2135000003", SchoolStatus::Closed);
        assert!(matches!(
            merged_code(&[a, closed], &merged, None),
            Err(SchoolsError::FailedPrecondition(_))
        ));
    }

    #[test]
    fn closing_needs_an_empty_school_and_reopening_a_closed_one() {
        let open = record("2135000001", SchoolStatus::Open);
        assert_eq!(
            close(&open, Some(Workload::default())).unwrap(),
            Step::Apply(())
        );
        let busy = Workload {
            active_enrollments: 3,
            ..Workload::default()
        };
        assert!(matches!(
            close(&open, Some(busy)),
            Err(SchoolsError::FailedPrecondition(_))
        ));
        let closed = record("2135000001", SchoolStatus::Closed);
        assert_eq!(close(&closed, None).unwrap(), Step::AlreadyDone);
        assert_eq!(reopen(&closed).unwrap(), Step::Apply(()));
        assert_eq!(reopen(&open).unwrap(), Step::AlreadyDone);
        assert!(reopen(&record("2135000001", SchoolStatus::Voided)).is_err());
    }

    #[test]
    fn endorsement_goes_county_city_province() {
        let mut status = ApplicationStatus::Filed;
        let mut levels = Vec::new();
        while let Some(level) = status.endorser() {
            levels.push(level);
            status = status.endorsed().unwrap();
        }
        assert_eq!(levels, [Level::County, Level::City, Level::Province]);
        assert_eq!(status, ApplicationStatus::ProvinceEndorsed);
    }
}
