//! Following the school replica's voided codes: when a merger or a category change voids a
//! code, the province's replica lists it with its successor, and every current enrollment at
//! the voided code moves to the successor, one audited batch per code. The follower polls the
//! replica and resumes after the last code it moved, so a crash or a retry moves nobody twice.

use std::{sync::Arc, time::Duration};

use xueji_auth::Caller;

use crate::{
    IdentityError,
    directory::SchoolDirectory,
    store::{Actor, Store},
};

/// What one pass moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FollowReport {
    /// Voided codes whose students were moved in this pass.
    pub codes: u32,
    /// Enrollments moved.
    pub students: u64,
}

#[derive(Debug)]
pub(crate) struct SuccessionFollower {
    store: Store,
    schools: Arc<SchoolDirectory>,
    /// Who the audit log names for the moves.
    system: Caller,
}

impl SuccessionFollower {
    pub(crate) fn new(store: Store, schools: Arc<SchoolDirectory>, province: &str) -> Self {
        Self {
            store,
            schools,
            system: crate::domain::system_caller(province, "succession-follower")
                .expect("the node's province is checked at configuration"),
        }
    }

    /// Moves the students of every code voided since the last pass.
    pub(crate) async fn follow(&self) -> Result<FollowReport, IdentityError> {
        let mut report = FollowReport::default();
        let mut cursor = self.store.succession_cursor().await?;
        loop {
            let page = self.schools.successions(&cursor).await?;
            let Some(last) = page.last() else {
                return Ok(report);
            };
            let next = last.cursor();
            for succession in &page {
                // The successor must be known to registration's reads before students sit
                // there; it is in the same publication, so the replica holds it.
                if self
                    .schools
                    .get(&self.store, &succession.successor)
                    .await?
                    .is_none()
                {
                    return Err(IdentityError::Unavailable(format!(
                        "school {} (the successor of voided code {}) is not in the school list \
                         yet; its students move on the next pass",
                        succession.successor, succession.predecessor
                    )));
                }
                let actor = Actor {
                    caller: &self.system,
                    request_id: "succession-follower",
                };
                if let Some(moved) = self.store.move_school_students(succession, actor).await? {
                    tracing::info!(
                        voided = %succession.predecessor,
                        successor = %succession.successor,
                        kind = succession.kind.as_str(),
                        students = moved,
                        "students moved to the successor of a voided school code"
                    );
                    report.codes += 1;
                    report.students += moved;
                }
            }
            if next == cursor {
                return Ok(report);
            }
            cursor = next;
        }
    }

    /// Follows the replica every `every` until the process ends; a failed pass is logged and
    /// tried again on the next tick.
    pub(crate) async fn run(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.follow().await {
                tracing::warn!(%error, "following the school replica's voided codes failed");
            }
        }
    }
}
