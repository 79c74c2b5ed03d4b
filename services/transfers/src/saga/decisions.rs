//! A party's decision and a cancellation, each in one transaction on the transfer's row.

use uuid::Uuid;
use xueji_auth::{Caller, Level};
use xueji_workflow::{Decision, Outcome, Verdict};

use crate::{
    TransferError,
    domain::{self},
    store::{self, Actor, Role, TransferRecord, TransferState},
};

use super::*;

impl Saga {
    /// A decision by the party of step `position`.
    pub async fn decide(
        &self,
        caller: &Caller,
        request_id: &str,
        id: Uuid,
        position: usize,
        verdict: Verdict,
        reason: &str,
    ) -> Result<TransferRecord, TransferError> {
        if !domain::may_decide_some_step(caller) {
            return Err(TransferError::PermissionDenied(
                "steps are decided by an authority's approvers and by the sending school".into(),
            ));
        }
        let who = caller.describe();
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .filter(|r| may_see(caller, r))
            .ok_or_else(|| TransferError::NotFound(format!("transfer {id}")))?;
        if record.state == TransferState::Starting {
            return Err(TransferError::FailedPrecondition(
                "the transfer is still starting: its steps are not open yet".into(),
            ));
        }
        let step = record.task.steps.get(position).ok_or_else(|| {
            TransferError::invalid("step", format!("there is no step {position}"))
        })?;
        if !domain::may_decide(caller, &step.party) {
            return Err(TransferError::FailedPrecondition(format!(
                "step {position} is decided by {} {}",
                step.party.kind, step.party.jurisdiction
            )));
        }
        if step.party.province != self.province {
            return Err(TransferError::FailedPrecondition(format!(
                "step {position} is decided at the node of province {}",
                step.party.province
            )));
        }
        let mut task = record.task.clone();
        let now = self.clock.now();
        let sending_authority = record.sending_authority.clone().unwrap_or_default();
        let outcome = self.with_rules(&sending_authority, |rules| {
            task.decide(
                position,
                Decision {
                    verdict,
                    by: who.clone(),
                    at: now,
                    reason: reason.trim().to_owned(),
                    on_timeout: false,
                },
                rules,
            )
        });
        let outcome = outcome.map_err(workflow_error)?;
        if outcome == Outcome::AlreadyApplied {
            return Ok(record);
        }
        let version = store::save_task(&mut tx, id, record.role, &task).await?;
        self.replicate_task(&mut tx, &record, &task, version)
            .await?;
        let actor = Actor {
            who: &who,
            jurisdiction: &caller.jurisdiction.as_string(),
            request_id,
        };
        store::audit(
            &mut tx,
            actor,
            match verdict {
                Verdict::Approve => "transfers.approve",
                Verdict::Reject => "transfers.reject",
            },
            id,
            Some(serde_json::json!({ "step": position, "state": "open" })),
            Some(serde_json::json!({ "step": position, "reason": reason, "transfer": TransferState::after(task.state).as_str() })),
        )
        .await?;
        tx.commit().await?;
        self.relay_due.notify_one();
        if task.state.is_terminal() {
            self.settle(id).await;
        }
        self.get(id).await
    }

    /// The receiving side withdraws the transfer.
    pub async fn cancel(
        &self,
        caller: &Caller,
        request_id: &str,
        id: Uuid,
        reason: &str,
    ) -> Result<TransferRecord, TransferError> {
        let who = caller.describe();
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .filter(|r| may_see(caller, r))
            .ok_or_else(|| TransferError::NotFound(format!("transfer {id}")))?;
        let receiving_side = matches!(caller.level, Level::School | Level::County | Level::City)
            && caller.may_access_record(&record.receiving_school, &record.receiving_division);
        if !receiving_side {
            return Err(TransferError::PermissionDenied(
                "only the receiving school or its authorities may cancel a transfer".into(),
            ));
        }
        if record.state == TransferState::Starting {
            return Err(TransferError::FailedPrecondition(
                "the transfer is still starting; cancel it once it is in progress".into(),
            ));
        }
        let actor = Actor {
            who: &who,
            jurisdiction: &caller.jurisdiction.as_string(),
            request_id,
        };
        let mut task = record.task.clone();
        let now = self.clock.now();
        let turn_elsewhere = task
            .open_step()
            .is_some_and(|at| task.steps[at].party.province != self.province);
        if turn_elsewhere && record.role == Role::Receiving {
            // The sending province holds the turn: it applies the cancellation (unless its
            // last approval came first) and sends the task back.
            if reason.trim().is_empty() {
                return Err(TransferError::invalid("reason", "a reason is required"));
            }
            self.request_cancel(&mut tx, &record, &who, reason.trim(), now)
                .await?;
            store::audit(
                &mut tx,
                actor,
                "transfers.cancel_requested",
                id,
                None,
                Some(serde_json::json!({ "reason": reason, "sent_to": record.other_province })),
            )
            .await?;
            tx.commit().await?;
            self.relay_due.notify_one();
            return self.get(id).await;
        }
        let outcome = task
            .cancel(&who, reason.trim(), now)
            .map_err(workflow_error)?;
        if outcome == Outcome::AlreadyApplied {
            return Ok(record);
        }
        let version = store::save_task(&mut tx, id, record.role, &task).await?;
        self.replicate_task(&mut tx, &record, &task, version)
            .await?;
        store::audit(
            &mut tx,
            actor,
            "transfers.cancel",
            id,
            Some(serde_json::json!({ "state": record.state.as_str() })),
            Some(serde_json::json!({ "state": "cancelled", "reason": reason })),
        )
        .await?;
        tx.commit().await?;
        self.relay_due.notify_one();
        self.settle(id).await;
        self.get(id).await
    }

    /// Carries out at once what `id` owes identity (the caller then sees the outcome); left to
    /// the background when identity does not answer.
    async fn settle(&self, id: Uuid) {
        if let Err(error) = self.run_effects(Some(id), 10).await {
            tracing::warn!(%id, %error, "transfer effect left for the background");
        }
        self.effects_due.notify_one();
    }
}
