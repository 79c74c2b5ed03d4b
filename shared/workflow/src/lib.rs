//! The approval workflow: a task on one student, approved by an ordered list of parties, each
//! with an absolute deadline in working days and a timeout action.
//!
//! Transfers are the first user; status changes and corrections reuse it. The piece is pure (no
//! storage, no transport): a service loads a [`Task`] from its rows, applies one event
//! ([`Task::decide`], [`Task::expire`], [`Task::cancel`]) and writes back what changed, in the
//! transaction that also writes the event's consequences. The rules it runs on (days and timeout
//! actions per province and per party) are [`Policy`] data, read from TOML.

mod merge;
mod parties;
mod policy;
mod task;
mod timeout;

pub use merge::{Counterpart, MAX_STEPS, MergeError};
pub use parties::{
    is_jurisdiction_code, level_above, may_decide, may_decide_some_step, province_of_jurisdiction,
};
pub use policy::{Policy, PolicyError, ProvincePolicy, StepRule};
pub use task::{
    Decision, Outcome, Party, Rules, Step, StepState, Task, TaskState, TimeoutAction, Verdict,
    WorkflowError,
};
