//! The desk's background work: steps whose deadline passed, and changes left open on
//! students who graduated.

use crate::{
    IdentityError,
    store::{Actor, Store},
};

/// Party kinds of a status change's steps.
use super::*;

impl ChangeDesk {
    /// From the clearing day (7/15) until the school year starts, ends every open status
    /// change and correction of a student in a graduating grade: cancelled by the system with
    /// the reason, which the requester and each approver read on the change; the approvers'
    /// inboxes drop it. Answers how many it cleared.
    pub(crate) async fn clear_graduating(&self) -> Result<usize, IdentityError> {
        let today = xueji_calendar::china_today(self.now());
        if !self.dates().clearing_due(today) {
            return Ok(0);
        }
        let system = crate::domain::system_caller(&self.province, "system:annual-cycle")?;
        let reason = format!(
            "cleared on {today} by the annual cycle: students of a graduating grade carry no \
             task across the summer; ask again at the next school once the stage is finished"
        );
        let mut cleared = 0;
        for id in self.store.graduating_open_changes(100).await? {
            let actor = Actor {
                caller: &system,
                request_id: "annual-cycle-clearing",
            };
            if let Some((record, true)) = self
                .withdraw(
                    id,
                    actor,
                    &reason,
                    "identity.clear_status_change",
                    || Ok(()),
                )
                .await?
            {
                tracing::info!(change = %id, student = record.student_id, "graduating grade's task cleared");
                cleared += 1;
            }
        }
        Ok(cleared)
    }

    /// Acts on every missed deadline due now: approve, reject or escalate, as the step's
    /// timeout says; then clears graduating grades' tasks when the day has come. Answers how
    /// many changes it acted on.
    pub(crate) async fn sweep(&self) -> Result<usize, IdentityError> {
        let cleared = self.clear_graduating().await?;
        let now = self.now();
        let due = self.store.due_status_changes(now, 100).await?;
        let system = crate::domain::system_caller(&self.province, "system:deadlines")?;
        let mut acted = cleared;
        for id in due {
            let Some((mut tx, mut record)) = self.store.lock_status_change(id).await? else {
                continue;
            };
            let outcome = self.with_rules(
                |rules| record.task.expire(now, rules),
                &record.registry_authority.clone(),
            );
            if matches!(outcome, xueji_workflow::Outcome::NotDue) {
                continue;
            }
            record.state = record.task.state;
            let transition = self.transition_of(&record)?;
            Store::save_status_change(
                &mut tx,
                &record,
                transition,
                "identity.status_change_deadline",
                Actor {
                    caller: &system,
                    request_id: "",
                },
            )
            .await?;
            tx.commit().await?;
            acted += 1;
        }
        Ok(acted)
    }

    /// The sweeper's loop.
    pub(crate) async fn run_sweeper(self: std::sync::Arc<Self>, every: Duration) {
        loop {
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "status-change deadlines: sweep failed; retrying");
            }
            tokio::time::sleep(every).await;
        }
    }
}
