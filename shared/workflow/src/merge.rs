//! Merging the other side's copy of a task shared by two provinces.
//!
//! A task between provinces has steps of two owners: each step's party names its province.
//! Each node decides its own steps and sends the other its copy of the task; the copy that
//! arrives is never taken whole. From it this node takes only what the other province owns:
//! the decisions, deadlines and escalations of the other province's steps, and a cancellation.
//! Its own steps (parties, deadlines, timeout actions, decisions) stay as it made them, and a
//! step of its own opens here, with its own policy, when the steps before it are approved. A
//! copy that claims more (a decision out of turn, a party moved out of its province, a step
//! decided otherwise) is refused whole, and a task that ended takes nothing.

use chrono::{DateTime, Utc};

use crate::{
    parties::province_of_jurisdiction,
    task::{Party, Rules, Step, StepState, Task, TaskState},
};

/// At most this many steps in a task (two sides of at most three steps each, and room).
pub const MAX_STEPS: usize = 8;
/// A decider's name or a reason longer than this does not come from a person.
const MAX_TEXT: usize = 2000;

/// The two sides of a task shared between provinces, as this node sees them.
pub struct Counterpart<'a> {
    /// This node's province: its steps are decided here only.
    pub local_province: &'a str,
    /// The province the copy comes from: the only one whose steps the copy may change.
    pub remote_province: &'a str,
    /// Whether a step of this province may name `party` (the parties this node expects).
    pub local_party: &'a dyn Fn(&Party) -> bool,
    /// Whether a step of the other province may name `party` (after any escalation).
    pub remote_party: &'a dyn Fn(&Party) -> bool,
}

impl std::fmt::Debug for Counterpart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counterpart")
            .field("local_province", &self.local_province)
            .field("remote_province", &self.remote_province)
            .finish_non_exhaustive()
    }
}

/// Why the other side's copy was not taken. Every case is final: the same copy never applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("the task is already {}: it takes no update", .0.as_str())]
    Finished(TaskState),
    #[error("the copy does not have the task's shape: {0}")]
    Shape(String),
    #[error("step {position}: {what}")]
    Refused { position: usize, what: String },
}

fn refused(position: usize, what: impl Into<String>) -> MergeError {
    MergeError::Refused {
        position,
        what: what.into(),
    }
}

/// How far a step has gone: a copy that is behind this node's own is stale, not news.
fn progress(state: StepState) -> u8 {
    match state {
        StepState::Waiting => 0,
        StepState::Open => 1,
        StepState::Approved | StepState::Rejected | StepState::Skipped => 2,
    }
}

fn check_remote_step(
    position: usize,
    step: &Step,
    side: &Counterpart<'_>,
) -> Result<(), MergeError> {
    let party = &step.party;
    if province_of_jurisdiction(&party.jurisdiction) != Some(side.remote_province) {
        return Err(refused(
            position,
            format!(
                "jurisdiction {:?} is not a code of province {}",
                party.jurisdiction.chars().take(16).collect::<String>(),
                side.remote_province
            ),
        ));
    }
    if !(side.remote_party)(party) {
        return Err(refused(
            position,
            format!(
                "{} is not a party province {} may name",
                party.kind, side.remote_province
            ),
        ));
    }
    let decided = matches!(step.state, StepState::Approved | StepState::Rejected);
    match &step.decision {
        Some(decision) if decided => {
            if decision.by.len() > MAX_TEXT || decision.reason.len() > MAX_TEXT {
                return Err(refused(position, "the decision's text is too long"));
            }
            let matches_state = match decision.verdict {
                crate::Verdict::Approve => step.state == StepState::Approved,
                crate::Verdict::Reject => step.state == StepState::Rejected,
            };
            if !matches_state {
                return Err(refused(
                    position,
                    "the decision disagrees with the step's state",
                ));
            }
        }
        None if !decided => {}
        _ => {
            return Err(refused(
                position,
                "a decided step needs its decision, only it",
            ));
        }
    }
    if step.escalations > 16 {
        return Err(refused(position, "too many escalations"));
    }
    Ok(())
}

impl Task {
    /// Takes from `remote` (the other province's copy of this task) what that province owns,
    /// as the module says; opens this node's next step at `now` when its turn came. An empty
    /// task (this node's first copy) takes the steps' order and parties from `remote`, each of
    /// its own checked by `side.local_party`. Answers whether anything changed.
    pub fn merge_remote(
        &mut self,
        remote: &Task,
        side: &Counterpart<'_>,
        now: DateTime<Utc>,
        rules: &Rules<'_>,
    ) -> Result<bool, MergeError> {
        if self.state.is_terminal() {
            return Err(MergeError::Finished(self.state));
        }
        if remote.steps.is_empty() || remote.steps.len() > MAX_STEPS {
            return Err(MergeError::Shape(format!(
                "{} steps (1 to {MAX_STEPS})",
                remote.steps.len()
            )));
        }
        let mut merged = if self.steps.is_empty() {
            Task {
                state: TaskState::InProgress,
                steps: remote
                    .steps
                    .iter()
                    .map(|s| Step::new(s.party.clone()))
                    .collect(),
                ended: None,
            }
        } else {
            self.clone()
        };
        if merged.steps.len() != remote.steps.len() {
            return Err(MergeError::Shape(format!(
                "{} steps, this task has {}",
                remote.steps.len(),
                merged.steps.len()
            )));
        }
        for (position, (mine, theirs)) in merged.steps.iter_mut().zip(&remote.steps).enumerate() {
            if mine.party.kind != theirs.party.kind || mine.party.province != theirs.party.province
            {
                return Err(refused(position, "the step's party changed"));
            }
            if mine.party.province == side.local_province {
                if !(side.local_party)(&mine.party) {
                    return Err(refused(
                        position,
                        format!("{} is not a party of this province's", mine.party.kind),
                    ));
                }
                // This province's own step: what the other side says of it is not taken.
                continue;
            }
            if mine.party.province != side.remote_province {
                return Err(refused(
                    position,
                    "the step belongs to neither province of the transfer",
                ));
            }
            check_remote_step(position, theirs, side)?;
            if let Some(decided) = &mine.decision {
                if matches!(theirs.state, StepState::Approved | StepState::Rejected)
                    && !theirs.decision.as_ref().is_some_and(|d| d.same_as(decided))
                {
                    return Err(refused(position, "the step was decided otherwise before"));
                }
                continue;
            }
            if progress(theirs.state) < progress(mine.state)
                || (progress(mine.state) == 2)
                || theirs.escalations < mine.escalations
            {
                // A copy behind what this node knows of the step: nothing new in it.
                continue;
            }
            *mine = theirs.clone();
        }
        if remote.state == TaskState::Cancelled {
            let ended = remote
                .ended
                .clone()
                .ok_or_else(|| MergeError::Shape("a cancellation without its end".into()))?;
            if ended.by.len() > MAX_TEXT || ended.reason.len() > MAX_TEXT {
                return Err(MergeError::Shape(
                    "the cancellation's text is too long".into(),
                ));
            }
            merged.end(TaskState::Cancelled, ended);
        }
        merged.settle(side.local_province, now, rules)?;
        let changed = merged != *self;
        *self = merged;
        Ok(changed)
    }

    /// Walks the merged steps in order: approvals form a prefix, at most one step is open
    /// after it, a rejection ends the task, and this province's step whose turn came opens.
    fn settle(
        &mut self,
        local_province: &str,
        now: DateTime<Utc>,
        rules: &Rules<'_>,
    ) -> Result<(), MergeError> {
        let mut turn_reached = true;
        for position in 0..self.steps.len() {
            let step = &self.steps[position];
            match step.state {
                StepState::Approved if turn_reached => {}
                StepState::Rejected if turn_reached => {
                    let decision = step
                        .decision
                        .clone()
                        .ok_or_else(|| refused(position, "a rejection without its decision"))?;
                    self.end(TaskState::Rejected, decision);
                    return Ok(());
                }
                StepState::Approved | StepState::Rejected => {
                    return Err(refused(position, "decided before its turn"));
                }
                StepState::Open if turn_reached => turn_reached = false,
                StepState::Open => return Err(refused(position, "open before its turn")),
                StepState::Waiting => {
                    if turn_reached && self.state == TaskState::InProgress {
                        if step.party.province == local_province {
                            self.open(position, now, rules);
                        }
                        turn_reached = false;
                    }
                }
                StepState::Skipped if self.ended.is_some() => {}
                StepState::Skipped => {
                    return Err(refused(position, "skipped while the task goes on"));
                }
            }
        }
        if turn_reached && self.state == TaskState::InProgress {
            self.state = TaskState::Approved;
        }
        Ok(())
    }

    /// Whether every step of `province` was decided (on that province's node: no other node's
    /// copy may decide them), as the sending side needs before it lets a student go.
    pub fn steps_of_decided(&self, province: &str) -> bool {
        let mut own = self
            .steps
            .iter()
            .filter(|s| s.party.province == province)
            .peekable();
        own.peek().is_some() && own.all(|s| s.state == StepState::Approved && s.decision.is_some())
    }
}

#[cfg(test)]
mod tests;
