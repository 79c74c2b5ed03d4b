//! One task and its steps: the state machine.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use xueji_calendar::{Deadline, WorkingCalendar, china_today, end_of_day};

use crate::policy::Policy;
pub use crate::timeout::TimeoutAction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Approve,
    Reject,
}

/// Who acts in one step: a kind of party (what the owning service calls it), the jurisdiction
/// (a division code or a school code) and its province, whose policy sets the step's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub kind: String,
    pub jurisdiction: String,
    pub province: String,
}

/// A decision, by a person or by the system on a timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// The deciding user, or `system` for a timeout.
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
    pub on_timeout: bool,
}

impl Decision {
    /// Whether `other` is this decision as another copy carries it: the same verdict by the
    /// same decider the same way (the instant may have lost precision in storage).
    pub fn same_as(&self, other: &Decision) -> bool {
        self.verdict == other.verdict
            && self.by == other.by
            && self.on_timeout == other.on_timeout
            && (self.at - other.at).num_milliseconds().abs() < 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepState {
    /// Not its turn yet.
    Waiting,
    /// Its turn: the deadline runs.
    Open,
    Approved,
    Rejected,
    /// The task ended (rejected or cancelled) before this step's turn.
    Skipped,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Open => "open",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "waiting" => Some(Self::Waiting),
            "open" => Some(Self::Open),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            "skipped" => Some(Self::Skipped),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub party: Party,
    pub state: StepState,
    /// Set when the step opens, once (again on an escalation, for the new party).
    pub deadline: Option<Deadline>,
    /// The instant the deadline passes: the end of its last working day in China.
    pub due_at: Option<DateTime<Utc>>,
    pub timeout: TimeoutAction,
    pub decision: Option<Decision>,
    /// How many times the turn went up a level.
    pub escalations: u32,
}

impl Step {
    pub fn new(party: Party) -> Self {
        Self {
            party,
            state: StepState::Waiting,
            deadline: None,
            due_at: None,
            timeout: TimeoutAction::Reject,
            decision: None,
            escalations: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    InProgress,
    Approved,
    Rejected,
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "in_progress" => Some(Self::InProgress),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }

    pub fn is_terminal(self) -> bool {
        self != Self::InProgress
    }
}

/// What one event did to the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The step was decided; the next one (this position) is open now.
    Advanced { opened: usize },
    /// The turn went up a level (same position, new party, new deadline).
    Escalated { position: usize },
    /// The task ended in this state with this event.
    Finished(TaskState),
    /// The same event had been applied already: nothing changed.
    AlreadyApplied,
    /// A deadline that had not passed, or a step no longer open: nothing to do.
    NotDue,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("the task is already {}", .0.as_str())]
    Finished(TaskState),
    #[error("it is not step {attempted}'s turn: step {open} is waiting for its decision")]
    OutOfTurn { attempted: usize, open: usize },
    #[error("step {0} was already decided otherwise")]
    DecidedOtherwise(usize),
    #[error("a rejection needs a reason")]
    ReasonRequired,
    #[error("there is no step {0}")]
    NoSuchStep(usize),
}

/// A task on one student: its steps in order, and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub state: TaskState,
    pub steps: Vec<Step>,
    /// Set when the task ended: by whom, when, why (cancellation or final rejection).
    pub ended: Option<Decision>,
}

/// What the workflow needs to open a step: the policy, the national calendar and, for
/// escalation, the party one level above a party (none at the top).
pub struct Rules<'a> {
    pub policy: &'a Policy,
    pub calendar: &'a WorkingCalendar,
    pub level_above: &'a dyn Fn(&Party) -> Option<Party>,
}

impl std::fmt::Debug for Rules<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules").finish_non_exhaustive()
    }
}

impl Task {
    /// Who decided each decided step, in step order, as "kind jurisdiction: who" (e.g.
    /// "receiving_school 3501020001: school:3501020001/approver/王老师"): what a record moved by
    /// the task names as its deciders.
    pub fn deciders(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|step| {
                let decision = step.decision.as_ref()?;
                Some(format!(
                    "{} {}: {}",
                    step.party.kind, step.party.jurisdiction, decision.by
                ))
            })
            .collect()
    }

    /// A task whose first step opens at `now`.
    pub fn start(parties: Vec<Party>, now: DateTime<Utc>, rules: &Rules<'_>) -> Self {
        let mut task = Self {
            state: TaskState::InProgress,
            steps: parties.into_iter().map(Step::new).collect(),
            ended: None,
        };
        task.open(0, now, rules);
        task
    }

    /// The position of the step whose turn it is.
    pub fn open_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.state == StepState::Open)
    }

    pub(crate) fn open(&mut self, position: usize, now: DateTime<Utc>, rules: &Rules<'_>) {
        let step = &mut self.steps[position];
        let rule = rules
            .policy
            .step_rule(&step.party.province, &step.party.kind);
        let calendar = rules
            .policy
            .calendar_of(rules.calendar, &step.party.province);
        let deadline = calendar.deadline(china_today(now), rule.days);
        step.state = StepState::Open;
        step.deadline = Some(deadline);
        step.due_at = Some(end_of_day(deadline.date));
        step.timeout = rule.timeout;
    }

    /// Applies a decision to the step at `position`. The same decision applied again (a retry)
    /// changes nothing and answers [`Outcome::AlreadyApplied`].
    pub fn decide(
        &mut self,
        position: usize,
        decision: Decision,
        rules: &Rules<'_>,
    ) -> Result<Outcome, WorkflowError> {
        let step = self
            .steps
            .get(position)
            .ok_or(WorkflowError::NoSuchStep(position))?;
        if let Some(previous) = &step.decision {
            // The same verdict again, by the same approver (a retry) or by another approver of
            // the same party (two registrars at one desk), leaves the task as it is: only the
            // opposite verdict is refused. The first decision stays the one recorded.
            return if previous.verdict == decision.verdict {
                Ok(Outcome::AlreadyApplied)
            } else {
                Err(WorkflowError::DecidedOtherwise(position))
            };
        }
        if self.state.is_terminal() {
            return Err(WorkflowError::Finished(self.state));
        }
        if decision.verdict == Verdict::Reject && decision.reason.trim().is_empty() {
            return Err(WorkflowError::ReasonRequired);
        }
        let open = self
            .open_step()
            .ok_or(WorkflowError::Finished(self.state))?;
        if open != position {
            return Err(WorkflowError::OutOfTurn {
                attempted: position,
                open,
            });
        }
        Ok(self.apply(position, decision, rules))
    }

    fn apply(&mut self, position: usize, decision: Decision, rules: &Rules<'_>) -> Outcome {
        let verdict = decision.verdict;
        let at = decision.at;
        let step = &mut self.steps[position];
        step.state = match verdict {
            Verdict::Approve => StepState::Approved,
            Verdict::Reject => StepState::Rejected,
        };
        step.decision = Some(decision.clone());
        match verdict {
            Verdict::Reject => {
                self.end(TaskState::Rejected, decision);
                Outcome::Finished(TaskState::Rejected)
            }
            Verdict::Approve if position + 1 == self.steps.len() => {
                self.state = TaskState::Approved;
                Outcome::Finished(TaskState::Approved)
            }
            Verdict::Approve => {
                self.open(position + 1, at, rules);
                Outcome::Advanced {
                    opened: position + 1,
                }
            }
        }
    }

    pub(crate) fn end(&mut self, state: TaskState, why: Decision) {
        self.state = state;
        self.ended = Some(why);
        for step in &mut self.steps {
            if matches!(step.state, StepState::Waiting | StepState::Open) {
                step.state = StepState::Skipped;
            }
        }
    }

    /// Acts on the open step's deadline if it has passed at `now`: approve, reject or escalate,
    /// as the step's timeout says.
    pub fn expire(&mut self, now: DateTime<Utc>, rules: &Rules<'_>) -> Outcome {
        let Some(position) = self.open_step() else {
            return Outcome::NotDue;
        };
        let step = &self.steps[position];
        if step.due_at.is_none_or(|due| now < due) {
            return Outcome::NotDue;
        }
        let action = match step.timeout {
            TimeoutAction::Escalate => match (rules.level_above)(&step.party) {
                Some(above) => {
                    let step = &mut self.steps[position];
                    step.party = above;
                    step.escalations += 1;
                    self.open(position, now, rules);
                    return Outcome::Escalated { position };
                }
                None => rules.policy.escalation_end(&step.party.province),
            },
            action => action,
        };
        let (verdict, reason) = match action {
            TimeoutAction::Reject => (Verdict::Reject, "deadline passed: rejected by policy"),
            _ => (Verdict::Approve, "deadline passed: approved by policy"),
        };
        let decision = Decision {
            verdict,
            by: "system".into(),
            at: now,
            reason: reason.into(),
            on_timeout: true,
        };
        self.apply(position, decision, rules)
    }

    /// Ends the task at the request of its starter (allowed until the last approval).
    pub fn cancel(
        &mut self,
        by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Outcome, WorkflowError> {
        match self.state {
            TaskState::Cancelled => return Ok(Outcome::AlreadyApplied),
            TaskState::InProgress => {}
            other => return Err(WorkflowError::Finished(other)),
        }
        if reason.trim().is_empty() {
            return Err(WorkflowError::ReasonRequired);
        }
        self.end(
            TaskState::Cancelled,
            Decision {
                verdict: Verdict::Reject,
                by: by.to_owned(),
                at,
                reason: reason.to_owned(),
                on_timeout: false,
            },
        );
        Ok(Outcome::Finished(TaskState::Cancelled))
    }
}

#[cfg(test)]
mod tests;
