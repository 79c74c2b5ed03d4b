//! The provincial node's link to the national authority: it hands endorsed applications over,
//! and pulls publications (into the replica) and decisions (onto the applications).
//!
//! Everything here is a retry-safe pull: publications apply in version order and only once,
//! decisions move an application only from the status they expect, and submission is
//! idempotent on the application id. A sync that fails half-way is simply run again.

use std::time::Duration;

use xueji_auth::{Caller, Jurisdiction, Level, Role};
use xueji_proto::schools::v1 as pb;

use crate::{
    SchoolsError,
    api::convert,
    domain::ApplicationStatus,
    links::AuthorityClient,
    store::{
        Actor,
        provincial::{Application, ProvincialStore},
    },
};

const DECISIONS_PER_CALL: u32 = 500;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub replica_version: i64,
    pub publications_applied: u32,
    pub decisions_applied: u32,
    pub applications_submitted: u32,
}

#[derive(Debug, Clone)]
pub struct Replicator {
    store: ProvincialStore,
    authority: AuthorityClient,
    province: String,
    /// Who the audit log names for what the replicator changes.
    system: Actor,
    /// One sync at a time (the timer's and operators'): they would only wait on each other's
    /// locks.
    running: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Replicator {
    pub fn new(store: ProvincialStore, authority: AuthorityClient, province: &str) -> Self {
        let division = format!("{province}0000")
            .parse()
            .expect("the node's province is checked at configuration");
        Self {
            store,
            authority,
            province: province.to_owned(),
            system: Actor {
                caller: Caller {
                    user: "replicator".into(),
                    level: Level::Province,
                    jurisdiction: Jurisdiction::Division(division),
                    role: Role::Operator,
                },
                request_id: "replicator".into(),
            },
            running: std::sync::Arc::default(),
        }
    }

    /// Hands an endorsed application to the national authority and marks it submitted. On
    /// failure it stays endorsed and the next sync tries again.
    pub async fn submit(&self, application: &Application) -> Result<Application, SchoolsError> {
        let mut authority = self.authority.clone();
        authority
            .submit_application(pb::SubmitApplicationRequest {
                application: Some(convert::application(application)),
            })
            .await
            .map_err(|status| {
                SchoolsError::Unavailable(format!(
                    "the national authority did not take application {}: {}",
                    application.id,
                    status.message()
                ))
            })?;
        self.store
            .advance(
                &application.id,
                ApplicationStatus::ProvinceEndorsed,
                ApplicationStatus::Submitted,
                None,
                "submit",
                "",
                &self.system,
            )
            .await
    }

    /// A sync that runs to its end even when the caller stops waiting (a request that timed
    /// out): replicating a national-size publication outlasts any request, and stopping it
    /// half-way would only roll it back.
    pub async fn sync_to_the_end(&self) -> Result<SyncReport, SchoolsError> {
        let replicator = self.clone();
        tokio::spawn(async move { replicator.sync().await })
            .await
            .map_err(|e| SchoolsError::Unavailable(format!("the replica sync stopped: {e}")))?
    }

    pub async fn sync(&self) -> Result<SyncReport, SchoolsError> {
        let _running = self.running.lock().await;
        let mut report = SyncReport::default();
        for application in self
            .store
            // Endorsed and not yet handed over: a handful at any time; the rest waits for the
            // next sync.
            .applications("", Some(ApplicationStatus::ProvinceEndorsed), None, 1000)
            .await?
        {
            if self.submit(&application).await.is_ok() {
                report.applications_submitted += 1;
            }
        }
        report.publications_applied = self.pull_publications().await?;
        report.decisions_applied = self.pull_decisions().await?;
        report.replica_version = self.store.replica_state().await?.version;
        Ok(report)
    }

    /// Applies every publication the replica lacks, in order, each in one transaction fed a
    /// page of changes at a time.
    async fn pull_publications(&self) -> Result<u32, SchoolsError> {
        let mut applied = 0;
        loop {
            let after = self.store.replica_state().await?.version;
            let Some(mut applier) = self.store.begin_publication(after + 1).await? else {
                // Another sync applied it meanwhile.
                continue;
            };
            let mut after_change = 0;
            loop {
                let page = self.publication_page(after, after_change).await?;
                let Some(publication) = page.into_iter().next() else {
                    // Nothing newer is published: the applier's transaction rolls back.
                    return Ok(applied);
                };
                let publication = convert::received_publication(publication)?;
                if publication.version != applier.version() {
                    return Err(SchoolsError::Unavailable(format!(
                        "the national authority sent version {} for version {}",
                        publication.version,
                        applier.version()
                    )));
                }
                applier.apply(&publication.changes).await?;
                if publication.complete {
                    break;
                }
                after_change = publication
                    .changes
                    .last()
                    .map(|change| change.id)
                    .ok_or_else(|| {
                        SchoolsError::Unavailable(
                            "the national authority sent an empty page of a publication".into(),
                        )
                    })?;
            }
            let version = applier.version();
            applier.finish(&self.system).await?;
            applied += 1;
            tracing::info!(version, "publication replicated");
        }
    }

    /// One page of publication `after + 1`, from the change after `after_change`.
    async fn publication_page(
        &self,
        after: i64,
        after_change: i64,
    ) -> Result<Vec<pb::Publication>, SchoolsError> {
        Ok(self
            .authority
            .clone()
            .list_publications(pb::ListPublicationsRequest {
                after_version: after.max(0) as u64,
                limit: 1,
                after_change_id: after_change.max(0) as u64,
                max_changes: 0,
            })
            .await
            .map_err(|status| {
                SchoolsError::Unavailable(format!(
                    "the national authority did not send publications: {}",
                    status.message()
                ))
            })?
            .into_inner()
            .publications)
    }

    async fn pull_decisions(&self) -> Result<u32, SchoolsError> {
        let mut applied = 0;
        loop {
            let after = self.store.replica_state().await?.decision_cursor;
            let decisions = self
                .authority
                .clone()
                .list_decisions(pb::ListDecisionsRequest {
                    province: self.province.clone(),
                    after_cursor: after.max(0) as u64,
                })
                .await
                .map_err(|status| {
                    SchoolsError::Unavailable(format!(
                        "the national authority did not send decisions: {}",
                        status.message()
                    ))
                })?
                .into_inner()
                .decisions;
            let Some(last) = decisions.last().map(|d| d.cursor as i64) else {
                return Ok(applied);
            };
            for decision in &decisions {
                if self.apply_decision(decision).await? {
                    applied += 1;
                }
            }
            self.store.set_decision_cursor(last).await?;
            if decisions.len() < DECISIONS_PER_CALL as usize {
                return Ok(applied);
            }
        }
    }

    /// Moves the application a decision is about; false when it already moved (or is not
    /// this province's).
    async fn apply_decision(&self, decision: &pb::Decision) -> Result<bool, SchoolsError> {
        let Some(application) = self.store.application(&decision.application_id).await? else {
            return Ok(false);
        };
        let (to, action) = match pb::ApplicationStatus::try_from(decision.status) {
            Ok(pb::ApplicationStatus::Approved) => (ApplicationStatus::Approved, "approve"),
            Ok(pb::ApplicationStatus::Rejected) => (ApplicationStatus::Rejected, "reject"),
            _ => return Ok(false),
        };
        // An application can be decided before the province heard that it arrived.
        let from = match application.status {
            ApplicationStatus::Submitted | ApplicationStatus::ProvinceEndorsed => {
                application.status
            }
            _ => return Ok(false),
        };
        let code = (!decision.code.is_empty()).then_some(decision.code.as_str());
        match self
            .store
            .advance(
                &application.id,
                from,
                to,
                code,
                action,
                &decision.reason,
                &self.system,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(SchoolsError::FailedPrecondition(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Syncs every `interval` until the task is dropped.
    pub async fn run(self, interval: Duration) {
        loop {
            if let Err(error) = self.sync().await {
                tracing::warn!(%error, "replica sync failed; retrying");
            }
            tokio::time::sleep(interval).await;
        }
    }
}
