//! The national registry's use cases: what the authority's handlers call once a request is
//! decoded into domain values and its caller authorized. Each step that voids a code or
//! closes a school asks the provinces for the school's students first; the store applies the
//! domain's rule inside one transaction and audits it.

use xueji_codes::{SchoolCategory, SchoolCode};

use crate::{
    SchoolsError,
    domain::{self, Profile, SchoolRecord, SchoolStatus, StageOffered, StepOrder},
    links::Workloads,
    store::{
        Actor,
        national::{Merger, NationalApplication, NationalStore, Publication},
    },
};

/// An application as the province endorsed it, checked.
#[derive(Debug, Clone)]
pub(crate) struct EndorsedApplication {
    /// The province's own id of the application; the same id again is a retry.
    pub(crate) id: String,
    pub(crate) profile: Profile,
    pub(crate) open_from: chrono::NaiveDate,
    pub(crate) filed_by: String,
}

/// The national registry: issues codes and applies the lifecycle steps.
#[derive(Debug)]
pub(crate) struct Registry {
    store: NationalStore,
    workloads: Workloads,
}

impl Registry {
    pub(crate) fn new(store: NationalStore, workloads: Workloads) -> Self {
        Self { store, workloads }
    }

    /// Holds an application a province sends; only the school's own province may.
    pub(crate) async fn submit(
        &self,
        application: EndorsedApplication,
        actor: &Actor,
    ) -> Result<NationalApplication, SchoolsError> {
        domain::require_own_province(&actor.caller, application.profile.division)?;
        let held = NationalApplication {
            id: application.id,
            province: application.profile.province().to_owned(),
            profile: application.profile,
            open_from: application.open_from,
            filed_by: application.filed_by,
            status: "submitted".into(),
            code: None,
            reason: None,
        };
        self.store.submit(&held, actor).await
    }

    pub(crate) async fn approve(
        &self,
        id: &str,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        self.store.approve(id, actor).await
    }

    pub(crate) async fn reject(
        &self,
        id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<NationalApplication, SchoolsError> {
        self.store.reject(id, reason, actor).await
    }

    pub(crate) async fn rename(
        &self,
        order: &StepOrder,
        new_name: &str,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        self.store
            .rename(
                &order.code,
                new_name,
                order.effective_date,
                &order.reason,
                actor,
            )
            .await
    }

    /// Merges schools; the codes it voids must have no students left that a province still
    /// has to move.
    pub(crate) async fn merge(
        &self,
        merger: &Merger,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let voided: Vec<_> = merger
            .predecessors
            .iter()
            .filter(|code| Some(*code) != merger.keep.as_ref())
            .cloned()
            .collect();
        self.check_before_voiding(&voided).await?;
        self.store.merge(merger, actor).await
    }

    /// Changes a school's category, which voids its code for a new one.
    pub(crate) async fn change_category(
        &self,
        order: &StepOrder,
        category: SchoolCategory,
        stages: &[StageOffered],
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        self.check_before_voiding(std::slice::from_ref(&order.code))
            .await?;
        self.store
            .change_category(
                &order.code,
                category,
                stages,
                order.effective_date,
                &order.reason,
                actor,
            )
            .await
    }

    /// Closes a school; an open one must have no students or open tasks left.
    pub(crate) async fn close(
        &self,
        order: &StepOrder,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let current = self
            .store
            .school(order.code.as_str())
            .await?
            .ok_or_else(|| SchoolsError::NotFound(format!("school {}", order.code)))?;
        // Only an open school needs the students checked; a retry on a closed one answers as is.
        let workload = if current.status == SchoolStatus::Open {
            Some(self.workloads.of(&order.code).await?)
        } else {
            None
        };
        self.store
            .close(
                &order.code,
                order.effective_date,
                &order.reason,
                workload,
                actor,
            )
            .await
    }

    pub(crate) async fn reopen(
        &self,
        order: &StepOrder,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        self.store
            .reopen(&order.code, order.effective_date, &order.reason, actor)
            .await
    }

    /// Publishes what changed since the last version; nothing changed is refused.
    pub(crate) async fn publish(
        &self,
        note: &str,
        actor: &Actor,
    ) -> Result<Publication, SchoolsError> {
        self.store.publish(note, actor).await?.ok_or_else(|| {
            SchoolsError::FailedPrecondition(
                "nothing changed since the last publication; nothing to publish".into(),
            )
        })
    }

    /// The workload check before codes are voided by a merger or a category change: their
    /// students move to the successor once the province replicates the publication, but their
    /// tasks must be finished first. A code already voided (a retry) is not asked again.
    async fn check_before_voiding(&self, codes: &[SchoolCode]) -> Result<(), SchoolsError> {
        for code in codes {
            let open = self
                .store
                .school(code.as_str())
                .await?
                .is_some_and(|school| school.status == SchoolStatus::Open);
            if open {
                domain::void_with_students(code, self.workloads.of(code).await?)?;
            }
        }
        Ok(())
    }
}
