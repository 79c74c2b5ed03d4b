//! The saga's background work: passed deadlines, the effects owed to identity, starts left
//! half done, on one loop.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;
use xueji_calendar::china_today;
use xueji_workflow::Outcome;

use crate::{
    TransferError,
    links::Arrival,
    store::{
        self, Actor,
        sweep::{self, EffectKind},
    },
};

use super::*;

impl Saga {
    /// Acts on every deadline passed (database clock, moved by the node's clock skew): claims
    /// due transfers with SKIP LOCKED, so concurrent sweepers never act on one twice. Answers
    /// how many transfers were acted on.
    pub async fn sweep_deadlines(&self, batch: i64) -> Result<usize, TransferError> {
        let mut acted = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let now = sweep::database_now(&mut tx, self.skew_seconds()).await?;
            let due = sweep::claim_due(&mut tx, now, &self.province, batch).await?;
            if due.is_empty() {
                return Ok(acted);
            }
            let mut settled = Vec::new();
            for id in &due {
                let Some(record) = store::load(&mut tx, *id, false).await? else {
                    continue;
                };
                let mut task = record.task.clone();
                let sending_authority = record.sending_authority.clone().unwrap_or_default();
                let mut outcomes = Vec::new();
                // A long outage may have let several escalation deadlines pass: act on each.
                for _ in 0..8 {
                    let outcome =
                        self.with_rules(&sending_authority, |rules| task.expire(now, rules));
                    if outcome == Outcome::NotDue {
                        break;
                    }
                    let finished = matches!(outcome, Outcome::Finished(_));
                    outcomes.push(format!("{outcome:?}"));
                    if finished {
                        break;
                    }
                }
                if outcomes.is_empty() {
                    continue;
                }
                let version = store::save_task(&mut tx, *id, record.role, &task).await?;
                self.replicate_task(&mut tx, &record, &task, version)
                    .await?;
                store::audit(
                    &mut tx,
                    Actor {
                        who: "system",
                        jurisdiction: "",
                        request_id: "",
                    },
                    "transfers.deadline",
                    *id,
                    None,
                    Some(serde_json::json!({ "at": now, "outcomes": outcomes })),
                )
                .await?;
                if task.state.is_terminal() {
                    settled.push(*id);
                }
                acted += 1;
            }
            tx.commit().await?;
            self.relay_due.notify_one();
            if !settled.is_empty() {
                self.effects_due.notify_one();
            }
            if (due.len() as i64) < batch {
                return Ok(acted);
            }
        }
    }

    /// Carries out effects owed to identity (all, or `only` one transfer's); each is claimed
    /// with SKIP LOCKED and marked done in the same transaction after identity answered.
    pub async fn run_effects(
        &self,
        only: Option<Uuid>,
        batch: i64,
    ) -> Result<usize, TransferError> {
        let mut done = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let effects = sweep::claim_effects(&mut tx, only, batch).await?;
            if effects.is_empty() {
                return Ok(done);
            }
            let mut failures = 0;
            for effect in &effects {
                let result = match effect.kind {
                    EffectKind::Release => self.ledger.release(effect.transfer_id).await,
                    EffectKind::TransferOut => self.send_record(&mut tx, effect.transfer_id).await,
                    EffectKind::Complete => {
                        let record = store::load(&mut tx, effect.transfer_id, false)
                            .await?
                            .ok_or_else(|| {
                                TransferError::Internal(format!(
                                    "effect of a missing transfer {}",
                                    effect.transfer_id
                                ))
                            })?;
                        let arrival = Arrival {
                            receiving_school: record.receiving_school.clone(),
                            grade: record.target_grade,
                            entry_date: china_today(self.clock.now()),
                            deciders: record.deciders(),
                        };
                        self.ledger.complete(effect.transfer_id, &arrival).await
                    }
                };
                match result {
                    Ok(()) => {
                        sweep::effect_done(&mut tx, effect).await?;
                        done += 1;
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(transfer = %effect.transfer_id, %error, "transfer effect failed; retried later");
                        sweep::effect_failed(&mut tx, effect, &error.to_string()).await?;
                    }
                }
            }
            tx.commit().await?;
            // A transfer out queued its record for the other province.
            self.relay_due.notify_one();
            if failures > 0 || (effects.len() as i64) < batch {
                return Ok(done);
            }
        }
    }

    /// Takes over starts left `starting` (a crash, or a client that gave up).
    pub async fn resume_starts(&self) -> Result<usize, TransferError> {
        let ids = self
            .store
            .interrupted_starts(START_TAKEOVER_SECS, 50)
            .await?;
        let mut resumed = 0;
        for id in ids {
            let actor = Actor {
                who: "system",
                jurisdiction: "",
                request_id: "",
            };
            match self.drive_start(id, actor, None).await {
                Ok(_) | Err(TransferError::Refused { .. }) => resumed += 1,
                Err(error) => tracing::warn!(%id, %error, "resuming a start failed; retried later"),
            }
        }
        Ok(resumed)
    }

    /// The background work: deadlines, effects, interrupted starts, every `interval` (effects
    /// also as soon as one is queued).
    /// Each round runs as its own task: a panic in one (a bug, or input nothing should have
    /// let through) is logged and the next round runs, so the deadlines never stop.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        loop {
            let round = tokio::spawn(self.clone().background_round());
            if let Err(failure) = round.await {
                tracing::error!(%failure, "a round of the transfer sweeper failed; the next one runs");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.effects_due.notified() => {}
            }
        }
    }

    async fn background_round(self: Arc<Self>) {
        {
            if let Err(error) = self.sweep_deadlines(100).await {
                tracing::warn!(%error, "deadline sweep failed");
            }
            if let Err(error) = self.run_effects(None, 50).await {
                tracing::warn!(%error, "transfer effects failed");
            }
            if let Err(error) = self.resume_starts().await {
                tracing::warn!(%error, "resuming starts failed");
            }
            match self.store.backlog(self.clock.now()).await {
                Ok(backlog) => {
                    self.gauges
                        .estimated_deadlines
                        .set(backlog.estimated_deadlines);
                    self.gauges.overdue_steps.set(backlog.overdue_steps);
                    self.gauges.effects_pending.set(backlog.effects_pending);
                    if backlog.estimated_deadlines > 0 {
                        tracing::warn!(
                            steps = backlog.estimated_deadlines,
                            "open transfer deadlines reach a year whose calendar is not loaded"
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "reading the transfer backlog failed"),
            }
        }
    }
}
