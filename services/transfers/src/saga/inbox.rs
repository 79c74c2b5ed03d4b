//! The messages of transfers between provinces, in and out: the outbox delivered to the
//! national relay (a message the relay refuses is kept with its reason and not sent again),
//! and the inbox applied in the order taken, per transfer.
//!
//! A message that fails is classified. One that cannot be applied *yet* (identity or the
//! database did not answer) waits with a growing pause, tried until it applies, and holds back
//! only the later messages of its own transfer. One that can *never* be applied (it does not
//! read, names a transfer this province does not share with its sender, claims a step its
//! sender does not own, a record for a transfer not approved here or that is not the held
//! student) is set aside with its reason, listed for the province's operators and counted, and
//! the inbox moves past it: no message stops another transfer's.

use std::time::Duration;

use prost::Message;
use tracing::Instrument;
use uuid::Uuid;
use xueji_proto::transfers::v1::{self as pb, saga_message::Body};

use super::Saga;
use crate::{
    TransferError,
    store::relay::{self, Received},
};

/// Messages handed over per call to the national relay, and applied per transaction.
const OUTBOX_BATCH: i64 = 200;
const INBOX_BATCH: i64 = 50;

/// Whether `error` may pass (try the message again later) or is final (set it aside).
fn passes(error: &TransferError) -> bool {
    matches!(error, TransferError::Unavailable(_))
}

pub(super) fn body_kind(message: &pb::SagaMessage) -> &'static str {
    match message.body {
        Some(Body::HoldRequest(_)) => "hold_request",
        Some(Body::HoldAnswer(_)) => "hold_answer",
        Some(Body::TaskUpdate(_)) => "task_update",
        Some(Body::CancelRequest(_)) => "cancel_request",
        Some(Body::RecordMoved(_)) => "record_moved",
        None => "empty",
    }
}

impl Saga {
    /// Takes messages the national node forwards; answers how many were new.
    pub async fn take_messages(&self, messages: &[pb::SagaMessage]) -> Result<u32, TransferError> {
        let mut rows = Vec::with_capacity(messages.len());
        for (at, message) in messages.iter().enumerate() {
            let message_id: Uuid = message.message_id.parse().map_err(|_| {
                TransferError::invalid("messages.message_id", format!("message {at}: not a UUID"))
            })?;
            let transfer_id: Uuid = message.transfer_id.parse().map_err(|_| {
                TransferError::invalid("messages.transfer_id", format!("message {at}: not a UUID"))
            })?;
            if message.to_province != self.province {
                return Err(TransferError::invalid(
                    "messages.to_province",
                    format!(
                        "message {at} is for province {:?}, this is {}",
                        message.to_province.chars().take(8).collect::<String>(),
                        self.province
                    ),
                ));
            }
            if message.body.is_none() {
                return Err(TransferError::invalid(
                    "messages.body",
                    format!("message {at} says nothing"),
                ));
            }
            let from = &message.from_province;
            if !from.is_empty() && (from.len() != 2 || !from.bytes().all(|b| b.is_ascii_digit())) {
                return Err(TransferError::invalid(
                    "messages.from_province",
                    format!("message {at}: not a province code"),
                ));
            }
            rows.push((
                message_id,
                transfer_id,
                message.from_province.clone(),
                message.encode_to_vec(),
            ));
        }
        let accepted = self.store.take_messages(&rows).await?;
        self.relay_due.notify_one();
        Ok(accepted)
    }

    /// Sends what the outbox holds to the national node, oldest first; a message the relay
    /// refuses is kept with the relay's reason. Answers how many were handed over.
    pub async fn deliver_outbox(&self) -> Result<usize, TransferError> {
        let Some(link) = &self.relay else {
            return Ok(0);
        };
        let mut sent = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let Some(batch) = relay::claim_outbox(&mut tx, OUTBOX_BATCH).await? else {
                return Ok(sent);
            };
            if batch.is_empty() {
                return Ok(sent);
            }
            let messages = batch
                .iter()
                .map(|m| {
                    pb::SagaMessage::decode(m.body.as_slice()).map_err(|e| {
                        TransferError::Internal(format!("an outbox message does not read: {e}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let refused = link.relay(messages).await?;
            let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
            relay::mark_sent(&mut tx, &ids).await?;
            for (message_id, reason) in &refused {
                tracing::warn!(%message_id, %reason, "the national relay refused a transfer message");
                relay::mark_refused(&mut tx, *message_id, reason).await?;
            }
            tx.commit().await?;
            sent += batch.len();
            if (batch.len() as i64) < OUTBOX_BATCH {
                return Ok(sent);
            }
        }
    }

    /// Applies received messages in the order taken, per transfer: a message that cannot be
    /// applied yet waits (holding back its own transfer's later ones), one that never can is
    /// set aside. Answers how many were applied.
    pub async fn apply_inbox(&self) -> Result<usize, TransferError> {
        let mut applied = 0;
        loop {
            let mut tx = self.store.begin().await?;
            let Some(batch) = relay::claim_inbox(&mut tx, INBOX_BATCH).await? else {
                return Ok(applied);
            };
            if batch.is_empty() {
                return Ok(applied);
            }
            // A transfer whose message waits: its later messages in this batch wait too.
            let mut waiting: Vec<Uuid> = Vec::new();
            let mut set_aside = false;
            for received in &batch {
                if waiting.contains(&received.transfer_id) {
                    continue;
                }
                match self.apply_one(received).await {
                    Ok(()) => {
                        relay::mark_applied(&mut tx, received.id).await?;
                        applied += 1;
                    }
                    Err(error) if passes(&error) => {
                        waiting.push(received.transfer_id);
                        let attempts =
                            relay::apply_failed(&mut tx, received.id, &error.to_string()).await?;
                        if attempts == 1 {
                            tracing::info!(transfer = %received.transfer_id, %error, "a message from another province is tried again later");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(transfer = %received.transfer_id, from = %received.from_province, %error, "a message from another province is set aside");
                        relay::set_aside(&mut tx, received.id, &error.to_string()).await?;
                        set_aside = true;
                    }
                }
            }
            tx.commit().await?;
            if set_aside {
                self.count_set_aside().await;
            }
            if (batch.len() as i64) < INBOX_BATCH {
                return Ok(applied);
            }
        }
    }

    /// Sets the metric of messages set aside from the store (at start and whenever one is).
    pub(super) async fn count_set_aside(&self) {
        match self.store.set_aside_count().await {
            Ok(count) => {
                self.gauges.messages_set_aside.set(count);
            }
            Err(error) => tracing::warn!(%error, "counting the messages set aside failed"),
        }
    }

    /// Decodes and applies one received message, in its transfer's trace.
    async fn apply_one(&self, received: &Received) -> Result<(), TransferError> {
        let message = pb::SagaMessage::decode(received.body.as_slice()).map_err(|e| {
            TransferError::FailedPrecondition(format!("the message does not read: {e}"))
        })?;
        let span = tracing::info_span!(
            "transfer_message",
            transfer = %received.transfer_id,
            from = %received.from_province,
            kind = body_kind(&message),
        );
        xueji_telemetry::follow(&span, &message.traceparent);
        self.apply(received, message).instrument(span).await
    }

    /// Sending and applying messages, as soon as there are some (and every `interval`).
    /// Each round is its own task, so a panic stops one round, not the relay.
    pub async fn run_relay(self: std::sync::Arc<Self>, interval: Duration) {
        self.count_set_aside().await;
        loop {
            let this = self.clone();
            let round = tokio::spawn(async move {
                if let Err(error) = this.apply_inbox().await {
                    tracing::warn!(%error, "applying messages from other provinces failed");
                }
                if let Err(error) = this.deliver_outbox().await {
                    tracing::warn!(%error, "sending messages to other provinces failed");
                }
            });
            if let Err(failure) = round.await {
                tracing::error!(%failure, "a round of the transfer relay failed; the next one runs");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.relay_due.notified() => {}
            }
        }
    }

    async fn apply(
        &self,
        received: &Received,
        message: pb::SagaMessage,
    ) -> Result<(), TransferError> {
        let id = received.transfer_id;
        let from = received.from_province.as_str();
        match message.body {
            Some(Body::HoldRequest(request)) => {
                self.hold_for_other(id, from, &message.traceparent, request)
                    .await
            }
            Some(Body::HoldAnswer(answer)) => self.hold_answered(id, from, answer).await,
            Some(Body::TaskUpdate(update)) => self.update_received(id, from, update).await,
            Some(Body::CancelRequest(request)) => self.cancel_requested(id, from, request).await,
            Some(Body::RecordMoved(moved)) => self.record_arrived(id, from, moved).await,
            None => Err(TransferError::FailedPrecondition(
                "a message without a body".into(),
            )),
        }
    }
}
