use chrono::NaiveDate;
use xueji_auth::Level;
use xueji_codes::SchoolCategory;

use super::*;
use crate::SchoolsError;

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
