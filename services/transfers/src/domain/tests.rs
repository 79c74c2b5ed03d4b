use super::*;

fn school(code: &str, division: &str, authority: &str, township: Option<&str>) -> SchoolFacts {
    SchoolFacts {
        code: code.parse().unwrap(),
        division: division.parse().unwrap(),
        registry_authority: authority.parse().unwrap(),
        township: township.map(str::to_owned),
        stages: Vec::new(),
    }
}

/// A grade-3 pupil moving into grade 3, or for senior schools a grade-11 pupil into grade 11.
fn moving<'a>(sending: &'a SchoolFacts, receiving: &'a SchoolFacts) -> Move<'a> {
    let code = sending.code.as_str();
    let grade = if code.starts_with("34") || code.starts_with("36") {
        11
    } else {
        3
    };
    Move {
        sending,
        receiving,
        grade,
        target_grade: grade,
    }
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

#[test]
fn every_province_rule_refuses_with_its_name() {
    let rules = TransferRules::bundled();
    let a = school("2135000001", "350102", "350102", Some("350102001"));
    let b = school("2135000002", "350102", "350102", Some("350102001"));
    let c = school("2135000003", "350103", "350103", Some("350103002"));
    let autumn = date("2025-11-24");
    let rule = |r: Result<(), RuleRefusal>| r.err().map(|e| e.rule);

    assert_eq!(
        rule(rules.check(date("2025-07-15"), &moving(&a, &c))),
        Some("transfer_window")
    );
    assert_eq!(
        rule(rules.check(date("2025-08-14"), &moving(&a, &c))),
        Some("transfer_window")
    );
    assert_eq!(rule(rules.check(date("2025-08-15"), &moving(&a, &c))), None);
    // No township or county ban nationally: Fujian's documents state none.
    assert_eq!(rule(rules.check(autumn, &moving(&a, &b))), None);
    assert_eq!(rule(rules.check(autumn, &moving(&a, &c))), None);
    // Shandong's do: a compulsory-stage move inside one township is refused there.
    let shandong_a = school("2137000001", "370828", "370828", Some("370828101"));
    let shandong_b = school("2137000002", "370828", "370828", Some("370828101"));
    assert_eq!(
        rule(rules.check(autumn, &moving(&shandong_a, &shandong_b))),
        Some("same_township")
    );

    let senior_1 = school("3435000001", "350102", "350100", None);
    let senior_2 = school("3435000002", "350102", "350100", None);
    let senior_3 = school("3435000003", "350103", "350100", None);
    let vocational = school("3635000001", "350103", "350100", None);
    assert_eq!(
        rule(rules.check(autumn, &moving(&senior_1, &senior_2))),
        None
    );
    let county_ban = TransferRules::from_toml(&format!(
        "{}\n[province.35]\nsenior_within_county = true\n",
        include_str!("../../policy/rules.toml")
    ))
    .unwrap();
    assert_eq!(
        rule(county_ban.check(autumn, &moving(&senior_1, &senior_2))),
        Some("same_county")
    );
    assert_eq!(
        rule(rules.check(autumn, &moving(&senior_1, &senior_3))),
        None
    );
    assert_eq!(
        rule(rules.check(autumn, &moving(&senior_1, &vocational))),
        None
    );
    assert_eq!(
        rule(rules.check(autumn, &moving(&vocational, &senior_3))),
        Some("senior_high_target"),
        "never from vocational to senior high"
    );
}

#[test]
fn a_province_section_replaces_the_defaults_it_names() {
    let rules = TransferRules::from_toml(
        r#"
        [defaults]
        closed_windows = [["07-15", "08-14"]]
        compulsory_within_township = true
        senior_within_county = true
        senior_high_targets = ["34", "36"]
        vocational_targets = ["36"]

        [province.35]
        closed_windows = [["12-20", "01-05"]]
        senior_within_county = false
        "#,
    )
    .unwrap();
    let a = school("3435000001", "350102", "350100", None);
    let b = school("3435000002", "350102", "350100", None);
    assert!(rules.check(date("2025-11-24"), &moving(&a, &b)).is_ok());
    assert_eq!(
        rules
            .check(date("2026-01-02"), &moving(&a, &b))
            .unwrap_err()
            .rule,
        "transfer_window",
        "a window across the new year"
    );
    assert!(rules.check(date("2025-07-20"), &moving(&a, &b)).is_ok());
    let bad = TransferRules::from_toml("[defaults]\nclosed_windows = [[\"13-01\", \"01-01\"]]\n");
    assert!(bad.unwrap_err().contains("13-01"));
}

#[test]
fn parties_run_receiving_authority_then_the_sending_side() {
    let receiving = school("2135000001", "350102", "350102", None);
    let sending = school("2134000001", "340102", "340102", None);
    let kinds = |ps: Vec<Party>| {
        ps.into_iter()
            .map(|p| format!("{}@{}", p.kind, p.jurisdiction))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(parties(&receiving, &sending, |_| false)),
        [
            "receiving_authority@350102",
            "sending_school@2134000001",
            "sending_authority@340102"
        ]
    );
    assert_eq!(
        kinds(parties(&receiving, &sending, |p| p == "35" || p == "34")),
        [
            "receiving_authority@350102",
            "receiving_province@350000",
            "sending_school@2134000001",
            "sending_authority@340102",
            "sending_province@340000"
        ]
    );
    let local = school("2135000002", "350103", "350103", None);
    assert_eq!(
        parties(&receiving, &local, |_| true).len(),
        3,
        "no provincial step inside one province"
    );
}

#[test]
fn escalation_climbs_school_county_city_province() {
    let at = |j: &str| Party {
        kind: "k".into(),
        jurisdiction: j.into(),
        province: "35".into(),
    };
    let up = |j: &str| level_above(&at(j), "350102").map(|p| p.jurisdiction);
    assert_eq!(up("2135000001").as_deref(), Some("350102"));
    assert_eq!(up("350102").as_deref(), Some("350100"));
    assert_eq!(up("350100").as_deref(), Some("350000"));
    assert_eq!(up("350000"), None);
}

#[test]
fn a_start_request_answers_every_bad_field() {
    let evidence = vec!["户籍证明-001".to_owned()];
    let good = StartInput {
        idempotency_key: "k1",
        receiving_school_code: "2135000001",
        registry_number: "",
        id_number: "11010520150901002x",
        name: "王小明",
        birth_date: "2015-09-01",
        target_grade: 3,
        reason: "随父母工作调动",
        evidence: &evidence,
    };
    let start = validate_start(&good).unwrap();
    assert_eq!(start.student.as_str(), "11010520150901002X");

    let bad = StartInput {
        idempotency_key: " ",
        receiving_school_code: "123",
        registry_number: "",
        id_number: "",
        name: "",
        birth_date: "2015-13-01",
        target_grade: 13,
        reason: "",
        evidence: &evidence,
    };
    let fields: Vec<&str> = validate_start(&bad)
        .unwrap_err()
        .iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "idempotency_key",
            "receiving_school_code",
            "registry_number",
            "name",
            "birth_date",
            "target_grade",
            "reason"
        ]
    );
}

/// The rules read the pupil's stage: a 完全中学 (category 34, junior and senior stages) teaches
/// junior pupils too, who move to a junior school like any junior pupil; a transfer keeps the
/// stage and moves into the pupil's grade or one beside it.
#[test]
fn the_rules_read_the_pupils_stage_and_grade() {
    use xueji_codes::{Stage, StageOffered};
    let rules = TransferRules::bundled();
    let autumn = date("2025-11-24");
    let mut complete = school("3435000001", "350102", "350100", None);
    complete.stages = vec![
        StageOffered {
            stage: Stage::Junior,
            years: 3,
        },
        StageOffered {
            stage: Stage::Senior,
            years: 3,
        },
    ];
    let mut junior = school("3135000001", "350103", "350103", None);
    junior.stages = vec![StageOffered {
        stage: Stage::Junior,
        years: 3,
    }];
    let mut primary = school("2135000001", "350103", "350103", None);
    primary.stages = vec![StageOffered {
        stage: Stage::Primary,
        years: 6,
    }];
    let mut primary_2 = school("2135000002", "350104", "350104", None);
    primary_2.stages = primary.stages.clone();
    let check = |sending: &SchoolFacts, receiving: &SchoolFacts, grade: u32, target: u32| {
        rules
            .check(
                autumn,
                &Move {
                    sending,
                    receiving,
                    grade,
                    target_grade: target,
                },
            )
            .err()
            .map(|e| e.rule)
    };
    assert_eq!(
        check(&complete, &junior, 8, 8),
        None,
        "a junior pupil of a 完全中学"
    );
    assert_eq!(check(&complete, &junior, 11, 8), Some("target_grade"));
    assert_eq!(check(&primary, &primary_2, 2, 6), Some("target_grade"));
    assert_eq!(check(&primary, &primary_2, 3, 2), None, "one grade down");
    assert_eq!(
        check(&primary, &junior, 6, 7),
        Some("stage"),
        "升学 is not a transfer"
    );
    assert_eq!(check(&junior, &complete, 8, 8), None);
}
