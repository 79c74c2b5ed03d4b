//! Status changes (异动) as use cases on the shared workflow: request (rules checked, the
//! student's pending-task lock taken), decide (the school's approver, then the registry
//! authority), cancel, and the sweeper acting on missed deadlines. An approved change is applied
//! to the enrollment in the transaction of the last approval.

mod common;
mod corrections;
mod details;
mod resolutions;
mod sweeper;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;
use xueji_auth::{Caller, Clock, Level, Role};
use xueji_calendar::WorkingCalendar;
use xueji_policy::Live;
use xueji_workflow::{Decision, Party, Rules, Task, TaskState, Verdict, WorkflowError};

use common::{Opening, check_common, request_hash};
pub(crate) use corrections::CorrectionInput;
pub(crate) use details::DetailsInput;
pub(crate) use resolutions::ResolutionInput;

use crate::{
    IdentityError,
    domain::{
        School,
        provincial_fields::ProvincialFields,
        school_year::{CycleDates, SchoolYearPolicy},
        status_change::{ChangeKind, ChangeRequest, RecordState, RequestKind, check_change},
    },
    national::NationalLink,
    policy::{IdentityPolicy, StatusPolicy},
    store::{Actor, ChangeRecord, Collision, NewChange, OpenOutcome, Store, StudentRecord},
};

/// Party kinds of a status change's steps.
pub(crate) mod party {
    /// The school's approver.
    pub(crate) const SCHOOL: &str = "school";
    /// The registry authority's approver.
    pub(crate) const AUTHORITY: &str = "authority";
}

/// What a caller asked, as decoded from the wire (not yet checked).
#[derive(Debug, Clone)]
pub(crate) struct ChangeInput {
    pub idempotency_key: String,
    pub kind: Option<ChangeKind>,
    pub reason: String,
    pub grounds: String,
    pub effective_date: String,
    pub evidence: Vec<String>,
}

/// The desk that handles status changes of one province.
pub(crate) struct ChangeDesk {
    store: Store,
    /// The rules and approvals in force (a reload replaces them).
    status: Live<StatusPolicy>,
    /// The school year's dates in force: graduating grades freeze in the summer.
    school_year: Live<SchoolYearPolicy>,
    province: String,
    clock: Clock,
    /// The national index, for a correction's duplicate re-check (none on a node without a
    /// national link).
    national: Option<Arc<dyn NationalLink>>,
    /// The province's own fields: its key ones are corrected here too.
    fields: Arc<ProvincialFields>,
}

impl std::fmt::Debug for ChangeDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeDesk")
            .field("province", &self.province)
            .field("national", &self.national.is_some())
            .finish_non_exhaustive()
    }
}

impl ChangeDesk {
    pub(crate) fn new(store: Store, policy: &IdentityPolicy, province: &str, clock: Clock) -> Self {
        Self {
            store,
            status: policy.status.clone(),
            school_year: policy.school_year.clone(),
            province: province.to_owned(),
            clock,
            national: None,
            fields: policy.fields.clone(),
        }
    }

    /// The province's dates of the annual cycle, as the policy in force sets them.
    fn dates(&self) -> CycleDates {
        self.school_year.current().dates(&self.province)
    }

    /// Re-checks corrected ID numbers against the national index through `link`.
    pub(crate) fn with_national(mut self, link: Arc<dyn NationalLink>) -> Self {
        self.national = Some(link);
        self
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn with_rules<T>(&self, f: impl FnOnce(&Rules<'_>) -> T, school_authority: &str) -> T {
        let authority = school_authority.to_owned();
        let above = move |party: &Party| xueji_workflow::level_above(party, &authority);
        let status = self.status.current();
        f(&Rules {
            policy: &status.approvals,
            calendar: WorkingCalendar::bundled(),
            level_above: &above,
        })
    }

    /// Asks for a status change of `record` at `school`. Checks the request whole (fields,
    /// the province's rule for the record as it stands), then opens the task and takes the
    /// student's pending-task lock. A retry with the same key answers the same change.
    pub(crate) async fn request(
        &self,
        caller: &Caller,
        request_id: &str,
        record: &StudentRecord,
        school: &School,
        input: ChangeInput,
    ) -> Result<ChangeRecord, IdentityError> {
        let (mut violations, key, reason, evidence) = check_common(
            caller,
            "status changes",
            (&input.idempotency_key, &input.reason, &input.evidence),
            false,
        )?;
        let kind = input.kind;
        if kind.is_none() {
            violations.add("kind", "must name a status change");
        }
        let grounds = input.grounds.trim().to_owned();
        if grounds.chars().count() > 50 {
            violations.add("grounds", "must be at most 50 characters");
        }
        let today = xueji_calendar::china_today(self.now());
        let effective_date = violations.check(
            xueji_validation::parse_date("effective_date", &input.effective_date).and_then(
                |date| {
                    if date > today + chrono::Days::new(366)
                        || date < today - chrono::Days::new(366)
                    {
                        Err(xueji_validation::FieldViolation::new(
                            "effective_date",
                            "must lie within a year of today",
                        ))
                    } else {
                        Ok(date)
                    }
                },
            ),
        );
        let state = RecordState {
            status: record.status,
            left_reason: record.left_reason,
        };
        let checked = match (kind, &effective_date) {
            (Some(kind), Some(effective_date)) => {
                let request = ChangeRequest {
                    kind,
                    reason: reason.clone(),
                    effective_date: *effective_date,
                    evidence: evidence.len(),
                    grounds: grounds.clone(),
                };
                let status = self.status.current();
                let rule = status.rules.rule(&self.province, kind);
                violations
                    .absorb(check_change(
                        rule,
                        &request,
                        state,
                        record.grade,
                        &school.stages,
                    ))
                    .map(|_| kind)
            }
            _ => None,
        };
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let (Some(kind), Some(effective_date)) = (checked, effective_date) else {
            return Err(IdentityError::Internal(
                "a checked request lost a field".into(),
            ));
        };
        if kind != ChangeKind::Death {
            self.refuse_when_frozen(record, school, today)?;
        }
        let hash = request_hash(
            kind.as_str(),
            &[&reason, &grounds, &effective_date.to_string()],
            &evidence,
            &record.registry_number,
        );
        self.open(
            caller,
            request_id,
            record,
            school,
            Opening {
                kind: RequestKind::Status(kind),
                key: &key,
                hash: &hash,
                reason: &reason,
                grounds: &grounds,
                effective_date,
                evidence: &evidence,
                corrections: None,
                resolution: None,
            },
        )
        .await
    }

    /// From the freeze until the school year starts, graduating grades take no new task.
    fn refuse_when_frozen(
        &self,
        record: &StudentRecord,
        school: &School,
        today: NaiveDate,
    ) -> Result<(), IdentityError> {
        let graduating = school
            .grade_place(record.grade)
            .is_some_and(|place| place.graduating);
        let dates = self.dates();
        if graduating && dates.frozen(today) {
            return Err(IdentityError::FailedPrecondition(format!(
                "from {} until the school year starts, students of a graduating grade take no new \
                 task",
                dates.freeze.in_year(chrono::Datelike::year(&today))
            )));
        }
        Ok(())
    }

    /// Opens a checked request: its task (the school's approver, then the registry
    /// authority's), the student's pending-task lock, its row. Answers the request as stored.
    async fn open(
        &self,
        caller: &Caller,
        request_id: &str,
        record: &StudentRecord,
        school: &School,
        opening: Opening<'_>,
    ) -> Result<ChangeRecord, IdentityError> {
        let state = RecordState {
            status: record.status,
            left_reason: record.left_reason,
        };
        let enrollment_id = self.store.current_enrollment(record.id).await?;
        let parties = vec![
            Party {
                kind: party::SCHOOL.into(),
                jurisdiction: school.code.to_string(),
                province: self.province.clone(),
            },
            Party {
                kind: party::AUTHORITY.into(),
                jurisdiction: school.registry_authority.to_string(),
                province: self.province.clone(),
            },
        ];
        let authority = school.registry_authority.to_string();
        let task = self.with_rules(|rules| Task::start(parties, self.now(), rules), &authority);
        let scoped_key = caller.scoped_key(opening.key);
        let id = Uuid::new_v4();
        let outcome = self
            .store
            .open_status_change(
                &NewChange {
                    id,
                    student_id: record.id,
                    enrollment: (enrollment_id, state, record.grade),
                    kind: opening.kind,
                    corrections: opening.corrections,
                    resolution: opening.resolution,
                    reason: opening.reason,
                    grounds: opening.grounds,
                    effective_date: opening.effective_date,
                    evidence: opening.evidence,
                    school_code: school.code.as_str(),
                    school_division: school.division.as_str(),
                    registry_authority: &authority,
                    task: &task,
                    idempotency_key: &scoped_key,
                    request_hash: opening.hash,
                },
                Actor { caller, request_id },
            )
            .await?;
        let id = match outcome {
            OpenOutcome::Opened => id,
            OpenOutcome::Replayed(earlier) => earlier,
            OpenOutcome::KeyReused => {
                return Err(IdentityError::invalid(
                    "idempotency_key",
                    "was already used for a different request; use a new key",
                ));
            }
            OpenOutcome::PendingTask => {
                return Err(IdentityError::TransferRefused(
                    crate::domain::TransferRefusal::PendingTask,
                ));
            }
            OpenOutcome::UnknownEvidence(ids) => {
                return Err(IdentityError::invalid(
                    "evidence_ids",
                    format!(
                        "{} not an evidence file of this student",
                        ids.iter()
                            .map(Uuid::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            OpenOutcome::RecordChanged => {
                return Err(IdentityError::FailedPrecondition(
                    "the student's record changed while the request was checked; ask again".into(),
                ));
            }
            OpenOutcome::Collision(Collision::Duplicate { field, holder }) => {
                return Err(IdentityError::AlreadyExists {
                    field,
                    message: format!(
                        "the duplicate check refuses this correction: record {holder} already \
                         has this {}",
                        if field == "id_number" {
                            "resident ID number"
                        } else {
                            "name, gender and birth date"
                        }
                    ),
                });
            }
            OpenOutcome::Collision(Collision::NotAnImage(photo)) => {
                return Err(IdentityError::invalid(
                    "photo",
                    format!("{photo} is not a JPEG or PNG evidence file of this student"),
                ));
            }
        };
        self.store
            .status_change(id)
            .await?
            .ok_or_else(|| IdentityError::Internal("a status change just written vanished".into()))
    }

    /// A party decides the step at `position`. The same decision again changes nothing.
    pub(crate) async fn decide(
        &self,
        caller: &Caller,
        request_id: &str,
        id: Uuid,
        position: usize,
        verdict: Verdict,
        remark: &str,
    ) -> Result<ChangeRecord, IdentityError> {
        let (mut tx, mut record) = self
            .store
            .lock_status_change(id)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("status change {id}")))?;
        let step = record.task.steps.get(position).ok_or_else(|| {
            IdentityError::invalid("step", format!("there is no step {position}"))
        })?;
        if !may_decide(caller, &step.party) {
            return Err(IdentityError::PermissionDenied(format!(
                "step {position} is for the {} of {}; only its approver decides it",
                step.party.kind, step.party.jurisdiction
            )));
        }
        let decision = Decision {
            verdict,
            by: caller.describe(),
            at: self.now(),
            reason: remark.trim().to_owned(),
            on_timeout: false,
        };
        let outcome = self
            .with_rules(
                |rules| record.task.decide(position, decision, rules),
                &record.registry_authority.clone(),
            )
            .map_err(workflow_error)?;
        if outcome == xueji_workflow::Outcome::AlreadyApplied {
            return Ok(record);
        }
        record.state = record.task.state;
        let transition = self.transition_of(&record)?;
        Store::save_status_change(
            &mut tx,
            &record,
            transition,
            match verdict {
                Verdict::Approve => "identity.approve_status_change",
                Verdict::Reject => "identity.reject_status_change",
            },
            Actor { caller, request_id },
        )
        .await?;
        tx.commit().await?;
        self.store
            .status_change(id)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("status change {id}")))
    }

    /// The requester's side withdraws the change, with a reason, until the last approval.
    pub(crate) async fn cancel(
        &self,
        caller: &Caller,
        request_id: &str,
        id: Uuid,
        reason: &str,
    ) -> Result<ChangeRecord, IdentityError> {
        let may_withdraw = || {
            if matches!(caller.level, Level::School | Level::County | Level::City) {
                Ok(())
            } else {
                Err(IdentityError::PermissionDenied(
                    "a status change is withdrawn by the school or its authorities".into(),
                ))
            }
        };
        let actor = Actor { caller, request_id };
        match self
            .withdraw(
                id,
                actor,
                reason,
                "identity.cancel_status_change",
                may_withdraw,
            )
            .await?
        {
            None => Err(IdentityError::NotFound(format!("status change {id}"))),
            Some((record, false)) => Ok(record),
            Some((_, true)) => self
                .store
                .status_change(id)
                .await?
                .ok_or_else(|| IdentityError::NotFound(format!("status change {id}"))),
        }
    }

    /// Cancels change `id` under its lock once `allowed` passes, audited as `action`. Answers
    /// `None` for no such change, else the change and whether this call cancelled it (a change
    /// cancelled before is answered as it stands).
    async fn withdraw(
        &self,
        id: Uuid,
        actor: Actor<'_>,
        reason: &str,
        action: &str,
        allowed: impl FnOnce() -> Result<(), IdentityError>,
    ) -> Result<Option<(ChangeRecord, bool)>, IdentityError> {
        let Some((mut tx, mut record)) = self.store.lock_status_change(id).await? else {
            return Ok(None);
        };
        allowed()?;
        let outcome = record
            .task
            .cancel(&actor.caller.describe(), reason, self.now())
            .map_err(workflow_error)?;
        if outcome == xueji_workflow::Outcome::AlreadyApplied {
            return Ok(Some((record, false)));
        }
        record.state = record.task.state;
        Store::save_status_change(&mut tx, &record, None, action, actor).await?;
        tx.commit().await?;
        Ok(Some((record, true)))
    }

    /// What an approval applies: the province's rule for the change, as it stands now.
    fn transition_of(
        &self,
        record: &ChangeRecord,
    ) -> Result<Option<crate::domain::status_change::Transition>, IdentityError> {
        if record.task.state != TaskState::Approved {
            return Ok(None);
        }
        let RequestKind::Status(kind) = record.kind else {
            return Ok(None);
        };
        Ok(Some(
            self.status
                .current()
                .rules
                .rule(&self.province, kind)
                .transition(kind),
        ))
    }
}

/// May `caller` decide a step of `party`? The school's step is its approver's; an
/// authority's, its approver's.
pub(crate) fn may_decide(caller: &Caller, party: &Party) -> bool {
    caller.role == Role::Approver && xueji_workflow::may_decide(caller, party)
}

fn workflow_error(error: WorkflowError) -> IdentityError {
    match error {
        WorkflowError::ReasonRequired => IdentityError::invalid("reason", error.to_string()),
        WorkflowError::NoSuchStep(_) => IdentityError::invalid("step", error.to_string()),
        other => IdentityError::FailedPrecondition(other.to_string()),
    }
}
