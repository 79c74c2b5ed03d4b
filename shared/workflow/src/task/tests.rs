use super::*;

const POLICY: &str = r#"
    [defaults]
    days = 10
    timeout = "reject"
    escalation_end = "approve"

    [province.34]
    days = 20
    timeout = "approve"

    [province.35]
    days = 2
    timeout = "escalate"
"#;

fn party(kind: &str, jurisdiction: &str) -> Party {
    Party {
        kind: kind.into(),
        jurisdiction: jurisdiction.into(),
        // A school code carries its province in digits 3–4, a division code in digits 1–2.
        province: if jurisdiction.len() == 10 {
            jurisdiction[2..4].into()
        } else {
            jurisdiction[..2].into()
        },
    }
}

fn above(party: &Party) -> Option<Party> {
    let j = &party.jurisdiction;
    let up = if !j.ends_with("00") {
        format!("{}00", &j[..4])
    } else if !j.ends_with("0000") {
        format!("{}0000", &j[..2])
    } else {
        return None;
    };
    Some(Party {
        jurisdiction: up,
        ..party.clone()
    })
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn decision(verdict: Verdict, by: &str, when: &str, reason: &str) -> Decision {
    Decision {
        verdict,
        by: by.into(),
        at: at(when),
        reason: reason.into(),
        on_timeout: false,
    }
}

fn with_rules<T>(f: impl FnOnce(&Rules<'_>) -> T) -> T {
    let policy = Policy::from_toml(POLICY).unwrap();
    f(&Rules {
        policy: &policy,
        calendar: WorkingCalendar::bundled(),
        level_above: &above,
    })
}

fn three_parties() -> Vec<Party> {
    vec![
        party("receiving_authority", "350102"),
        party("sending_school", "2134000001"),
        party("sending_authority", "340102"),
    ]
}

#[test]
fn parties_decide_in_order_and_the_last_approval_finishes() {
    with_rules(|rules| {
        // Monday 2025-11-24, 10:00 in China.
        let mut task = Task::start(three_parties(), at("2025-11-24T02:00:00Z"), rules);
        let first = &task.steps[0];
        assert_eq!(first.state, StepState::Open);
        // Fujian: 2 working days → Wednesday, passing at midnight China time.
        assert_eq!(first.due_at, Some(at("2025-11-26T16:00:00Z")));
        assert_eq!(first.timeout, TimeoutAction::Escalate);

        let early = task.decide(
            1,
            decision(Verdict::Approve, "s", "2025-11-24T03:00:00Z", ""),
            rules,
        );
        assert_eq!(
            early,
            Err(WorkflowError::OutOfTurn {
                attempted: 1,
                open: 0
            })
        );

        let advanced = task.decide(
            0,
            decision(Verdict::Approve, "a", "2025-11-24T03:00:00Z", ""),
            rules,
        );
        assert_eq!(advanced, Ok(Outcome::Advanced { opened: 1 }));
        // Anhui's school: 20 working days, approve on timeout.
        assert_eq!(task.steps[1].timeout, TimeoutAction::Approve);
        assert_eq!(
            task.steps[1].deadline.unwrap().date,
            "2025-12-22".parse().unwrap()
        );

        let retry = task.decide(
            0,
            decision(Verdict::Approve, "a", "2025-11-24T03:00:01Z", ""),
            rules,
        );
        assert_eq!(retry, Ok(Outcome::AlreadyApplied));
        let second_approver = task.decide(
            0,
            decision(Verdict::Approve, "b", "2025-11-24T03:00:02Z", ""),
            rules,
        );
        assert_eq!(second_approver, Ok(Outcome::AlreadyApplied));
        assert_eq!(
            task.steps[0].decision.as_ref().unwrap().by,
            "a",
            "the first decision stays"
        );
        let other = task.decide(
            0,
            decision(Verdict::Reject, "b", "2025-11-24T03:00:01Z", "no"),
            rules,
        );
        assert_eq!(other, Err(WorkflowError::DecidedOtherwise(0)));

        task.decide(
            1,
            decision(Verdict::Approve, "s", "2025-11-25T03:00:00Z", ""),
            rules,
        )
        .unwrap();
        let done = task.decide(
            2,
            decision(Verdict::Approve, "c", "2025-11-26T03:00:00Z", ""),
            rules,
        );
        assert_eq!(done, Ok(Outcome::Finished(TaskState::Approved)));
        assert_eq!(task.state, TaskState::Approved);
        assert_eq!(
            task.cancel("r", "changed our mind", at("2025-11-27T00:00:00Z")),
            Err(WorkflowError::Finished(TaskState::Approved))
        );
    });
}

#[test]
fn a_rejection_needs_a_reason_and_ends_the_task() {
    with_rules(|rules| {
        let mut task = Task::start(three_parties(), at("2025-11-24T02:00:00Z"), rules);
        let unexplained = task.decide(
            0,
            decision(Verdict::Reject, "a", "2025-11-24T03:00:00Z", " "),
            rules,
        );
        assert_eq!(unexplained, Err(WorkflowError::ReasonRequired));
        let rejected = task.decide(
            0,
            decision(Verdict::Reject, "a", "2025-11-24T03:00:00Z", "学位已满"),
            rules,
        );
        assert_eq!(rejected, Ok(Outcome::Finished(TaskState::Rejected)));
        assert_eq!(task.steps[1].state, StepState::Skipped);
        assert_eq!(task.ended.as_ref().unwrap().reason, "学位已满");
    });
}

#[test]
fn cancellation_ends_the_task_once() {
    with_rules(|rules| {
        let mut task = Task::start(three_parties(), at("2025-11-24T02:00:00Z"), rules);
        assert_eq!(
            task.cancel("r", "", at("2025-11-24T03:00:00Z")),
            Err(WorkflowError::ReasonRequired)
        );
        assert_eq!(
            task.cancel("r", "家长撤回", at("2025-11-24T03:00:00Z")),
            Ok(Outcome::Finished(TaskState::Cancelled))
        );
        assert_eq!(
            task.cancel("r", "家长撤回", at("2025-11-24T03:00:01Z")),
            Ok(Outcome::AlreadyApplied)
        );
        assert!(task.steps.iter().all(|s| s.state == StepState::Skipped));
    });
}

#[test]
fn timeouts_approve_reject_or_escalate_as_the_policy_says() {
    with_rules(|rules| {
        let start = at("2025-11-24T02:00:00Z");
        let mut task = Task::start(three_parties(), start, rules);
        // Not due one second before midnight in China on Wednesday.
        assert_eq!(
            task.expire(at("2025-11-26T15:59:59Z"), rules),
            Outcome::NotDue
        );
        // Fujian escalates: county 350102 → city 350100 → province 350000 → the end: approve.
        assert_eq!(
            task.expire(at("2025-11-26T16:00:00Z"), rules),
            Outcome::Escalated { position: 0 }
        );
        assert_eq!(task.steps[0].party.jurisdiction, "350100");
        let due = task.steps[0].due_at.unwrap();
        assert_eq!(task.expire(due, rules), Outcome::Escalated { position: 0 });
        assert_eq!(task.steps[0].party.jurisdiction, "350000");
        let due = task.steps[0].due_at.unwrap();
        assert_eq!(task.expire(due, rules), Outcome::Advanced { opened: 1 });
        assert!(task.steps[0].decision.as_ref().unwrap().on_timeout);
        assert_eq!(task.steps[0].escalations, 2);

        // Anhui approves on timeout.
        let due = task.steps[1].due_at.unwrap();
        assert_eq!(task.expire(due, rules), Outcome::Advanced { opened: 2 });
        assert_eq!(
            task.steps[1].decision.as_ref().unwrap().verdict,
            Verdict::Approve
        );
        let due = task.steps[2].due_at.unwrap();
        assert_eq!(
            task.expire(due, rules),
            Outcome::Finished(TaskState::Approved)
        );
        assert_eq!(task.expire(due, rules), Outcome::NotDue);
    });
}

#[test]
fn the_default_timeout_rejects() {
    with_rules(|rules| {
        let parties = vec![party("receiving_authority", "110102")];
        let mut task = Task::start(parties, at("2025-11-24T02:00:00Z"), rules);
        let due = task.steps[0].due_at.unwrap();
        assert_eq!(
            task.expire(due, rules),
            Outcome::Finished(TaskState::Rejected)
        );
        assert!(task.ended.as_ref().unwrap().on_timeout);
    });
}
