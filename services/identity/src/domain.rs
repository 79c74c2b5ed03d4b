//! The rules of registration, free of transport and storage: what a valid registration is,
//! which key finds duplicates, which number approval issues, who may approve.

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};
use xueji_auth::{Caller, Level, ObjectScope};
use xueji_codes::{DivisionCode, Divisions, Gender, RegistryNumber, ResidentId, SchoolCode};
pub use xueji_validation::FieldViolation;
use xueji_validation::parse_date;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    ResidentIdCard,
    HkMacaoTravelPermit,
    TaiwanCompatriotPermit,
    HmtResidencePermit,
    Passport,
    Other,
    None,
}

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentIdCard => "resident_id_card",
            Self::HkMacaoTravelPermit => "hk_macao_travel_permit",
            Self::TaiwanCompatriotPermit => "taiwan_compatriot_permit",
            Self::HmtResidencePermit => "hmt_residence_permit",
            Self::Passport => "passport",
            Self::Other => "other",
            Self::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::ResidentIdCard,
            Self::HkMacaoTravelPermit,
            Self::TaiwanCompatriotPermit,
            Self::HmtResidencePermit,
            Self::Passport,
            Self::Other,
            Self::None,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRoute {
    NearbyAdmission,
    EntranceExam,
    Recommendation,
    MigrantAdmission,
    Other,
}

impl EntryRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NearbyAdmission => "nearby_admission",
            Self::EntranceExam => "entrance_exam",
            Self::Recommendation => "recommendation",
            Self::MigrantAdmission => "migrant_admission",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::NearbyAdmission,
            Self::EntranceExam,
            Self::Recommendation,
            Self::MigrantAdmission,
            Self::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStatus {
    Pending,
    /// Approved by the registry authority; the national duplicate check of its resident ID
    /// number has not answered yet.
    AwaitingNationalCheck,
    Active,
    Rejected,
    /// The sending school's archived copy after a completed transfer.
    TransferredOut,
}

impl EnrollmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AwaitingNationalCheck => "awaiting_national_check",
            Self::Active => "active",
            Self::Rejected => "rejected",
            Self::TransferredOut => "transferred_out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "awaiting_national_check" => Some(Self::AwaitingNationalCheck),
            "active" => Some(Self::Active),
            "rejected" => Some(Self::Rejected),
            "transferred_out" => Some(Self::TransferredOut),
            _ => None,
        }
    }
}

pub fn gender_str(gender: Gender) -> &'static str {
    match gender {
        Gender::Male => "male",
        Gender::Female => "female",
    }
}

pub fn parse_gender(text: &str) -> Option<Gender> {
    match text {
        "male" => Some(Gender::Male),
        "female" => Some(Gender::Female),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Guardian {
    pub name: String,
    pub relation: String,
    pub phone: String,
}

/// A school as registration needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct School {
    pub code: SchoolCode,
    pub name: String,
    /// The county-level division the school lies in.
    pub division: DivisionCode,
    /// The authority that approves its registrations (county, or city for senior high).
    pub registry_authority: DivisionCode,
    pub open_from: NaiveDate,
    pub open_until: Option<NaiveDate>,
}

impl School {
    pub fn scope(&self) -> ObjectScope {
        ObjectScope {
            school: self.code.clone(),
            division: self.division,
        }
    }

    pub fn is_open_on(&self, date: NaiveDate) -> bool {
        self.open_from <= date && self.open_until.is_none_or(|until| date <= until)
    }

    /// The national grades this school's category teaches; `None` for schools outside the
    /// primary and secondary registry (kindergartens, universities).
    pub fn grades(&self) -> Option<std::ops::RangeInclusive<u32>> {
        self.code.category().grades()
    }
}

/// What a caller asked to register, as received (already decoded from the wire, not checked).
#[derive(Debug, Clone)]
pub struct RegistrationInput {
    pub idempotency_key: String,
    pub name: String,
    pub gender: Option<Gender>,
    pub birth_date: String,
    pub ethnicity: String,
    pub document_type: Option<DocumentType>,
    pub document_number: String,
    pub school_code: String,
    pub grade: u32,
    pub entry_date: String,
    pub entry_route: Option<EntryRoute>,
    pub guardian: Option<Guardian>,
}

/// A registration that passed every rule.
#[derive(Debug, Clone)]
pub struct Registration {
    pub idempotency_key: String,
    pub name: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub ethnicity: String,
    pub document_type: DocumentType,
    /// The document number as stored (a resident ID upper-cased).
    pub document_number: Option<String>,
    pub resident_id: Option<ResidentId>,
    pub school: School,
    pub grade: u32,
    pub entry_date: NaiveDate,
    pub entry_route: EntryRoute,
    pub guardian: Guardian,
}

impl Registration {
    pub fn name_key(&self) -> String {
        name_key(&self.name, self.gender, self.birth_date)
    }

    /// A digest of everything the caller sent, to tell an honest retry from a different
    /// registration that reuses an idempotency key.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut hasher = Sha256::new();
        for part in [
            self.name.as_str(),
            gender_str(self.gender),
            &self.birth_date.to_string(),
            &self.ethnicity,
            self.document_type.as_str(),
            self.document_number.as_deref().unwrap_or(""),
            self.school.code.as_str(),
            &self.grade.to_string(),
            &self.entry_date.to_string(),
            self.entry_route.as_str(),
            &self.guardian.name,
            &self.guardian.relation,
            &self.guardian.phone,
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().to_vec()
    }

    /// The temporary number: the school's division, the birth date, four random digits.
    pub fn temporary_number(&self, random: u16) -> RegistryNumber {
        RegistryNumber::l(self.school.division, self.birth_date, random)
    }
}

/// The duplicate-without-ID key: the name's canonical form (as people read it: compatibility
/// forms, case, spacing and middle dots folded), gender, birth date. The national digest is
/// computed from this key, so both provinces of a cross-province pair fold names alike.
pub fn name_key(name: &str, gender: Gender, birth_date: NaiveDate) -> String {
    format!(
        "{}|{}|{birth_date}",
        xueji_validation::canonical_name(name),
        gender_str(gender)
    )
}

/// GB/T 3304 ethnicity codes: the 56 nationalities, 97 other, 98 foreign origin.
fn is_ethnicity(code: &str) -> bool {
    code.len() == 2
        && code
            .parse::<u8>()
            .is_ok_and(|n| (1..=56).contains(&n) || n == 97 || n == 98)
}

/// A person's name as stored (see `xueji_validation::person_name`): NFC, whitespace folded,
/// at most 50 characters, refusing invisible characters (control, zero-width, bidi,
/// private-use) that would let two records of one child dodge the duplicate check. Characters
/// outside the BMP (rare characters in names) are ordinary characters here.
pub fn normalize_name(raw: &str) -> Result<String, String> {
    xueji_validation::person_name(raw, 50)
}

/// Checks a registration against every rule of §2 and the school it names. `school` is the
/// school the caller may see under that code, or `None` (unknown or outside the caller's
/// jurisdiction: both answer alike). Collects every violation, not only the first.
pub fn validate_registration(
    input: RegistrationInput,
    school: Option<School>,
    today: NaiveDate,
) -> Result<Registration, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut check = |result: Result<(), FieldViolation>| {
        if let Err(violation) = result {
            violations.push(violation);
        }
    };

    let key = input.idempotency_key.as_str();
    check(
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            Err(FieldViolation::new(
                "idempotency_key",
                "must be 1–128 printable ASCII characters",
            ))
        } else {
            Ok(())
        },
    );

    let name = normalize_name(&input.name).map_err(|e| FieldViolation::new("name", e));
    let birth_date = parse_date("birth_date", &input.birth_date).and_then(|date| {
        let age = today.year() - date.year();
        if date > today {
            Err(FieldViolation::new("birth_date", "is in the future"))
        } else if !(2..=30).contains(&age) {
            Err(FieldViolation::new(
                "birth_date",
                format!("gives an age of {age}; a student is 2 to 30 years old"),
            ))
        } else {
            Ok(date)
        }
    });
    let gender = input
        .gender
        .ok_or_else(|| FieldViolation::new("gender", "must be male or female"));
    let ethnicity = if is_ethnicity(&input.ethnicity) {
        Ok(input.ethnicity.clone())
    } else {
        Err(FieldViolation::new(
            "ethnicity",
            "must be a GB/T 3304 code: 01–56, 97 or 98",
        ))
    };

    let document_type = input
        .document_type
        .ok_or_else(|| FieldViolation::new("document_type", "must be given"));
    let mut resident_id = None;
    let document_number = match document_type {
        Ok(DocumentType::ResidentIdCard) => {
            match input.document_number.trim().parse::<ResidentId>() {
                Ok(id) => {
                    if let Ok(date) = &birth_date
                        && id.birth_date() != *date
                    {
                        violations.push(FieldViolation::new(
                            "birth_date",
                            format!(
                                "{date} disagrees with the ID number, which says {}",
                                id.birth_date()
                            ),
                        ));
                    }
                    if let Ok(gender) = &gender
                        && id.gender() != *gender
                    {
                        violations.push(FieldViolation::new(
                            "gender",
                            format!(
                                "{} disagrees with the ID number, which says {}",
                                gender_str(*gender),
                                gender_str(id.gender())
                            ),
                        ));
                    }
                    let number = id.as_str().to_owned();
                    resident_id = Some(id);
                    Ok(Some(number))
                }
                Err(e) => Err(FieldViolation::new(
                    "document_number",
                    format!("resident ID number {e}"),
                )),
            }
        }
        Ok(DocumentType::None) if input.document_number.trim().is_empty() => Ok(None),
        Ok(DocumentType::None) => Err(FieldViolation::new(
            "document_number",
            "must be empty when document_type is NONE",
        )),
        Ok(_) => {
            let number = input.document_number.trim();
            if number.is_empty()
                || number.len() > 32
                || !number.bytes().all(|b| b.is_ascii_graphic())
            {
                Err(FieldViolation::new(
                    "document_number",
                    "must be 1–32 printable ASCII characters",
                ))
            } else {
                Ok(Some(number.to_owned()))
            }
        }
        Err(_) => Ok(None),
    };

    let school = match input.school_code.parse::<SchoolCode>() {
        Err(e) => Err(FieldViolation::new(
            "school_code",
            format!("school code {e}"),
        )),
        Ok(_) => match school {
            None => Err(FieldViolation::new(
                "school_code",
                "no such school in this province's published school list",
            )),
            Some(school) => match school.open_until {
                Some(until) if until <= today => Err(FieldViolation::new(
                    "school_code",
                    format!("the school closed on {until} and takes no new students"),
                )),
                _ => Ok(school),
            },
        },
    };
    let entry_date = parse_date("entry_date", &input.entry_date).and_then(|date| {
        if let Ok(birth) = &birth_date
            && date <= *birth
        {
            return Err(FieldViolation::new(
                "entry_date",
                "is not after the birth date",
            ));
        }
        if date > today + chrono::Days::new(366) {
            return Err(FieldViolation::new(
                "entry_date",
                "is more than a year in the future",
            ));
        }
        if let Ok(school) = &school
            && !school.is_open_on(date)
        {
            return Err(FieldViolation::new(
                "entry_date",
                format!("the school is not open on {date}"),
            ));
        }
        Ok(date)
    });
    let grade = match school.as_ref().ok().map(School::grades) {
        Some(None) => Err(FieldViolation::new(
            "grade",
            "this school is outside the primary and secondary registry",
        )),
        Some(Some(grades)) if !grades.contains(&input.grade) => Err(FieldViolation::new(
            "grade",
            format!(
                "{} is not taught at this school (grades {}–{})",
                input.grade,
                grades.start(),
                grades.end()
            ),
        )),
        _ if !(1..=12).contains(&input.grade) => Err(FieldViolation::new("grade", "must be 1–12")),
        _ => Ok(input.grade),
    };
    let entry_route = input
        .entry_route
        .ok_or_else(|| FieldViolation::new("entry_route", "must be given"));
    let guardian = match input.guardian {
        None => Err(FieldViolation::new("guardian", "must be given")),
        Some(g) => {
            let name = normalize_name(&g.name).map_err(|e| FieldViolation::new("guardian.name", e));
            let relation = g.relation.trim().to_owned();
            let phone = g.phone.trim().to_owned();
            if relation.is_empty() || relation.chars().count() > 20 {
                Err(FieldViolation::new(
                    "guardian.relation",
                    "must be 1–20 characters",
                ))
            } else if phone.len() > 20
                || !phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '))
            {
                Err(FieldViolation::new(
                    "guardian.phone",
                    "must be at most 20 digits, spaces, + or -",
                ))
            } else {
                name.map(|name| Guardian {
                    name,
                    relation,
                    phone,
                })
            }
        }
    };

    match (
        name,
        gender,
        birth_date,
        ethnicity,
        document_type,
        document_number,
        school,
        grade,
        entry_date,
        entry_route,
        guardian,
    ) {
        (
            Ok(name),
            Ok(gender),
            Ok(birth_date),
            Ok(ethnicity),
            Ok(document_type),
            Ok(document_number),
            Ok(school),
            Ok(grade),
            Ok(entry_date),
            Ok(entry_route),
            Ok(guardian),
        ) if violations.is_empty() => Ok(Registration {
            idempotency_key: input.idempotency_key,
            name,
            gender,
            birth_date,
            ethnicity,
            document_type,
            document_number,
            resident_id,
            school,
            grade,
            entry_date,
            entry_route,
            guardian,
        }),
        (a, b, c, d, e, f, g, h, i, j, k) => {
            let errors = [
                a.err(),
                b.err(),
                c.err(),
                d.err(),
                e.err(),
                f.err(),
                g.err(),
                h.err(),
                i.err(),
                j.err(),
                k.err(),
            ];
            violations.extend(errors.into_iter().flatten());
            Err(violations)
        }
    }
}

/// The number approval issues: `G` + resident ID when the student has one (after the national
/// check), otherwise a `J` from the school's division, the birth date and the next sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promotion {
    ToG(ResidentId),
    ToJ {
        division: DivisionCode,
        birth_date: NaiveDate,
    },
}

pub fn promotion_for(
    document_type: DocumentType,
    document_number: Option<&str>,
    school_division: DivisionCode,
    birth_date: NaiveDate,
) -> Promotion {
    let resident_id = (document_type == DocumentType::ResidentIdCard)
        .then(|| document_number.and_then(|n| n.parse::<ResidentId>().ok()))
        .flatten();
    match resident_id {
        Some(id) => Promotion::ToG(id),
        None => Promotion::ToJ {
            division: school_division,
            birth_date,
        },
    }
}

/// The registry authority's decision on a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// Whether `decision` still has work to do on a registration in `status`: `Ok(true)` to apply
/// it, `Ok(false)` when it was already applied (a retry changes nothing), an error when the
/// other decision was already taken.
pub fn decision_needed(
    status: EnrollmentStatus,
    decision: Decision,
    registry_number: &str,
) -> Result<bool, String> {
    match (status, decision) {
        (EnrollmentStatus::Pending, _) => Ok(true),
        (EnrollmentStatus::Active | EnrollmentStatus::AwaitingNationalCheck, Decision::Approve)
        | (EnrollmentStatus::Rejected, Decision::Reject) => Ok(false),
        (EnrollmentStatus::AwaitingNationalCheck, Decision::Reject) => Err(format!(
            "registration {registry_number} is approved and awaiting the national duplicate \
             check; it cannot be rejected now"
        )),
        (EnrollmentStatus::Rejected, Decision::Approve) => Err(format!(
            "registration {registry_number} was rejected; it cannot be approved"
        )),
        (EnrollmentStatus::Active, Decision::Reject) => Err(format!(
            "registration {registry_number} is already approved; it cannot be rejected"
        )),
        (EnrollmentStatus::TransferredOut, _) => Err(format!(
            "{registry_number} was transferred to another school; its registration is closed"
        )),
    }
}

/// Who may register at a school: its own operators, and the authorities above it (county,
/// city), not the province or the ministry, who oversee.
pub fn may_register(caller: &Caller, school: &School) -> bool {
    caller.may_access(&school.scope())
        && matches!(caller.level, Level::School | Level::County | Level::City)
}

/// Who may approve or reject a registration: an approver of the school's registry authority.
pub fn may_decide(caller: &Caller, school: &School) -> bool {
    caller.is_approver_for(school.registry_authority)
}

/// The county-level divisions inside a division jurisdiction, for scoped queries.
pub fn counties_within(division: DivisionCode) -> Vec<String> {
    let divisions = Divisions::bundled();
    let mut codes: Vec<String> = divisions
        .counties_of(division.province())
        .into_iter()
        .map(|d| d.code)
        .chain(
            // Cities without counties register schools directly under the city code.
            divisions.get(division).into_iter().map(|d| d.code),
        )
        .filter(|code| divisions.contains(division, *code))
        .map(|code| code.to_string())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn school(code: &str) -> School {
        School {
            code: code.parse().unwrap(),
            name: "测试小学".into(),
            division: "350102".parse().unwrap(),
            registry_authority: "350102".parse().unwrap(),
            open_from: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
            open_until: None,
        }
    }

    fn input() -> RegistrationInput {
        RegistrationInput {
            idempotency_key: "k1".into(),
            name: "张𠮷".into(),
            gender: Some(Gender::Female),
            birth_date: "2018-03-07".into(),
            ethnicity: "01".into(),
            document_type: Some(DocumentType::ResidentIdCard),
            document_number: with_check("35010220180307002"),
            school_code: "2135000001".into(),
            grade: 1,
            entry_date: "2024-09-01".into(),
            entry_route: Some(EntryRoute::NearbyAdmission),
            guardian: Some(Guardian {
                name: "张三".into(),
                relation: "父亲".into(),
                phone: "13800000000".into(),
            }),
        }
    }

    /// A valid resident ID from its first 17 digits.
    fn with_check(body: &str) -> String {
        ResidentId::from_body(body).unwrap().to_string()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 9, 1).unwrap()
    }

    fn fields(result: Result<Registration, Vec<FieldViolation>>) -> Vec<&'static str> {
        let mut fields: Vec<_> = result.unwrap_err().into_iter().map(|v| v.field).collect();
        fields.sort();
        fields
    }

    #[test]
    fn a_valid_registration_passes_and_keeps_rare_characters() {
        let registration =
            validate_registration(input(), Some(school("2135000001")), today()).unwrap();
        assert_eq!(registration.name, "张𠮷");
        assert_eq!(registration.name_key(), "张𠮷|female|2018-03-07");
        let number = registration.temporary_number(7);
        assert_eq!(number.as_str(), "L350102201803070007");
    }

    #[test]
    fn names_are_nfc() {
        let mut decomposed = input();
        decomposed.name = "Zoe\u{0301}".into();
        let registration =
            validate_registration(decomposed, Some(school("2135000001")), today()).unwrap();
        assert_eq!(registration.name, "Zo\u{e9}");
    }

    #[test]
    fn hidden_characters_are_refused_and_look_alikes_share_a_key() {
        let mut hidden = input();
        hidden.name = "王\u{200B}小红".into();
        assert_eq!(
            fields(validate_registration(
                hidden,
                Some(school("2135000001")),
                today()
            )),
            ["name"]
        );
        let mut hidden_guardian = input();
        hidden_guardian.guardian.as_mut().unwrap().name = "王\u{202E}建国".into();
        assert_eq!(
            fields(validate_registration(
                hidden_guardian,
                Some(school("2135000001")),
                today()
            )),
            ["guardian.name"]
        );
        let key = |name: &str| {
            let mut input = input();
            input.name = name.into();
            validate_registration(input, Some(school("2135000001")), today())
                .unwrap()
                .name_key()
        };
        assert_eq!(key("张𠮷"), key("张　𠮷"));
        assert_eq!(key("Zhang Ji"), key("ＺＨＡＮＧ　ＪＩ"));
    }

    #[test]
    fn id_number_must_agree_with_birth_date_and_gender() {
        let mut wrong = input();
        wrong.birth_date = "2018-03-08".into();
        wrong.gender = Some(Gender::Male);
        assert_eq!(
            fields(validate_registration(
                wrong,
                Some(school("2135000001")),
                today()
            )),
            ["birth_date", "gender"]
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = RegistrationInput {
            idempotency_key: String::new(),
            name: " ".into(),
            gender: None,
            birth_date: "2018-02-30".into(),
            ethnicity: "57".into(),
            document_type: None,
            document_number: String::new(),
            school_code: "21350".into(),
            grade: 13,
            entry_date: "soon".into(),
            entry_route: None,
            guardian: None,
        };
        assert_eq!(
            fields(validate_registration(bad, None, today())),
            [
                "birth_date",
                "document_type",
                "entry_date",
                "entry_route",
                "ethnicity",
                "gender",
                "grade",
                "guardian",
                "idempotency_key",
                "name",
                "school_code",
            ]
        );
    }

    #[test]
    fn grade_must_fit_the_school() {
        let mut senior = input();
        senior.grade = 10;
        assert_eq!(
            fields(validate_registration(
                senior,
                Some(school("2135000001")),
                today()
            )),
            ["grade"]
        );
    }

    #[test]
    fn other_documents_promote_to_j() {
        let division: DivisionCode = "350102".parse().unwrap();
        let birth = NaiveDate::from_ymd_opt(2018, 3, 7).unwrap();
        assert_eq!(
            promotion_for(DocumentType::Passport, Some("E1234567"), division, birth),
            Promotion::ToJ {
                division,
                birth_date: birth
            }
        );
        let id = with_check("35010220180307002");
        assert!(matches!(
            promotion_for(DocumentType::ResidentIdCard, Some(&id), division, birth),
            Promotion::ToG(_)
        ));
    }

    #[test]
    fn decisions_apply_once_and_never_both() {
        use EnrollmentStatus::*;
        assert_eq!(decision_needed(Pending, Decision::Approve, "L"), Ok(true));
        assert_eq!(decision_needed(Pending, Decision::Reject, "L"), Ok(true));
        assert_eq!(decision_needed(Active, Decision::Approve, "G"), Ok(false));
        assert_eq!(decision_needed(Rejected, Decision::Reject, "L"), Ok(false));
        assert!(decision_needed(Rejected, Decision::Approve, "L").is_err());
        assert!(decision_needed(Active, Decision::Reject, "G").is_err());
    }

    #[test]
    fn counties_within_a_city() {
        let fuzhou = counties_within("350100".parse().unwrap());
        assert!(fuzhou.contains(&"350102".to_owned()));
        assert!(!fuzhou.iter().any(|c| c.starts_with("3502")));
        assert_eq!(counties_within("350102".parse().unwrap()), ["350102"]);
        assert_eq!(counties_within("441900".parse().unwrap()), ["441900"]);
    }
}

/// Why a transfer cannot take a student's enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferRefusal {
    /// 2001: the family's data match no live enrollment (nothing more is said).
    DataMismatch,
    /// 2002: another task is pending on the student.
    PendingTask,
    /// 2003: the record has an open problem.
    ProblemRecord,
    /// The enrollment is not active (pending approval, or closed).
    NotActive,
}

impl TransferRefusal {
    /// The reason of the error's `google.rpc.ErrorInfo`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::DataMismatch => "DATA_MISMATCH",
            Self::PendingTask => "PENDING_TASK",
            Self::ProblemRecord => "PROBLEM_RECORD",
            Self::NotActive => "NOT_ACTIVE",
        }
    }

    /// The national code of the refusal, where the national rules define one.
    pub fn national_code(self) -> Option<&'static str> {
        match self {
            Self::DataMismatch => Some("2001"),
            Self::PendingTask => Some("2002"),
            Self::ProblemRecord => Some("2003"),
            Self::NotActive => None,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::DataMismatch => "the data given do not match a live enrollment",
            Self::PendingTask => "another task is pending on this student",
            Self::ProblemRecord => "the student's record has an open problem",
            Self::NotActive => "the student's enrollment is not active",
        }
    }
}

/// Whether a record found by the number the family gave is theirs, and may be transferred:
/// the name (compared in NFC) and the birth date must both match, then the record must be
/// active and free of problems. The pending-task check is the lock's, in the store.
pub fn check_transfer_match(
    record_name: &str,
    record_birth_date: NaiveDate,
    status: &str,
    has_problem: bool,
    typed_name: &str,
    typed_birth_date: NaiveDate,
) -> Result<(), TransferRefusal> {
    let typed = normalize_name(typed_name).unwrap_or_default();
    if typed != record_name || typed_birth_date != record_birth_date {
        return Err(TransferRefusal::DataMismatch);
    }
    if status != EnrollmentStatus::Active.as_str() {
        return Err(TransferRefusal::NotActive);
    }
    if has_problem {
        return Err(TransferRefusal::ProblemRecord);
    }
    Ok(())
}
