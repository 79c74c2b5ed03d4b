use chrono::{DateTime, Utc};
use proptest::prelude::*;
use xueji_calendar::WorkingCalendar;

use super::*;
use crate::{Decision, Policy, TimeoutAction, Verdict};

const POLICY: &str = r#"
    [defaults]
    days = 10
    timeout = "reject"
    escalation_end = "approve"
"#;

fn party(kind: &str, jurisdiction: &str) -> Party {
    Party {
        kind: kind.into(),
        jurisdiction: jurisdiction.into(),
        province: province_of_jurisdiction(jurisdiction).unwrap().into(),
    }
}

/// Fujian (35) receives, Anhui (34) sends.
fn parties() -> Vec<Party> {
    vec![
        party("receiving_authority", "350102"),
        party("sending_school", "2134000001"),
        party("sending_authority", "340102"),
    ]
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn decision(verdict: Verdict, by: &str) -> Decision {
    Decision {
        verdict,
        by: by.into(),
        at: at("2025-11-24T02:00:00Z"),
        reason: if verdict == Verdict::Reject {
            "no".into()
        } else {
            String::new()
        },
        on_timeout: false,
    }
}

fn with_rules<T>(f: impl FnOnce(&Rules<'_>) -> T) -> T {
    let policy = Policy::from_toml(POLICY).unwrap();
    f(&Rules {
        policy: &policy,
        calendar: WorkingCalendar::bundled(),
        level_above: &|_: &Party| None,
    })
}

fn receiving_parties(p: &Party) -> bool {
    p.kind.starts_with("receiving_")
}
fn sending_parties(p: &Party) -> bool {
    p.kind.starts_with("sending_") && (p.jurisdiction == "2134000001" || p.jurisdiction == "340102")
}

/// The sending side (Anhui) taking Fujian's copies.
fn anhui() -> Counterpart<'static> {
    Counterpart {
        local_province: "34",
        remote_province: "35",
        local_party: &sending_parties,
        remote_party: &receiving_parties,
    }
}

/// The receiving side (Fujian) taking Anhui's copies.
fn fujian() -> Counterpart<'static> {
    Counterpart {
        local_province: "35",
        remote_province: "34",
        local_party: &receiving_parties,
        remote_party: &|p: &Party| p.kind.starts_with("sending_"),
    }
}

const NOW: &str = "2025-11-24T02:00:00Z";

/// Fujian's task with its authority's approval, and Anhui's first copy of it.
fn approved_by_fujian(now: DateTime<Utc>, rules: &Rules<'_>) -> (Task, Task) {
    let mut fj = Task::start(parties(), now, rules);
    fj.decide(0, decision(Verdict::Approve, "fj-approver"), rules)
        .unwrap();
    let mut ah = Task {
        state: TaskState::InProgress,
        steps: Vec::new(),
        ended: None,
    };
    ah.merge_remote(&fj, &anhui(), now, rules).unwrap();
    (fj, ah)
}

#[test]
fn an_honest_transfer_runs_through_both_copies() {
    with_rules(|rules| {
        let now = at(NOW);
        let mut fj = Task::start(parties(), now, rules);
        fj.decide(0, decision(Verdict::Approve, "fj-approver"), rules)
            .unwrap();
        let mut ah = Task {
            state: TaskState::InProgress,
            steps: Vec::new(),
            ended: None,
        };
        assert!(ah.merge_remote(&fj, &anhui(), now, rules).unwrap());
        // Anhui took Fujian's decision and opened its own school's step with its own rules.
        assert_eq!(ah.steps[0].state, StepState::Approved);
        assert_eq!(ah.steps[1].state, StepState::Open);
        assert_eq!(ah.steps[1].timeout, TimeoutAction::Reject);
        ah.decide(1, decision(Verdict::Approve, "ah-school"), rules)
            .unwrap();
        assert!(fj.merge_remote(&ah, &fujian(), now, rules).unwrap());
        assert_eq!(fj.steps[1].state, StepState::Approved);
        // Fujian does not open Anhui's step: Anhui does, and says so.
        assert_eq!(fj.steps[2].state, StepState::Open);
        ah.decide(2, decision(Verdict::Approve, "ah-authority"), rules)
            .unwrap();
        assert_eq!(ah.state, TaskState::Approved);
        assert!(ah.steps_of_decided("34"));
        fj.merge_remote(&ah, &fujian(), now, rules).unwrap();
        assert_eq!(fj.state, TaskState::Approved);
        // An echo of an older copy changes nothing, and a finished task takes nothing.
        assert_eq!(
            fj.merge_remote(&ah, &fujian(), now, rules),
            Err(MergeError::Finished(TaskState::Approved))
        );
    });
}

#[test]
fn a_forged_approval_of_the_other_sides_steps_is_refused() {
    with_rules(|rules| {
        let now = at(NOW);
        let (fj, mut ah) = approved_by_fujian(now, rules);
        let before = ah.clone();
        // Fujian claims every step approved, Anhui's included (the attack of review C1).
        let mut forged = fj.clone();
        for step in &mut forged.steps[1..] {
            step.state = StepState::Approved;
            step.decision = Some(decision(Verdict::Approve, "forged"));
        }
        forged.state = TaskState::Approved;
        assert!(!ah.merge_remote(&forged, &anhui(), now, rules).unwrap());
        // Rewriting Fujian's own decided step as well is refused whole.
        forged.steps[0].decision = Some(decision(Verdict::Approve, "forged"));
        assert!(ah.merge_remote(&forged, &anhui(), now, rules).is_err());
        // Anhui's own steps are untouched: its school's turn is still open.
        assert_eq!(ah, before);
        assert!(!ah.steps_of_decided("34"));
    });
}

#[test]
fn a_party_moved_out_of_its_province_or_a_bad_code_is_refused() {
    with_rules(|rules| {
        let now = at(NOW);
        let fj = Task::start(parties(), now, rules);
        let mut ah = Task {
            state: TaskState::InProgress,
            steps: Vec::new(),
            ended: None,
        };
        let mut bad = fj.clone();
        bad.steps[0].party.jurisdiction = "351é1".into();
        assert!(matches!(
            ah.clone().merge_remote(&bad, &anhui(), now, rules),
            Err(MergeError::Refused { position: 0, .. })
        ));
        let mut bad = fj.clone();
        bad.steps[1].party.jurisdiction = "2134999999".into();
        assert!(matches!(
            ah.clone().merge_remote(&bad, &anhui(), now, rules),
            Err(MergeError::Refused { position: 1, .. })
        ));
        let mut bad = fj.clone();
        bad.steps[0].state = StepState::Approved;
        bad.steps[0].decision = None;
        assert!(ah.merge_remote(&bad, &anhui(), now, rules).is_err());
    });
}

#[test]
fn the_other_side_cancels_and_rejects_but_cannot_revive() {
    with_rules(|rules| {
        let now = at(NOW);
        let (fj, mut ah) = approved_by_fujian(now, rules);
        let mut cancelled = fj.clone();
        cancelled.cancel("fj-school", "family stays", now).unwrap();
        ah.merge_remote(&cancelled, &anhui(), now, rules).unwrap();
        assert_eq!(ah.state, TaskState::Cancelled);
        assert_eq!(
            ah.merge_remote(&fj, &anhui(), now, rules),
            Err(MergeError::Finished(TaskState::Cancelled))
        );
        // Fujian's copy of a rejection by Anhui.
        let mut fj2 = Task::start(parties(), now, rules);
        fj2.decide(0, decision(Verdict::Approve, "fj-approver"), rules)
            .unwrap();
        let mut ah2 = Task {
            state: TaskState::InProgress,
            steps: Vec::new(),
            ended: None,
        };
        ah2.merge_remote(&fj2, &anhui(), now, rules).unwrap();
        ah2.decide(1, decision(Verdict::Reject, "ah-school"), rules)
            .unwrap();
        fj2.merge_remote(&ah2, &fujian(), now, rules).unwrap();
        assert_eq!(fj2.state, TaskState::Rejected);
    });
}

fn any_state() -> impl Strategy<Value = StepState> {
    prop_oneof![
        Just(StepState::Waiting),
        Just(StepState::Open),
        Just(StepState::Approved),
        Just(StepState::Rejected),
        Just(StepState::Skipped),
    ]
}

fn any_task_state() -> impl Strategy<Value = TaskState> {
    prop_oneof![
        Just(TaskState::InProgress),
        Just(TaskState::Approved),
        Just(TaskState::Rejected),
        Just(TaskState::Cancelled),
    ]
}

proptest! {
    /// Whatever copy arrives, the steps of the receiving node's own province never change
    /// but by its own rules (a step whose turn came opens), and it never ends approved
    /// without its own approvals.
    #[test]
    fn no_copy_decides_a_step_of_the_receiving_province(
        states in proptest::collection::vec(any_state(), 3),
        decided in proptest::collection::vec(any::<bool>(), 3),
        task_state in any_task_state(),
        jurisdictions in proptest::collection::vec("[0-9é]{0,11}", 3),
        swap in any::<bool>(),
        local_first in any::<bool>(),
    ) {
        with_rules(|rules| {
            let now = at(NOW);
            let (fj, mut ah) = approved_by_fujian(now, rules);
            if local_first {
                ah.decide(1, decision(Verdict::Approve, "ah-school"), rules).unwrap();
            }
            let before = ah.clone();
            let mut forged = fj.clone();
            for (i, step) in forged.steps.iter_mut().enumerate() {
                step.state = states[i];
                step.decision = decided[i].then(|| decision(
                    if states[i] == StepState::Rejected { Verdict::Reject } else { Verdict::Approve },
                    "forged",
                ));
                if swap {
                    step.party.jurisdiction = jurisdictions[i].clone();
                }
            }
            forged.state = task_state;
            if task_state == TaskState::Cancelled {
                forged.ended = Some(decision(Verdict::Reject, "fj-school"));
            }
            let result = ah.merge_remote(&forged, &anhui(), now, rules);
            if result.is_err() {
                prop_assert_eq!(&ah, &before);
            }
            for position in 1..3 {
                let (was, is) = (&before.steps[position], &ah.steps[position]);
                if ah.state != TaskState::Cancelled && ah.state != TaskState::Rejected {
                    prop_assert_eq!(was, is);
                } else {
                    // Ended: a step of its own may only be skipped, never decided.
                    prop_assert_eq!(&was.decision, &is.decision);
                }
            }
            prop_assert!(ah.state != TaskState::Approved);
            Ok(())
        })?;
    }
}

#[test]
fn escalation_of_a_party_whose_code_is_not_digits_goes_nowhere() {
    let odd = Party {
        kind: "receiving_authority".into(),
        jurisdiction: "351é1".into(),
        province: "35".into(),
    };
    assert_eq!(crate::level_above(&odd, "350102"), None);
    let school = party("sending_school", "2134000001");
    assert_eq!(crate::level_above(&school, "34é1"), None);
    assert_eq!(
        crate::level_above(&school, "340102").map(|p| p.jurisdiction),
        Some("340102".into())
    );
    assert_eq!(
        crate::level_above(&party("x", "340102"), "").map(|p| p.jurisdiction),
        Some("340100".into())
    );
    assert_eq!(province_of_jurisdiction("2134000001"), Some("34"));
    assert_eq!(province_of_jurisdiction("34é1"), None);
}
