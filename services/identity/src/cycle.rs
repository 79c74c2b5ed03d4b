//! The annual cycle's runner: the node's scheduler runs each step of the current summer on its
//! day (until the school year starts), and operators run a summer's steps on demand. A run goes
//! through the enrollments in batches of ids (see `store::cycle`), resumes where a crash left
//! it, and never runs a finished step again.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::NaiveDate;
use xueji_auth::{Caller, Clock};
use xueji_calendar::china_today;
use xueji_policy::Live;

use crate::{
    IdentityError,
    domain::school_year::{CycleDates, CycleStep, SchoolYearPolicy},
    store::{Actor, CycleStepRun, Store},
};

/// Enrollment ids per batch: one transaction each. Large enough that a batch's fixed cost
/// (its commit, its audit entry) is small beside its rows; small enough that a batch holds its
/// row locks briefly while registrations and transfers go on.
pub const DEFAULT_BATCH: i64 = 20_000;

/// The runner of one province's annual cycle.
#[derive(Debug)]
pub struct CycleRunner {
    store: Store,
    /// The school year's dates in force (a reload replaces them).
    school_year: Live<SchoolYearPolicy>,
    province: String,
    clock: Clock,
    batch: i64,
    /// Summers being run by this process now.
    running: Mutex<HashSet<i32>>,
}

/// Who runs a step when the scheduler does.
impl CycleRunner {
    pub fn new(
        store: Store,
        school_year: Live<SchoolYearPolicy>,
        province: &str,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            school_year,
            province: province.to_owned(),
            clock,
            batch: DEFAULT_BATCH,
            running: Mutex::default(),
        }
    }

    /// A runner with another batch size (tests make it small, to cut a run into many).
    pub fn with_batch(mut self, batch: i64) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The province's dates, as the policy in force sets them.
    pub fn dates(&self) -> CycleDates {
        self.school_year.current().dates(&self.province)
    }

    pub fn province(&self) -> &str {
        &self.province
    }

    pub fn today(&self) -> NaiveDate {
        china_today(self.clock.now())
    }

    /// The school year today lies in (the calendar year it starts in): the year of the
    /// classes a registration or an intake seats its pupils in.
    pub fn school_year_now(&self) -> i16 {
        self.dates().school_year_of(self.today()) as i16
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether this process is running `year` now.
    pub fn is_running(&self, year: i32) -> bool {
        self.running.lock().expect("not poisoned").contains(&year)
    }

    /// The steps of `year` due on `today` for an on-demand run: those whose day has come.
    pub fn due_steps(&self, year: i32, today: NaiveDate) -> Vec<CycleStep> {
        CycleStep::ALL
            .into_iter()
            .filter(|step| self.dates().day_of(*step, year) <= today)
            .collect()
    }

    /// Starts running `steps` of `year` in the background unless this process runs that year
    /// already. Answers whether it started.
    pub fn start(self: &Arc<Self>, year: i32, steps: Vec<CycleStep>, caller: Caller) -> bool {
        if !self.running.lock().expect("not poisoned").insert(year) {
            return false;
        }
        let runner = self.clone();
        tokio::spawn(async move {
            let result = runner.run_steps(year, &steps, &caller, "").await;
            runner.running.lock().expect("not poisoned").remove(&year);
            if let Err(error) = result {
                tracing::warn!(year, %error, "the annual cycle stopped; it resumes on the next run");
            }
        });
        true
    }

    /// Runs `steps` of `year` to their end, in order, resuming each where it stands.
    pub async fn run_steps(
        &self,
        year: i32,
        steps: &[CycleStep],
        caller: &Caller,
        request_id: &str,
    ) -> Result<Vec<CycleStepRun>, IdentityError> {
        let mut runs = Vec::new();
        for step in steps {
            runs.push(self.run_step(year, *step, caller, request_id).await?);
        }
        Ok(runs)
    }

    async fn run_step(
        &self,
        year: i32,
        step: CycleStep,
        caller: &Caller,
        request_id: &str,
    ) -> Result<CycleStepRun, IdentityError> {
        let by = caller.describe();
        let jurisdiction = caller.jurisdiction.as_string();
        let run = self
            .store
            .begin_cycle_step(year, step, &by, &jurisdiction)
            .await?;
        if run.done {
            return Ok(run);
        }
        let actor = Actor { caller, request_id };
        let ceiling = run.ceiling;
        let mut after = run.watermark;
        let day = self.dates().day_of(step, year);
        tracing::info!(
            year,
            step = step.as_str(),
            after,
            ceiling,
            "annual cycle step running"
        );
        while after < ceiling {
            let upto = (after + self.batch).min(ceiling);
            let done = match step {
                CycleStep::Graduation => {
                    self.store
                        .graduate_batch(year, after, upto, day, actor)
                        .await?
                }
                CycleStep::Promotion => {
                    self.store
                        .promote_batch(year, after, upto, day, actor)
                        .await?
                }
            };
            if !done.applied {
                // Another runner holds the step: leave it to that one.
                break;
            }
            after = upto;
            tracing::debug!(
                year,
                step = step.as_str(),
                after,
                ceiling,
                changed = done.changed,
                "batch"
            );
        }
        if after >= ceiling {
            self.store.finish_cycle_step(year, step).await?;
        }
        let runs = self.store.cycle_steps(year).await?;
        runs.into_iter()
            .find(|run| run.step == step)
            .ok_or_else(|| {
                IdentityError::Internal(format!("cycle step {} vanished", step.as_str()))
            })
    }

    /// The scheduler: every `every`, runs each step of the current summer that is due today
    /// and not done.
    pub async fn run_scheduler(self: Arc<Self>, every: Duration) {
        let caller = match crate::domain::system_caller(&self.province, "system:annual-cycle") {
            Ok(caller) => caller,
            Err(error) => {
                tracing::error!(%error, "annual cycle: no scheduler without a province");
                return;
            }
        };
        loop {
            let today = self.today();
            let dates = self.dates();
            let year = dates.cycle_year(today);
            let due: Vec<CycleStep> = CycleStep::ALL
                .into_iter()
                .filter(|step| dates.scheduled(*step, year, today))
                .collect();
            if !due.is_empty() && !self.is_running(year) {
                match self.store.cycle_steps(year).await {
                    Ok(runs) => {
                        let pending: Vec<CycleStep> = due
                            .into_iter()
                            .filter(|step| !runs.iter().any(|r| r.step == *step && r.done))
                            .collect();
                        if !pending.is_empty() {
                            self.start(year, pending, caller.clone());
                        }
                    }
                    Err(error) => tracing::warn!(%error, "annual cycle: state unreadable"),
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}
