//! What a deciding node signs about a decision that crosses provinces, and the check that a
//! signed decision is the decision the task carries. Pure: signing and verifying are the
//! saga's (with its certificate's key); this module only says which bytes.

use serde::Serialize;
use uuid::Uuid;
use xueji_workflow::{Step, Verdict};

/// The decision as signed: transfer, step, party, outcome, actor and time. Serialised as JSON
/// with its fields in this order, so the signer and every verifier build the same bytes.
#[derive(Debug, Serialize)]
struct SignedFields<'a> {
    transfer_id: String,
    step: usize,
    party_kind: &'a str,
    party_jurisdiction: &'a str,
    party_province: &'a str,
    outcome: &'static str,
    by: &'a str,
    /// RFC 3339 to the microsecond: what storage keeps of an instant, so a decision read
    /// back from the database signs as it did when it was made.
    at: String,
    reason: &'a str,
    on_timeout: bool,
}

/// The bytes a node signs for the decision of `step` (at `position`) of transfer `transfer`;
/// `None` when the step is undecided.
pub fn decision_payload(transfer: Uuid, position: usize, step: &Step) -> Option<Vec<u8>> {
    let decision = step.decision.as_ref()?;
    let fields = SignedFields {
        transfer_id: transfer.to_string(),
        step: position,
        party_kind: &step.party.kind,
        party_jurisdiction: &step.party.jurisdiction,
        party_province: &step.party.province,
        outcome: match decision.verdict {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        },
        by: &decision.by,
        at: decision
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        reason: &decision.reason,
        on_timeout: decision.on_timeout,
    };
    Some(serde_json::to_vec(&fields).expect("plain fields serialise"))
}

/// The decided steps of `province` in `steps`, with their positions.
pub fn decided_steps_of<'a>(
    steps: &'a [Step],
    province: &'a str,
) -> impl Iterator<Item = (usize, &'a Step)> + 'a {
    steps
        .iter()
        .enumerate()
        .filter(move |(_, step)| step.party.province == province && step.decision.is_some())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use xueji_workflow::{Decision, Party};

    use super::*;

    fn decided(by: &str) -> Step {
        let mut step = Step::new(Party {
            kind: "sending_school".into(),
            jurisdiction: "3401020001".into(),
            province: "34".into(),
        });
        step.decision = Some(Decision {
            verdict: Verdict::Approve,
            by: by.into(),
            at: Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0).unwrap()
                + chrono::Duration::nanoseconds(123_456_789),
            reason: String::new(),
            on_timeout: false,
        });
        step
    }

    #[test]
    fn the_payload_names_every_signed_field_and_changes_with_any() {
        let id = Uuid::nil();
        let payload =
            String::from_utf8(decision_payload(id, 2, &decided("王老师")).unwrap()).unwrap();
        for part in [
            "\"step\":2",
            "\"party_kind\":\"sending_school\"",
            "\"outcome\":\"approve\"",
            "\"by\":\"王老师\"",
            "2026-09-01T08:00:00.123456Z",
        ] {
            assert!(payload.contains(part), "{payload}");
        }
        assert_ne!(
            decision_payload(id, 2, &decided("王老师")),
            decision_payload(id, 2, &decided("李老师"))
        );
        assert_ne!(
            decision_payload(id, 2, &decided("王老师")),
            decision_payload(id, 1, &decided("王老师"))
        );
        assert!(decision_payload(id, 0, &Step::new(decided("x").party)).is_none());
    }
}
