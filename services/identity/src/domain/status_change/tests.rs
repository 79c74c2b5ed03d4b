//! One test per rule of the bundled status_changes.toml, named after it, plus the file's own
//! checks.

use super::*;
use xueji_codes::StageOffered;

fn primary() -> Vec<StageOffered> {
    vec![StageOffered {
        stage: Stage::Primary,
        years: 6,
    }]
}

fn junior() -> Vec<StageOffered> {
    vec![StageOffered {
        stage: Stage::Junior,
        years: 3,
    }]
}

fn senior() -> Vec<StageOffered> {
    vec![StageOffered {
        stage: Stage::Senior,
        years: 3,
    }]
}

fn active() -> RecordState {
    RecordState {
        status: EnrollmentStatus::Active,
        left_reason: None,
    }
}

fn state(text: &str) -> RecordState {
    RecordState::parse(text).unwrap()
}

fn request(kind: ChangeKind, evidence: usize, grounds: &str) -> ChangeRequest {
    ChangeRequest {
        kind,
        reason: "理由".into(),
        effective_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        evidence,
        grounds: grounds.into(),
    }
}

/// Checks `kind` in Fujian (national rules).
fn check(
    kind: ChangeKind,
    from: RecordState,
    grade: u32,
    stages: &[StageOffered],
    evidence: usize,
    grounds: &str,
) -> Result<Transition, Vec<&'static str>> {
    let rules = ChangeRules::bundled();
    check_change(
        rules.rule("35", kind),
        &request(kind, evidence, grounds),
        from,
        grade,
        stages,
    )
    .map_err(|v| v.into_iter().map(|v| v.field).collect())
}

#[test]
fn rule_suspension_needs_evidence_and_not_a_graduating_grade() {
    use ChangeKind::Suspension;
    let done = check(Suspension, active(), 3, &primary(), 1, "").unwrap();
    assert_eq!(done.to, state("suspended"));
    assert_eq!(
        check(Suspension, active(), 3, &primary(), 0, ""),
        Err(vec!["evidence_ids"])
    );
    assert_eq!(
        check(Suspension, active(), 6, &primary(), 1, ""),
        Err(vec!["kind"])
    );
    assert_eq!(
        check(Suspension, state("suspended"), 3, &primary(), 1, ""),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_resumption_needs_a_prior_suspension() {
    use ChangeKind::Resumption;
    assert_eq!(
        check(Resumption, state("suspended"), 3, &primary(), 0, "")
            .unwrap()
            .to,
        active()
    );
    assert_eq!(
        check(Resumption, active(), 3, &primary(), 0, ""),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_dropout_only_in_the_compulsory_stage() {
    use ChangeKind::Dropout;
    assert_eq!(
        check(Dropout, active(), 8, &junior(), 0, "").unwrap().to,
        state("dropped_out")
    );
    assert_eq!(
        check(Dropout, active(), 11, &senior(), 0, ""),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_return_after_dropping_out() {
    use ChangeKind::Return;
    assert_eq!(
        check(Return, state("dropped_out"), 8, &junior(), 0, "")
            .unwrap()
            .to,
        active()
    );
    assert_eq!(
        check(Return, state("suspended"), 8, &junior(), 0, ""),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_withdrawal_in_the_compulsory_stage_only_on_emigration() {
    use ChangeKind::Withdrawal;
    assert_eq!(
        check(Withdrawal, active(), 3, &primary(), 1, "other"),
        Err(vec!["grounds"])
    );
    let done = check(Withdrawal, active(), 3, &primary(), 1, "emigration").unwrap();
    assert_eq!(done.to, state("left:withdrawal"));
    assert!(check(Withdrawal, active(), 11, &senior(), 1, "").is_ok());
}

#[test]
fn rule_expulsion_never_in_the_compulsory_stage() {
    use ChangeKind::Expulsion;
    assert_eq!(
        check(Expulsion, active(), 8, &junior(), 1, ""),
        Err(vec!["kind"])
    );
    assert_eq!(
        check(Expulsion, active(), 11, &senior(), 1, "").unwrap().to,
        state("left:expulsion")
    );
}

#[test]
fn rule_reinstatement_after_withdrawal_expulsion_or_other_departure() {
    use ChangeKind::Reinstatement;
    for from in ["left:withdrawal", "left:expulsion", "left:other"] {
        assert_eq!(
            check(Reinstatement, state(from), 11, &senior(), 1, "")
                .unwrap()
                .to,
            active()
        );
    }
    assert_eq!(
        check(Reinstatement, state("left:abroad"), 11, &senior(), 1, ""),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_study_abroad_and_return_from_abroad() {
    assert_eq!(
        check(ChangeKind::StudyAbroad, active(), 4, &primary(), 1, "")
            .unwrap()
            .to,
        state("left:abroad")
    );
    assert_eq!(
        check(
            ChangeKind::ReturnFromAbroad,
            state("left:abroad"),
            4,
            &primary(),
            0,
            ""
        )
        .unwrap()
        .to,
        active()
    );
    assert_eq!(
        check(
            ChangeKind::ReturnFromAbroad,
            state("left:missing"),
            4,
            &primary(),
            0,
            ""
        ),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_missing_and_found() {
    assert_eq!(
        check(ChangeKind::Missing, active(), 4, &primary(), 0, "")
            .unwrap()
            .to,
        state("left:missing")
    );
    assert_eq!(
        check(
            ChangeKind::Found,
            state("left:missing"),
            4,
            &primary(),
            0,
            ""
        )
        .unwrap()
        .to,
        active()
    );
}

#[test]
fn rule_death_closes_the_record_on_evidence() {
    use ChangeKind::Death;
    assert_eq!(
        check(Death, active(), 4, &primary(), 1, "").unwrap().to,
        state("deceased")
    );
    assert_eq!(
        check(Death, active(), 4, &primary(), 0, ""),
        Err(vec!["evidence_ids"])
    );
    assert_eq!(
        check(Death, state("deceased"), 4, &primary(), 1, ""),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_other_departure() {
    assert_eq!(
        check(ChangeKind::OtherDeparture, active(), 4, &primary(), 0, "")
            .unwrap()
            .to,
        state("left:other")
    );
}

#[test]
fn rule_repeat_year_never_in_the_compulsory_stage_nor_the_final_senior_year() {
    use ChangeKind::RepeatYear;
    let done = check(RepeatYear, active(), 11, &senior(), 0, "").unwrap();
    assert_eq!((done.to, done.grade_after(11)), (active(), 10));
    assert_eq!(
        check(RepeatYear, active(), 4, &primary(), 0, ""),
        Err(vec!["kind"])
    );
    assert_eq!(
        check(RepeatYear, active(), 12, &senior(), 0, ""),
        Err(vec!["kind"])
    );
    // Grade 10 would repeat into grade 9, another stage.
    assert_eq!(
        check(RepeatYear, active(), 10, &senior(), 0, ""),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_skip_year_never_across_a_stage() {
    use ChangeKind::SkipYear;
    assert_eq!(
        check(SkipYear, active(), 3, &primary(), 1, "")
            .unwrap()
            .grade_after(3),
        4
    );
    assert_eq!(
        check(SkipYear, active(), 6, &primary(), 1, ""),
        Err(vec!["kind"])
    );
}

#[test]
fn rule_suspension_extension_counts_from_the_terms_end_a_suspension_lasts_a_year() {
    use ChangeKind::{Suspension, SuspensionExtension};
    let day = |text: &str| text.parse::<NaiveDate>().unwrap();
    let suspended = check(Suspension, active(), 3, &primary(), 1, "").unwrap();
    let term = suspended.term.expect("a suspension has a term");
    assert_eq!(term.ends(day("2026-03-01"), None), day("2027-03-01"));
    // Extended late (on 2027-04-15), the year still runs from the old term's end.
    let extended = check(
        SuspensionExtension,
        state("suspended"),
        3,
        &primary(),
        1,
        "",
    )
    .unwrap();
    assert_eq!(extended.to, state("suspended"));
    let term = extended.term.expect("an extension has a term");
    assert_eq!(
        term.ends(day("2027-04-15"), Some(day("2027-03-01"))),
        day("2028-03-01")
    );
    // An extension is for a suspended record, on evidence.
    assert_eq!(
        check(SuspensionExtension, active(), 3, &primary(), 1, ""),
        Err(vec!["kind"])
    );
    assert_eq!(
        check(
            SuspensionExtension,
            state("suspended"),
            3,
            &primary(),
            0,
            ""
        ),
        Err(vec!["evidence_ids"])
    );
    // Any other change carries no term.
    let resumed = check(
        ChangeKind::Resumption,
        state("suspended"),
        3,
        &primary(),
        0,
        "",
    );
    assert_eq!(resumed.unwrap().term, None);
}

#[test]
fn a_province_sets_its_own_suspension_term_and_a_bad_one_is_refused() {
    let text = format!("{BUNDLED_RULES}\n[province.34.change.suspension]\nterm_months = 6\n");
    let rules = ChangeRules::from_toml(&text).unwrap();
    assert_eq!(rules.rule("34", ChangeKind::Suspension).term_months, 6);
    assert_eq!(rules.rule("35", ChangeKind::Suspension).term_months, 12);
    let none = BUNDLED_RULES.replacen("term_months = 12\n", "", 1);
    let error = ChangeRules::from_toml(&none).unwrap_err();
    assert!(
        error.contains("[change.suspension]: `term_months` is missing"),
        "{error}"
    );
    let misplaced = format!("{BUNDLED_RULES}\n[province.34.change.dropout]\nterm_months = 6\n");
    let error = ChangeRules::from_toml(&misplaced).unwrap_err();
    assert!(
        error.contains("only to a change into `suspended`"),
        "{error}"
    );
}

#[test]
fn every_change_has_a_named_test() {
    let tests = include_str!("tests.rs");
    for kind in ChangeKind::ALL {
        let names_it = tests.contains(&format!("fn rule_{}", kind.as_str()))
            || tests.contains(&format!("_{}", kind.as_str()))
                && tests.contains(&format!("ChangeKind::{kind:?}"));
        assert!(names_it, "no test names the rule of {}", kind.as_str());
    }
}

#[test]
fn a_province_overrides_a_rule_or_turns_it_off() {
    let text = format!(
        "{BUNDLED_RULES}\n[province.34.change.suspension]\nevidence = 2\n\
         [province.34.change.missing]\nallowed = false\n"
    );
    let rules = ChangeRules::from_toml(&text).unwrap();
    assert_eq!(rules.rule("34", ChangeKind::Suspension).evidence, 2);
    assert_eq!(rules.rule("35", ChangeKind::Suspension).evidence, 1);
    let missing = check_change(
        rules.rule("34", ChangeKind::Missing),
        &request(ChangeKind::Missing, 0, ""),
        active(),
        4,
        &primary(),
    );
    assert_eq!(missing.unwrap_err()[0].field, "kind");
}

#[test]
fn bad_rules_files_are_refused_with_the_reason() {
    let unknown = BUNDLED_RULES.replace("[change.found]", "[change.lost_and_found]");
    assert!(
        ChangeRules::from_toml(&unknown)
            .unwrap_err()
            .contains("lost_and_found")
    );
    let state = BUNDLED_RULES.replace("to = \"deceased\"", "to = \"gone\"");
    assert!(ChangeRules::from_toml(&state).unwrap_err().contains("gone"));
    let grade = BUNDLED_RULES.replace("grade = -1", "grade = -2");
    assert!(
        ChangeRules::from_toml(&grade)
            .unwrap_err()
            .contains("grade")
    );
}
