//! Unit tests of the registration rules.

use super::*;

fn school(code: &str) -> School {
    School {
        code: code.parse().unwrap(),
        name: "测试小学".into(),
        division: "350102".parse().unwrap(),
        registry_authority: "350102".parse().unwrap(),
        open_from: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
        open_until: None,
        stages: xueji_codes::default_stages(code.parse::<SchoolCode>().unwrap().category()),
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
        flags: Default::default(),
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
    let registration = validate_registration(input(), Some(school("2135000001")), today()).unwrap();
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
        flags: Default::default(),
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
        promotion_for(
            "L350102201803070001",
            DocumentType::Passport,
            Some("E1234567"),
            division,
            birth
        ),
        Promotion::ToJ {
            division,
            birth_date: birth
        }
    );
    let id = with_check("35010220180307002");
    assert!(matches!(
        promotion_for(
            "L350102201803070001",
            DocumentType::ResidentIdCard,
            Some(&id),
            division,
            birth
        ),
        Promotion::ToG(_)
    ));
    assert_eq!(
        promotion_for(
            &format!("G{id}"),
            DocumentType::ResidentIdCard,
            Some(&id),
            division,
            birth
        ),
        Promotion::Keep
    );
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

#[test]
fn grades_follow_the_length_of_schooling() {
    use xueji_codes::{Stage, StageOffered};
    let with = |code: &str, stages: Vec<StageOffered>| School {
        stages,
        ..school(code)
    };
    let five_four_junior = with(
        "3135000001",
        vec![StageOffered {
            stage: Stage::Junior,
            years: 4,
        }],
    );
    let five_year_primary = with(
        "2135000001",
        vec![StageOffered {
            stage: Stage::Primary,
            years: 5,
        }],
    );
    let at = |school: &School, grade: u32| {
        let mut input = input();
        input.school_code = school.code.to_string();
        input.grade = grade;
        validate_registration(input, Some(school.clone()), today())
    };
    assert!(
        at(&five_four_junior, 6).is_ok(),
        "a 5-4 junior school takes grade 6"
    );
    assert_eq!(fields(at(&five_four_junior, 5)), ["grade"]);
    assert_eq!(fields(at(&five_year_primary, 6)), ["grade"]);
    assert!(at(&five_year_primary, 5).is_ok());
    let message = at(&five_year_primary, 6).unwrap_err()[0]
        .description
        .clone();
    assert!(message.contains("grades 1–5"), "{message}");
}
