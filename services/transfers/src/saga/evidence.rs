//! Evidence of decisions that cross provinces: this node signs the decisions of its own steps
//! when it sends the task, and checks, before it takes a decision of the other province's
//! step, that the other province's transfers service signed exactly that decision. Both are
//! kept with the step (`transfers.decision_evidence`).

use std::time::SystemTime;

use uuid::Uuid;
use xueji_proto::transfers::v1 as pb;
use xueji_workflow::Task;

use super::Saga;
use crate::{
    TransferError,
    domain::evidence::{decided_steps_of, decision_payload},
    store::relay::{self, KeptEvidence},
};

/// Signed decisions an update may carry: one per step at most.
const MAX_SIGNED: usize = xueji_workflow::MAX_STEPS;

/// Who may sign the decisions of `province`'s steps: its transfers service (or the node as a
/// whole, where one certificate serves every service).
fn may_sign_for(signer: &xueji_pki::SpiffeId, province: &str) -> bool {
    signer.province() == Some(province) && matches!(signer.name.as_str(), "transfers" | "node")
}

/// Kept evidence as the wire carries it.
pub fn evidence_to_wire(kept: &KeptEvidence) -> pb::SignedDecision {
    pb::SignedDecision {
        step: kept.step as u32,
        payload: kept.payload.clone(),
        scheme: u32::from(kept.evidence.scheme),
        signature: kept.evidence.signature.clone(),
        certificates: kept.evidence.certificates.clone(),
    }
}

/// The evidence of a signed decision as the wire carries it; `None` for a scheme out of range.
pub(crate) fn from_wire(signed: &pb::SignedDecision) -> Option<xueji_rpc::Evidence> {
    Some(xueji_rpc::Evidence {
        scheme: u16::try_from(signed.scheme).ok()?,
        signature: signed.signature.clone(),
        certificates: signed.certificates.clone(),
    })
}

/// The copies of a task an update is checked with.
pub(super) struct Copies<'a> {
    /// The task here before the update.
    pub before: &'a Task,
    /// The task after the update's merge.
    pub merged: &'a Task,
    /// The copy the other province sent.
    pub remote: &'a Task,
    /// The update's evidence.
    pub signed: &'a [pb::SignedDecision],
}

impl Saga {
    /// The evidence an update to the other province carries: every decision of this
    /// province's steps in `task`, signed here once and kept (a decision never changes, so a
    /// later copy sends the kept signature again), and the other province's evidence as
    /// received and kept (the national relay lets a record move only once it has seen the
    /// receiving province's own signatures on all of that province's steps).
    pub(super) async fn sign_own_decisions(
        &self,
        conn: &mut sqlx::PgConnection,
        transfer: Uuid,
        task: &Task,
    ) -> Result<Vec<pb::SignedDecision>, TransferError> {
        let mut kept = self.store.evidence_of_in(conn, transfer).await?;
        for (position, step) in decided_steps_of(&task.steps, &self.province) {
            let payload = decision_payload(transfer, position, step).expect("decided");
            if kept
                .iter()
                .any(|k| k.step == position && k.payload == payload)
            {
                continue;
            }
            let evidence = self.notary.sign_evidence(&payload).map_err(|e| {
                TransferError::Internal(format!("signing the decision of step {position}: {e}"))
            })?;
            let signer = evidence
                .certificates
                .first()
                .and_then(|der| xueji_pki::spiffe_id_of(der).ok())
                .map(|id| id.to_string())
                .unwrap_or_default();
            let fresh = KeptEvidence {
                step: position,
                signer,
                payload,
                evidence,
            };
            relay::keep_evidence(conn, transfer, &fresh).await?;
            kept.retain(|k| k.step != position);
            kept.push(fresh);
        }
        Ok(kept.iter().map(evidence_to_wire).collect())
    }

    /// Checks that every decision `merged` took from `from` (a step of `from` decided there and
    /// not in `before`) comes with `from`'s signature over exactly that decision as `remote`
    /// (the copy `from` sent) carries it, and keeps the evidence. Refused otherwise, naming the
    /// step: nothing of the update is applied.
    pub(super) async fn check_remote_decisions(
        &self,
        conn: &mut sqlx::PgConnection,
        transfer: Uuid,
        from: &str,
        copies: Copies<'_>,
    ) -> Result<(), TransferError> {
        let Copies {
            before,
            merged,
            remote,
            signed,
        } = copies;
        let refuse = |what: String| {
            TransferError::FailedPrecondition(format!("a message from another province: {what}"))
        };
        if signed.len() > MAX_SIGNED {
            return Err(refuse(format!(
                "task_update.signed_decisions: more than {MAX_SIGNED}"
            )));
        }
        for (position, step) in decided_steps_of(&merged.steps, from) {
            let known = before
                .steps
                .get(position)
                .and_then(|old| old.decision.as_ref())
                .is_some();
            if known {
                continue;
            }
            let sent = remote.steps.get(position).unwrap_or(step);
            let payload = decision_payload(transfer, position, sent).ok_or_else(|| {
                refuse(format!(
                    "step {position} is decided without a decision in the copy"
                ))
            })?;
            let Some(evidence) = signed.iter().find(|s| s.step as usize == position) else {
                return Err(refuse(format!(
                    "the decision of step {position} carries no signature of province {from}"
                )));
            };
            if evidence.payload != payload {
                return Err(refuse(format!(
                    "the signature of step {position} is over another decision than the task's"
                )));
            }
            let wire = from_wire(evidence).ok_or_else(|| {
                refuse(format!("signed_decisions: step {position}: unknown scheme"))
            })?;
            let at = step
                .decision
                .as_ref()
                .map(|d| SystemTime::from(d.at))
                .unwrap_or_else(SystemTime::now);
            let signer = self
                .notary
                .verify_evidence(&payload, &wire, at)
                .map_err(|e| refuse(format!("the decision of step {position}: {e}")))?;
            if !may_sign_for(&signer, from) {
                return Err(refuse(format!(
                    "the decision of step {position} is signed by {signer}, not by province \
                     {from}'s transfers service"
                )));
            }
            relay::keep_evidence(
                conn,
                transfer,
                &KeptEvidence {
                    step: position,
                    signer: signer.to_string(),
                    payload,
                    evidence: wire,
                },
            )
            .await?;
        }
        Ok(())
    }
}
