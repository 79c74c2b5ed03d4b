//! The use cases of the saga: start, decide, cancel, act on passed deadlines, carry out the
//! effects owed to identity. Each change of a transfer happens in one transaction that locks
//! the transfer's row first, writes the steps, the transfer's state, the audit entry and any
//! effect owed (the outbox) together.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;
use uuid::Uuid;
use xueji_auth::{Caller, Clock};
use xueji_calendar::WorkingCalendar;
use xueji_policy::Live;
use xueji_workflow::{Party, Rules, WorkflowError};

use crate::{
    TransferError,
    domain::{self, StudentKey},
    links::{CalendarSource, EnrollmentLedger, RelayLink, SchoolList},
    policy::SagaPolicy,
    store::{Store, TransferRecord},
};

mod across;
mod background;
mod calendar;
mod decisions;
mod evidence;
mod inbox;
mod start;

pub use evidence::evidence_to_wire;

/// How long a start may stay `starting` before the sweeper takes it over.
const START_TAKEOVER_SECS: f64 = 30.0;

/// The saga's state, shared by handlers and background work.
#[derive(Debug)]
pub struct Saga {
    store: Store,
    ledger: Arc<dyn EnrollmentLedger>,
    schools: Arc<dyn SchoolList>,
    policy: Live<SagaPolicy>,
    clock: Clock,
    effects_due: Notify,
    gauges: SagaGauges,
    /// The province this service serves (2 digits): its parties' steps are decided here.
    province: String,
    /// The national node's relay, for transfers between provinces (none: inside one province
    /// only).
    relay: Option<Arc<dyn RelayLink>>,
    /// Messages to send or to apply.
    relay_due: Notify,
    /// The national node's calendar registry (none: the bundled years only).
    calendar_source: Option<Arc<dyn CalendarSource>>,
    /// The transfers service's TLS material: it signs this province's decisions that cross
    /// provinces and verifies the other province's (`domain::evidence`).
    notary: xueji_rpc::TlsSource,
    /// The calendar deadlines are counted on: the policy's, with the years pulled from the
    /// national node (see [`calendar`]).
    calendar: std::sync::RwLock<Arc<WorkingCalendar>>,
}

/// The saga's gauges on the node's metrics (each round of the background work sets them).
#[derive(Debug, Clone, Default)]
pub struct SagaGauges {
    pub estimated_deadlines: Gauge,
    pub overdue_steps: Gauge,
    pub effects_pending: Gauge,
    /// Messages from other provinces set aside for good (see `ListSetAsideMessages`).
    pub messages_set_aside: Gauge,
}

fn workflow_error(error: WorkflowError) -> TransferError {
    match error {
        WorkflowError::ReasonRequired => TransferError::invalid("reason", "a reason is required"),
        WorkflowError::NoSuchStep(n) => {
            TransferError::invalid("step", format!("there is no step {n}"))
        }
        other => TransferError::FailedPrecondition(other.to_string()),
    }
}

/// How the receiving school identified the student, as stored.
fn stored_student(record: &TransferRecord) -> Result<StudentKey, TransferError> {
    StudentKey::parse(&record.typed_number).ok_or_else(|| {
        TransferError::Internal(format!(
            "transfer {}: the stored student number does not parse",
            record.id
        ))
    })
}

/// What a saga is made of: its store, its links, its rules.
#[derive(Debug)]
pub struct SagaParts {
    pub store: Store,
    pub ledger: Arc<dyn EnrollmentLedger>,
    pub schools: Arc<dyn SchoolList>,
    /// The policy in force (a reload replaces it).
    pub policy: Live<SagaPolicy>,
    pub clock: Clock,
    pub gauges: SagaGauges,
    /// The province this service serves (2 digits).
    pub province: String,
    /// The national node's relay; `None` for a saga inside one province only.
    pub relay: Option<Arc<dyn RelayLink>>,
    /// The national node's calendar registry; `None`: the policy's calendar only.
    pub calendar_source: Option<Arc<dyn CalendarSource>>,
    /// The TLS material of the transfers service, whose key signs its decisions.
    pub notary: xueji_rpc::TlsSource,
}

impl Saga {
    pub fn new(parts: SagaParts) -> Arc<Self> {
        Arc::new(Self {
            store: parts.store,
            ledger: parts.ledger,
            schools: parts.schools,
            clock: parts.clock,
            effects_due: Notify::new(),
            gauges: parts.gauges,
            province: parts.province,
            relay: parts.relay,
            relay_due: Notify::new(),
            calendar_source: parts.calendar_source,
            notary: parts.notary,
            calendar: std::sync::RwLock::new(Arc::new(parts.policy.current().calendar.clone())),
            policy: parts.policy,
        })
    }

    pub fn province(&self) -> &str {
        &self.province
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<SagaPolicy> {
        self.policy.current()
    }

    /// How far the node's clock runs ahead of the system's (zero in service).
    fn skew_seconds(&self) -> f64 {
        (self.clock.now() - Utc::now()).num_milliseconds() as f64 / 1000.0
    }

    /// Runs `f` on the workflow's rules; a school's escalation goes to `school_authority`.
    fn with_rules<T>(&self, school_authority: &str, f: impl FnOnce(&Rules<'_>) -> T) -> T {
        let school_authority = school_authority.to_owned();
        let above = move |party: &Party| domain::level_above(party, &school_authority);
        let calendar = self.calendar();
        let policy = self.policy.current();
        f(&Rules {
            policy: &policy.approvals,
            calendar: &calendar,
            level_above: &above,
        })
    }

    pub async fn get(&self, id: Uuid) -> Result<TransferRecord, TransferError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| TransferError::NotFound(format!("transfer {id}")))
    }

    /// The node's "now" for deadlines shown to users.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// May `caller` see `record` at all? The parties over either school, and anyone deciding a step.
pub fn may_see(caller: &Caller, record: &TransferRecord) -> bool {
    caller.may_access_record(&record.receiving_school, &record.receiving_division)
        || sees_sending_side(caller, record)
        || record
            .task
            .steps
            .iter()
            .any(|s| domain::may_decide(caller, &s.party))
}

/// May `caller` see the sending side (the student's school and number)? Those over the sending
/// school always; everyone who may see the transfer once it completed.
pub fn sees_sending_side(caller: &Caller, record: &TransferRecord) -> bool {
    match (&record.sending_school, &record.sending_division) {
        (Some(school), Some(division)) => caller.may_access_record(school, division),
        _ => false,
    }
}
