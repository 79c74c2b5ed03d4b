//! The province's link to the national node: what it owes the national index (outbox
//! messages), what the national node answers, and the [`Deliverer`] that carries both ways.
//!
//! Everything the province owes is written to its outbox in the same transaction as the change
//! it reports, so the province keeps working while the national node is away; the deliverer
//! sends the backlog in order when the link returns. Each message carries a UUID fixed when it
//! was written, and the national node applies a message id once, so a delivery interrupted on
//! either side (and retried) is applied exactly once.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use sqlx::PgPool;
use tokio::sync::{Mutex, Notify};

pub use crate::domain::outbox::{
    ApprovalContext, DeliveryOutcome, Notice, NoticeKind, OutboxBody, OutboxMessage,
};
use crate::{IdentityError, store::outbox};

/// The national node as the province reaches it (gRPC in a node; anything in a test).
pub trait NationalLink: Send + Sync + 'static {
    /// Delivers messages in order; answers one outcome per message, in order.
    fn deliver<'a>(
        &'a self,
        messages: &'a [OutboxMessage],
    ) -> BoxFuture<'a, Result<Vec<DeliveryOutcome>, IdentityError>>;

    /// Notices for this province after `after`, oldest first.
    fn notices(&self, after: i64) -> BoxFuture<'_, Result<Vec<Notice>, IdentityError>>;

    /// The live record of another province holding a resident ID number, if any: (province,
    /// registry number). A correction's national duplicate re-check.
    fn id_number_holder<'a>(
        &'a self,
        id_number: &'a str,
    ) -> BoxFuture<'a, Result<Option<(String, String)>, IdentityError>>;
}

/// Messages one delivery carries at most. The national node takes one advisory lock per
/// duplicate digest in a delivery, held until it commits, in a lock table shared by every
/// province delivering at once (README: `max_locks_per_transaction`); half the national cap
/// keeps each delivery's share of it modest.
pub const BATCH: i64 = 500;

/// What a delivery does about messages held back by a running transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeldBack {
    /// Leave them to the next round.
    NextRound,
    /// Keep delivering until the message at this outbox sequence is out.
    WaitFor(i64),
}

/// Carries the outbox to the national node and the national node's notices back.
pub struct Deliverer {
    pool: PgPool,
    link: Arc<dyn NationalLink>,
    /// Messages the national node took, and those it rejected for good (metrics).
    delivered: Counter,
    rejected: Counter,
    wake: Notify,
    /// One round at a time in this process (a round finding another process delivering skips).
    round: Mutex<()>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").finish_non_exhaustive()
    }
}

impl Deliverer {
    /// `delivered` and `rejected` count the messages the national node took and those it
    /// rejected for good.
    pub fn new(
        pool: PgPool,
        link: Arc<dyn NationalLink>,
        delivered: Counter,
        rejected: Counter,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            link,
            delivered,
            rejected,
            wake: Notify::new(),
            round: Mutex::new(()),
        })
    }

    /// Asks the background loop to deliver soon (after a change was queued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers what is ready and pulls notices, once. Answers how many messages went out.
    /// Messages held back by a transaction still running (see [`outbox::undelivered`]) wait
    /// for the next round.
    pub async fn deliver_now(&self) -> Result<usize, IdentityError> {
        self.deliver(HeldBack::NextRound).await
    }

    async fn deliver(&self, held_back: HeldBack) -> Result<usize, IdentityError> {
        const HELD_BACK_PAUSE: Duration = Duration::from_millis(5);
        let _round = self.round.lock().await;
        let mut sent = 0;
        loop {
            let mut tx = self.pool.begin().await?;
            if !outbox::take_delivery_turn(&mut tx).await? {
                break;
            }
            let messages = outbox::undelivered(&mut tx, BATCH).await?;
            if messages.is_empty() {
                // A message can wait a moment behind a transaction still running anywhere in
                // the cluster; a caller waiting for its answer (an approval's national check)
                // waits with it, as long as its own patience lasts.
                if self.still_waiting(held_back).await? {
                    drop(tx);
                    tokio::time::sleep(HELD_BACK_PAUSE).await;
                    continue;
                }
                break;
            }
            // An error here drops the transaction: the messages stay queued and go again.
            let outcomes = self.link.deliver(&messages).await?;
            if outcomes.len() != messages.len() {
                return Err(IdentityError::Unavailable(format!(
                    "the national node answered {} outcomes for {} messages",
                    outcomes.len(),
                    messages.len()
                )));
            }
            outbox::settle(&mut tx, &messages, &outcomes).await?;
            tx.commit().await?;
            sent += messages.len();
            self.delivered.inc_by(messages.len() as u64);
            let rejected = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, DeliveryOutcome::Rejected { .. }))
                .count();
            if rejected > 0 {
                self.rejected.inc_by(rejected as u64);
            }
            // What was ready when the round began is out. Messages queued meanwhile wait for
            // the next round, so that during intake they travel in full batches instead of a
            // stream of small ones chasing the registrations; a caller waiting for held-back
            // messages looks again.
            if (messages.len() as i64) < BATCH && !self.still_waiting(held_back).await? {
                break;
            }
        }
        loop {
            let after = outbox::notice_cursor(&self.pool).await?;
            let notices = self.link.notices(after).await?;
            if notices.is_empty() {
                break;
            }
            outbox::apply_notices(&self.pool, &notices).await?;
        }
        Ok(sent)
    }

    async fn still_waiting(&self, held_back: HeldBack) -> Result<bool, IdentityError> {
        Ok(match held_back {
            HeldBack::NextRound => false,
            HeldBack::WaitFor(sequence) => {
                outbox::outcome_of(&self.pool, sequence).await?.is_none()
            }
        })
    }

    /// Delivers now until the message at outbox `sequence` is out, waiting at most `patience`:
    /// for a caller that would like the national answer in its response but must not hang on a
    /// link that is down.
    pub async fn try_deliver_within(&self, patience: Duration, sequence: i64) {
        let delivery = self.deliver(HeldBack::WaitFor(sequence));
        match tokio::time::timeout(patience, delivery).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::info!(%error, "national node not reached; queued"),
            Err(_) => tracing::info!("national node slow to answer; queued"),
        }
    }

    /// Delivers on every wake-up and at least every `interval`, until the task is dropped.
    /// While the link is down it retries at `interval`, logging once per outage.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        let mut down = false;
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
            match self.deliver_now().await {
                Ok(sent) => {
                    if down {
                        tracing::info!(sent, "national node reachable again; backlog delivered");
                    }
                    down = false;
                }
                Err(error) => {
                    if !down {
                        tracing::warn!(%error, "national node unreachable; changes stay queued");
                    }
                    down = true;
                }
            }
        }
    }
}
