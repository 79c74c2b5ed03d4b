//! The annual cycle over gRPC: the dry run, the run, its status, and the graduation decisions
//! schools and authorities take before it (thin: decode, authorize, call the runner or the
//! store, encode).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use xueji_auth::{Caller, Level, Role};
use xueji_codes::SchoolCode;
use xueji_proto::identity::v1::{
    self as pb,
    school_year_service_server::{SchoolYearService, SchoolYearServiceServer},
};

use super::IdentityApi;
use crate::{
    IdentityError,
    cycle::CycleRunner,
    domain::school_year::{self, CycleDates, CycleStep, GraduationOutcome},
    store::CycleStepRun,
};

/// The school-year service: shares the identity service's state.
#[derive(Debug, Clone)]
pub(crate) struct SchoolYearApi {
    identity: Arc<IdentityApi>,
    runner: Arc<CycleRunner>,
}

impl SchoolYearApi {
    pub(crate) fn new(identity: Arc<IdentityApi>, runner: Arc<CycleRunner>) -> Self {
        Self { identity, runner }
    }

    pub(super) fn identity(&self) -> &IdentityApi {
        &self.identity
    }

    pub(super) fn runner(&self) -> &CycleRunner {
        &self.runner
    }

    pub(crate) fn into_service(self) -> SchoolYearServiceServer<Self> {
        SchoolYearServiceServer::new(self)
            .max_decoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(xueji_rpc::MAX_MESSAGE_BYTES)
    }

    /// Province and ministry users (operators only, where `operators` is set).
    fn require_overseer(caller: &Caller, operators: bool) -> Result<(), IdentityError> {
        let level = matches!(caller.level, Level::Province | Level::Ministry);
        if !level {
            return Err(IdentityError::PermissionDenied(
                "the annual cycle is the province's and the ministry's to run and watch".into(),
            ));
        }
        if operators && caller.role != Role::Operator {
            return Err(IdentityError::PermissionDenied(
                "only an operator runs the annual cycle".into(),
            ));
        }
        Ok(())
    }

    fn year(year: u32) -> Result<i32, IdentityError> {
        if (2000..=2100).contains(&year) {
            Ok(year as i32)
        } else {
            Err(IdentityError::invalid(
                "year",
                "must be a summer between 2000 and 2100",
            ))
        }
    }

    async fn status(&self, year: i32) -> Result<Vec<pb::CycleStepStatus>, IdentityError> {
        let runs = self.runner.store().cycle_steps(year).await?;
        Ok(CycleStep::ALL
            .into_iter()
            .map(|step| step_status(step, runs.iter().find(|r| r.step == step)))
            .collect())
    }

    async fn preview(
        &self,
        caller: &Caller,
        year: u32,
    ) -> Result<pb::PreviewCycleResponse, IdentityError> {
        Self::require_overseer(caller, true)?;
        let year = Self::year(year)?;
        let dates = self.runner.dates();
        let preview = self
            .runner
            .store()
            .preview_cycle(year, dates.day_of(CycleStep::Promotion, year))
            .await?;
        Ok(pb::PreviewCycleResponse {
            year: year as u32,
            dates: Some(dates_to_wire(&dates, year)),
            will_graduate: preview.will_graduate as u64,
            blocked_by_task: preview.blocked_by_task as u64,
            blocked_by_problem: preview.blocked_by_problem as u64,
            awaiting_confirmation: preview.awaiting_confirmation as u64,
            will_promote: preview.will_promote as u64,
            already_promoted: preview.already_promoted as u64,
            already_graduated: preview.already_graduated as u64,
            steps: self.status(year).await?,
        })
    }

    async fn run(&self, caller: &Caller, year: u32) -> Result<pb::RunCycleResponse, IdentityError> {
        Self::require_overseer(caller, true)?;
        let year = Self::year(year)?;
        let today = self.runner.today();
        school_year::check_on_demand(&self.runner.dates(), year, today)
            .map_err(IdentityError::FailedPrecondition)?;
        let steps = self.runner.due_steps(year, today);
        let status = self.status(year).await?;
        let started = self.runner.start(year, steps.clone(), caller.clone());
        Ok(pb::RunCycleResponse {
            started,
            steps: steps.iter().map(|s| s.as_str().to_owned()).collect(),
            status,
        })
    }

    async fn confirm(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::ConfirmGraduationRequest,
    ) -> Result<pb::ConfirmGraduationResponse, IdentityError> {
        let year = Self::year(request.year)?;
        let code: SchoolCode = request
            .school_code
            .trim()
            .parse()
            .map_err(|e| IdentityError::invalid("school_code", format!("school code {e}")))?;
        let school = self
            .identity
            .visible_school(caller, &code)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("school {code}")))?;
        if !caller.is_approver_for(school.registry_authority) {
            return Err(IdentityError::PermissionDenied(format!(
                "only an approver of the registry authority {} confirms its schools' graduation",
                school.registry_authority
            )));
        }
        if school_year::confirmed_grades(&school.stages).is_empty() {
            return Err(IdentityError::FailedPrecondition(format!(
                "school {code} has no senior high final grade: its graduation needs no confirmation"
            )));
        }
        let confirmed_now = self
            .runner
            .store()
            .confirm_graduation(
                code.as_str(),
                year,
                crate::store::Actor { caller, request_id },
            )
            .await?;
        Ok(pb::ConfirmGraduationResponse { confirmed_now })
    }

    async fn record_outcome(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RecordGraduationOutcomeRequest,
    ) -> Result<pb::RecordGraduationOutcomeResponse, IdentityError> {
        let year = Self::year(request.year)?;
        let outcome = outcome_from_wire(request.outcome()).ok_or_else(|| {
            IdentityError::invalid("outcome", "must be GRADUATED, COMPLETED or INCOMPLETE")
        })?;
        let (record, school) = self
            .identity
            .student_and_school(caller, &request.registry_number)
            .await?;
        if !matches!(caller.level, Level::School | Level::County | Level::City) {
            return Err(IdentityError::PermissionDenied(
                "graduation outcomes are recorded by the school and its authorities".into(),
            ));
        }
        let graduating = school
            .grade_place(record.grade)
            .is_some_and(|place| place.graduating);
        if !graduating {
            return Err(IdentityError::FailedPrecondition(format!(
                "{} is in grade {}, not a graduating grade of school {}",
                record.registry_number, record.grade, school.code
            )));
        }
        let previous = self
            .runner
            .store()
            .record_graduation_outcome(
                record.id,
                &record.registry_number,
                year,
                outcome,
                crate::store::Actor { caller, request_id },
            )
            .await?;
        Ok(pb::RecordGraduationOutcomeResponse {
            previous: previous.map_or(pb::GraduationOutcome::Unspecified, outcome_to_wire) as i32,
        })
    }
}

fn outcome_from_wire(outcome: pb::GraduationOutcome) -> Option<GraduationOutcome> {
    match outcome {
        pb::GraduationOutcome::Unspecified => None,
        pb::GraduationOutcome::Graduated => Some(GraduationOutcome::Graduated),
        pb::GraduationOutcome::Completed => Some(GraduationOutcome::Completed),
        pb::GraduationOutcome::Incomplete => Some(GraduationOutcome::Incomplete),
    }
}

fn outcome_to_wire(outcome: GraduationOutcome) -> pb::GraduationOutcome {
    match outcome {
        GraduationOutcome::Graduated => pb::GraduationOutcome::Graduated,
        GraduationOutcome::Completed => pb::GraduationOutcome::Completed,
        GraduationOutcome::Incomplete => pb::GraduationOutcome::Incomplete,
    }
}

fn dates_to_wire(dates: &CycleDates, year: i32) -> pb::CycleDates {
    pb::CycleDates {
        freeze: dates.freeze.in_year(year).to_string(),
        clearing: dates.clearing.in_year(year).to_string(),
        graduation: dates.graduation.in_year(year).to_string(),
        promotion: dates.promotion.in_year(year).to_string(),
        year_starts: dates.year_starts.in_year(year).to_string(),
        intake_by: dates.intake_by.in_year(year).to_string(),
        problems_by: dates.problems_by.in_year(year).to_string(),
    }
}

fn step_status(step: CycleStep, run: Option<&CycleStepRun>) -> pb::CycleStepStatus {
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match run {
        None => pb::CycleStepStatus {
            step: step.as_str().to_owned(),
            state: pb::CycleStepState::NotStarted as i32,
            ..Default::default()
        },
        Some(run) => pb::CycleStepStatus {
            step: step.as_str().to_owned(),
            state: if run.done {
                pb::CycleStepState::Done
            } else {
                pb::CycleStepState::Running
            } as i32,
            processed: run.watermark.min(run.ceiling).max(0) as u64,
            total: run.ceiling.max(0) as u64,
            changed: run.changed.max(0) as u64,
            blocked: run.blocked.max(0) as u64,
            started_by: run.started_by.clone(),
            started_at: time(run.started_at),
            finished_at: run.finished_at.map(time).unwrap_or_default(),
        },
    }
}

#[tonic::async_trait]
impl SchoolYearService for SchoolYearApi {
    async fn preview_cycle(
        &self,
        request: Request<pb::PreviewCycleRequest>,
    ) -> Result<Response<pb::PreviewCycleResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        Ok(Response::new(
            self.preview(caller, request.get_ref().year).await?,
        ))
    }

    async fn run_cycle(
        &self,
        request: Request<pb::RunCycleRequest>,
    ) -> Result<Response<pb::RunCycleResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        Ok(Response::new(
            self.run(caller, request.get_ref().year).await?,
        ))
    }

    async fn get_cycle_status(
        &self,
        request: Request<pb::GetCycleStatusRequest>,
    ) -> Result<Response<pb::GetCycleStatusResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        Self::require_overseer(caller, false)?;
        let year = Self::year(request.get_ref().year)?;
        Ok(Response::new(pb::GetCycleStatusResponse {
            year: year as u32,
            dates: Some(dates_to_wire(&self.runner.dates(), year)),
            steps: self.status(year).await?,
            running: self.runner.is_running(year),
        }))
    }

    async fn confirm_graduation(
        &self,
        request: Request<pb::ConfirmGraduationRequest>,
    ) -> Result<Response<pb::ConfirmGraduationResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.confirm(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }

    async fn list_watch_list(
        &self,
        request: Request<pb::ListWatchListRequest>,
    ) -> Result<Response<pb::ListWatchListResponse>, Status> {
        let (caller, _) = xueji_rpc::caller(&request)?;
        let caller = caller.clone();
        Ok(Response::new(
            self.watch_list(&caller, request.into_inner()).await?,
        ))
    }

    async fn record_graduation_outcome(
        &self,
        request: Request<pb::RecordGraduationOutcomeRequest>,
    ) -> Result<Response<pb::RecordGraduationOutcomeResponse>, Status> {
        let (caller, request_id) = xueji_rpc::caller(&request)?;
        let (caller, request_id) = (caller.clone(), request_id.to_owned());
        Ok(Response::new(
            self.record_outcome(&caller, &request_id, request.into_inner())
                .await?,
        ))
    }
}
