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
        rule(rules.check(date("2025-07-15"), &a, &c)),
        Some("transfer_window")
    );
    assert_eq!(
        rule(rules.check(date("2025-08-14"), &a, &c)),
        Some("transfer_window")
    );
    assert_eq!(rule(rules.check(date("2025-08-15"), &a, &c)), None);
    assert_eq!(rule(rules.check(autumn, &a, &b)), Some("same_township"));
    assert_eq!(rule(rules.check(autumn, &a, &c)), None);

    let senior_1 = school("3435000001", "350102", "350100", None);
    let senior_2 = school("3435000002", "350102", "350100", None);
    let senior_3 = school("3435000003", "350103", "350100", None);
    let vocational = school("3635000001", "350103", "350100", None);
    assert_eq!(
        rule(rules.check(autumn, &senior_1, &senior_2)),
        Some("same_county")
    );
    assert_eq!(rule(rules.check(autumn, &senior_1, &senior_3)), None);
    assert_eq!(rule(rules.check(autumn, &senior_1, &vocational)), None);
    assert_eq!(
        rule(rules.check(autumn, &vocational, &senior_3)),
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
    assert!(rules.check(date("2025-11-24"), &a, &b).is_ok());
    assert_eq!(
        rules.check(date("2026-01-02"), &a, &b).unwrap_err().rule,
        "transfer_window",
        "a window across the new year"
    );
    assert!(rules.check(date("2025-07-20"), &a, &b).is_ok());
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
