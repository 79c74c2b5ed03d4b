//! A province is trusted for its own students and steps only (DESIGN §7). Tried as a
//! misbehaving province would, with its own transfers certificate and token key: the national
//! relay keeps each transfer between its two provinces and each kind of message to its
//! direction, and each province takes from the other only what the other owns. Real nodes,
//! real mutual TLS, real PostgreSQL.

use prost::Message;
use xueji_auth::{Level, Role};
use xueji_proto::transfers::v1::{self as tpb, saga_message::Body};
use xueji_tests::{
    federation::{Federation, OUTSIDER},
    relay::{
        index_owner, message, moved_record, peer_of, relay_as, relay_one, set_aside_in,
        stored_steps,
    },
    resident_id,
    transfers::{
        active_student, approve_step_across, eventually, party_client, start_request, state_in,
        step_in,
    },
};
use xueji_workflow::{Decision, StepState, Task, TaskState, Verdict};

/// A sender of the relay matrix, its addressee, and per kind whether the relay takes it on
/// (the sender's own transfer, a transfer of another pair, an unknown transfer).
type Sender = (&'static str, &'static str, [(&'static str, [bool; 3]); 5]);

/// Fujian (35) receives, Anhui (34) sends.
const R: &str = "35";
const S: &str = "34";

/// A transfer of an Anhui pupil to a Fujian school, approved by Fujian's authority, waiting
/// for the Anhui school: (transfer id, registry number).
async fn transfer_waiting_for_anhui(federation: &Federation) -> (String, String, String, String) {
    let receiving = federation.primary_schools(R).await[0].clone();
    let sending = federation.primary_schools(S).await[0].clone();
    let (number, name, birth) = active_student(federation, S, &sending).await;
    federation.delivered(S).await;
    let started = federation
        .transfers(R, Level::School, &receiving, Role::Operator)
        .await
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("started")
        .into_inner()
        .transfer
        .expect("transfer");
    assert_eq!(
        started.state(),
        tpb::TransferState::InProgress,
        "{started:?}"
    );
    approve_step_across(federation, R, &started.id, 0).await;
    eventually("the Anhui school's turn", async || {
        step_in(federation, S, &started.id, 1)
            .await
            .is_some_and(|(_, _, state)| state == "open")
    })
    .await;
    (started.id, number, name, birth)
}

/// The newest task copy `province` sent about `id` (as its outbox holds it): what a forger
/// starts from.
async fn last_copy_sent(federation: &Federation, province: &str, id: &str) -> Task {
    let bodies: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT body FROM transfers.outbox WHERE transfer_id = $1::uuid ORDER BY id DESC",
    )
    .bind(id)
    .fetch_all(&federation.province(province).pool)
    .await
    .expect("outbox");
    bodies
        .iter()
        .find_map(
            |body| match tpb::SagaMessage::decode(body.as_slice()).ok()?.body? {
                Body::TaskUpdate(update) if !update.task_json.is_empty() => {
                    serde_json::from_str(&update.task_json).ok()
                }
                _ => None,
            },
        )
        .expect("a task copy was sent")
}

fn forged_update(task: &Task, version: u64) -> tpb::TaskUpdate {
    tpb::TaskUpdate {
        version,
        state: "approved".into(),
        task_json: serde_json::to_string(task).unwrap(),
        ..Default::default()
    }
}

/// Every step approved, by a forger, the task approved: the attack of review C1.
fn all_approved(mut task: Task) -> Task {
    for step in &mut task.steps {
        if step.decision.is_none() {
            step.state = StepState::Approved;
            step.decision = Some(Decision {
                verdict: Verdict::Approve,
                by: "forged-by-province-35".into(),
                at: chrono::Utc::now(),
                reason: String::new(),
                on_timeout: false,
            });
        }
    }
    task.state = TaskState::Approved;
    task
}

async fn enrollment_status(
    federation: &Federation,
    province: &str,
    number: &str,
) -> Option<String> {
    sqlx::query_scalar(
        "SELECT e.status FROM identity.students s
         JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
         WHERE s.registry_number = $1",
    )
    .bind(number)
    .fetch_optional(&federation.province(province).pool)
    .await
    .expect("enrollment")
}

/// The relay's matrix: sender province × message kind × {the sender's own transfer, a
/// transfer of another pair, an unknown transfer}, each cell answering as declared.
#[tokio::test]
async fn the_relay_keeps_each_transfer_to_its_two_provinces_and_each_kind_to_its_direction() {
    let federation = Federation::start().await;
    let (own, number, name, birth) = transfer_waiting_for_anhui(&federation).await;
    let anhui_before = stored_steps(&federation, S, &own).await;

    // A transfer of another pair: Zhejiang (no node, in no directory) asks Anhui to hold one
    // of its pupils. The relay binds it to Zhejiang and Anhui.
    let anhui_school = federation.primary_schools(S).await[0].clone();
    let (other_number, other_name, other_birth) =
        active_student(&federation, S, &anhui_school).await;
    federation.delivered(S).await;
    let other = uuid::Uuid::new_v4().to_string();
    let mut outsider = relay_as(&federation, OUTSIDER).await;
    let hold = |number: &str, name: &str, birth: &str| {
        Body::HoldRequest(tpb::HoldRequest {
            registry_number: number.into(),
            name: name.into(),
            birth_date: birth.into(),
            receiving_school_code: "2133000001".into(),
            receiving_division: "330102".into(),
            receiving_authority: "330102".into(),
            target_grade: 3,
            reason: "随父母".into(),
            started_by: "zhejiang".into(),
            ..Default::default()
        })
    };
    assert_eq!(
        relay_one(
            &mut outsider,
            message(
                &other,
                OUTSIDER,
                "",
                hold(&other_number, &other_name, &other_birth)
            )
        )
        .await,
        None,
        "a hold request is routed to the student's owner"
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let nobody = format!("G{}", resident_id("34010220160101003"));

    // What each kind says (harmless where it is taken; the receivers are tried below).
    let forged = forged_update(
        &all_approved(last_copy_sent(&federation, R, &own).await),
        50,
    );
    let body = |kind: &str| -> Body {
        match kind {
            "hold_request" => hold(&nobody, "无人", "2016-01-01"),
            "hold_answer" => Body::HoldAnswer(tpb::HoldAnswer {
                held: false,
                refusal: "DATA_MISMATCH".into(),
                ..Default::default()
            }),
            "task_update" => Body::TaskUpdate(forged.clone()),
            "cancel_request" => Body::CancelRequest(tpb::CancelRequest {
                by: "forger".into(),
                reason: "矩阵".into(),
                at: "not a time".into(),
            }),
            _ => Body::RecordMoved(moved_record(&nobody, "伪造学生", "2016-01-01")),
        }
    };
    // sender, its addressee, then per kind: taken? on (own, other pair, unknown).
    let expected: [Sender; 3] = [
        (
            R,
            S,
            [
                ("hold_request", [false, false, true]),
                ("hold_answer", [false, false, false]),
                ("task_update", [true, false, false]),
                ("cancel_request", [true, false, false]),
                ("record_moved", [false, false, false]),
            ],
        ),
        (
            S,
            R,
            [
                ("hold_request", [false, false, true]),
                ("hold_answer", [true, false, false]),
                ("task_update", [true, false, false]),
                ("cancel_request", [false, false, false]),
                ("record_moved", [false, false, false]),
            ],
        ),
        (
            OUTSIDER,
            S,
            [
                ("hold_request", [false, false, true]),
                ("hold_answer", [false, false, false]),
                ("task_update", [false, true, false]),
                ("cancel_request", [false, true, false]),
                ("record_moved", [false, false, false]),
            ],
        ),
    ];
    let mut wrong = Vec::new();
    for (sender, to, kinds) in expected {
        let mut relay = relay_as(&federation, sender).await;
        for (kind, cells) in kinds {
            for ((which, transfer), taken) in
                [("own", &own), ("other pair", &other), ("unknown", &unknown)]
                    .into_iter()
                    .zip(cells)
            {
                // A transfer the sender is not part of is addressed to the sender's counterpart
                // on its own transfer; a new hold request has no addressee.
                let to = if kind == "hold_request" { "" } else { to };
                let transfer = if kind == "hold_request" && which == "unknown" {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    transfer.clone()
                };
                let answer =
                    relay_one(&mut relay, message(&transfer, sender, to, body(kind))).await;
                if answer.is_none() != taken {
                    wrong.push(format!(
                        "{sender} → {to:?} {kind} on the {which} transfer: expected {}, got {answer:?}",
                        if taken { "taken" } else { "refused" }
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "relay cells answering otherwise:\n{}",
        wrong.join("\n")
    );

    // A message to a province outside the directory, and one claiming another sender.
    let mut fujian = relay_as(&federation, R).await;
    let reason = relay_one(&mut fujian, message(&own, R, "99", body("task_update"))).await;
    assert!(
        reason.is_some_and(|r| r.contains("99")),
        "an unknown province is refused"
    );
    let reason = relay_one(&mut fujian, message(&own, S, R, body("task_update"))).await;
    assert!(reason.is_some_and(|r| r.contains("from_province")));
    // Refusals are audited at the national node.
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit.entries WHERE action = 'national.relay_refused'",
    )
    .fetch_one(&federation.national.pool)
    .await
    .unwrap();
    assert!(audited >= 20, "refusals audited: {audited}");

    // What the relay took changed nothing the sender does not own: Fujian's forged approval
    // reached Anhui and left Anhui's steps as they were, the pupil active in Anhui, the index
    // naming Anhui; the cancellation that does not read was set aside.
    eventually(
        "Anhui set aside the cancellation that does not read",
        async || {
            set_aside_in(&federation, S)
                .await
                .iter()
                .any(|m| m.transfer_id == own && m.reason.contains("cancel_request.at"))
        },
    )
    .await;
    assert_eq!(stored_steps(&federation, S, &own).await, anhui_before);
    assert_eq!(
        state_in(&federation, S, &own).await.as_deref(),
        Some("in_progress")
    );
    assert_eq!(
        enrollment_status(&federation, S, &number).await.as_deref(),
        Some("active")
    );
    assert_eq!(index_owner(&federation, &number).await.as_deref(), Some(S));
    assert_eq!(enrollment_status(&federation, R, &number).await, None);

    // The transfer still runs to its end by the parties' own decisions.
    for position in [1, 2] {
        approve_step_across(&federation, R, &own, position).await;
    }
    eventually("the record opens in Fujian", async || {
        state_in(&federation, R, &own).await.as_deref() == Some("completed")
    })
    .await;
    assert_eq!(
        enrollment_status(&federation, R, &number).await.as_deref(),
        Some("active")
    );
    assert_eq!(index_owner(&federation, &number).await.as_deref(), Some(R));
    let _ = (name, birth);
}

/// Past the relay (as if it were fooled): each province checks again. A forged approval of
/// the sending side's steps changes nothing there; a record on a transfer the receiving
/// authority rejected opens nothing; a message that can never apply is set aside and the
/// next one applies; codes that are not ASCII digits answer errors, not panics.
#[tokio::test]
async fn each_province_checks_again_and_sets_aside_what_never_applies() {
    let federation = Federation::start().await;
    let (id, number, _, _) = transfer_waiting_for_anhui(&federation).await;
    let before = stored_steps(&federation, S, &id).await;
    let mut anhui = peer_of(&federation, S).await;
    let copy = last_copy_sent(&federation, R, &id).await;

    // 1. An update of a transfer Anhui does not have; 2. a copy whose Fujian step names a
    // jurisdiction that is not a code (the sweeper's panic of review H3); 3. the forged
    // approval; 4. a copy from a province that is not the transfer's other side.
    let mut bad_code = copy.clone();
    bad_code.steps[0].party.jurisdiction = "351é1".into();
    let poison = [
        message(
            &uuid::Uuid::new_v4().to_string(),
            R,
            S,
            Body::TaskUpdate(forged_update(&copy, 60)),
        ),
        message(&id, R, S, Body::TaskUpdate(forged_update(&bad_code, 61))),
        message(
            &id,
            R,
            S,
            Body::TaskUpdate(forged_update(&all_approved(copy.clone()), 62)),
        ),
        message(&id, OUTSIDER, S, Body::TaskUpdate(forged_update(&copy, 63))),
    ];
    anhui
        .receive_messages(tpb::ReceiveMessagesRequest {
            messages: poison.to_vec(),
        })
        .await
        .expect("taken");
    eventually(
        "Anhui set the poison aside, each for its reason",
        async || {
            let reasons: Vec<String> = set_aside_in(&federation, S)
                .await
                .into_iter()
                .map(|m| m.reason)
                .collect();
            reasons.iter().any(|r| r.contains("unknown transfer"))
                && reasons.iter().any(|r| r.contains("not a code"))
                && reasons.iter().any(|r| r.contains(OUTSIDER))
        },
    )
    .await;
    // The forged approval was taken for what Fujian owns (nothing new) and nothing else.
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM transfers.inbox WHERE message_id = $1::uuid AND applied_at IS NOT NULL",
    )
    .bind(&poison[2].message_id)
    .fetch_one(&federation.province(S).pool)
    .await
    .unwrap();
    assert_eq!(applied, 1);
    assert_eq!(stored_steps(&federation, S, &id).await, before);
    assert_eq!(
        enrollment_status(&federation, S, &number).await.as_deref(),
        Some("active")
    );

    // The inbox moved past them: the sending school's own approval goes on to Fujian, and the
    // sweeper still runs (the transfer completes through both sides' effects).
    for position in [1, 2] {
        approve_step_across(&federation, R, &id, position).await;
    }
    eventually("the transfer completes past the poison", async || {
        state_in(&federation, R, &id).await.as_deref() == Some("completed")
    })
    .await;

    // A record on a transfer Fujian's authority rejected (review C2), delivered past the
    // relay: set aside, nothing opens in Fujian.
    let receiving = federation.primary_schools(R).await[0].clone();
    let sending = federation.primary_schools(S).await[0].clone();
    let (held, name, birth) = active_student(&federation, S, &sending).await;
    federation.delivered(S).await;
    let rejected = federation
        .transfers(R, Level::School, &receiving, Role::Operator)
        .await
        .start_transfer(start_request(&receiving, &held, &name, &birth))
        .await
        .expect("started")
        .into_inner()
        .transfer
        .expect("transfer");
    let authority = &rejected.steps[0].jurisdiction;
    party_client(&federation, R, authority)
        .await
        .reject_transfer(tpb::RejectTransferRequest {
            transfer_id: rejected.id.clone(),
            step: 0,
            reason: "材料不全".into(),
        })
        .await
        .expect("rejected");
    let fabricated = format!("G{}", resident_id("35010220180101123"));
    let mut fujian = peer_of(&federation, R).await;
    fujian
        .receive_messages(tpb::ReceiveMessagesRequest {
            messages: vec![
                message(
                    &rejected.id,
                    S,
                    R,
                    Body::RecordMoved(moved_record(&fabricated, "伪造学生", "2018-01-01")),
                ),
                message(
                    &rejected.id,
                    S,
                    R,
                    Body::RecordMoved(moved_record(&held, &name, &birth)),
                ),
            ],
        })
        .await
        .expect("taken");
    eventually("Fujian set both records aside", async || {
        set_aside_in(&federation, R)
            .await
            .iter()
            .filter(|m| m.transfer_id == rejected.id)
            .count()
            == 2
    })
    .await;
    assert_eq!(enrollment_status(&federation, R, &fabricated).await, None);
    assert_eq!(enrollment_status(&federation, R, &held).await, None);
    // Through the relay the same fabricated record is refused before it is forwarded.
    let mut relay = relay_as(&federation, S).await;
    let refused = relay_one(
        &mut relay,
        message(
            &rejected.id,
            S,
            R,
            Body::RecordMoved(moved_record(&fabricated, "伪造学生", "2018-01-01")),
        ),
    )
    .await;
    assert!(
        refused.is_some(),
        "a record the sender does not own is refused at the relay"
    );

    // The set-aside count is a metric.
    let metrics = federation.metrics(federation.province(S)).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("xueji_transfer_messages_set_aside ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

/// A copy of `task` from Anhui deciding its school's step (position 1), with `signed` as the
/// update's evidence.
fn anhui_school_decides(task: &Task, version: u64, signed: Vec<tpb::SignedDecision>) -> Body {
    let mut task = task.clone();
    task.steps[1].state = StepState::Approved;
    task.steps[1].decision = Some(Decision {
        verdict: Verdict::Approve,
        by: "anhui-school-operator".into(),
        at: chrono::Utc::now(),
        reason: String::new(),
        on_timeout: false,
    });
    Body::TaskUpdate(tpb::TaskUpdate {
        version,
        state: "in_progress".into(),
        task_json: serde_json::to_string(&task).unwrap(),
        signed_decisions: signed,
        ..Default::default()
    })
}

/// `province`'s transfers service signing, as its node does, the decision of `position`.
fn signed_by(
    federation: &Federation,
    province: &str,
    id: &str,
    body: &Body,
    position: usize,
) -> tpb::SignedDecision {
    let Body::TaskUpdate(update) = body else {
        unreachable!()
    };
    let task: Task = serde_json::from_str(&update.task_json).unwrap();
    let payload = xueji_transfers::domain::evidence::decision_payload(
        id.parse().unwrap(),
        position,
        &task.steps[position],
    )
    .unwrap();
    let notary = xueji_rpc::TlsSource::from_dir(&federation.pki(province), "transfers").unwrap();
    let evidence = notary.sign_evidence(&payload).unwrap();
    tpb::SignedDecision {
        step: position as u32,
        payload,
        scheme: u32::from(evidence.scheme),
        signature: evidence.signature,
        certificates: evidence.certificates,
    }
}

fn with_signed(body: Body, signed: tpb::SignedDecision) -> Body {
    let Body::TaskUpdate(mut update) = body else {
        unreachable!()
    };
    update.signed_decisions = vec![signed];
    Body::TaskUpdate(update)
}

/// Every decision that crosses provinces carries the deciding node's signature: the receiver
/// keeps it and shows it (anyone with the root verifies it); an update whose decision is
/// unsigned, signed over another decision, tampered with, or signed by another province is
/// refused at the relay (what it can check) and set aside at the receiver.
#[tokio::test]
async fn decisions_cross_provinces_only_with_their_deciders_signature() {
    let federation = Federation::start().await;
    let (id, number, name, birth) = transfer_waiting_for_anhui(&federation).await;

    // Anhui cannot hand its pupil to Fujian before Fujian approved: the held student's record,
    // sent now, is refused and the index's owner stays Anhui.
    let mut relay = relay_as(&federation, S).await;
    let early = relay_one(
        &mut relay,
        message(
            &id,
            S,
            R,
            Body::RecordMoved(moved_record(&number, &name, &birth)),
        ),
    )
    .await
    .expect("refused before the receiving province approved");
    assert!(early.contains("has not approved"), "{early}");
    assert_eq!(index_owner(&federation, &number).await.as_deref(), Some(S));

    // Fujian's approval reached Anhui with Fujian's signature; Anhui kept it and shows it.
    let shown = federation
        .transfers(S, Level::Province, &format!("{S}0000"), Role::Operator)
        .await
        .get_transfer(tpb::GetTransferRequest {
            transfer_id: id.clone(),
        })
        .await
        .expect("the transfer")
        .into_inner()
        .transfer
        .expect("transfer");
    let evidence = shown.steps[0].evidence.clone().expect("step 0's evidence");
    let verifier = xueji_rpc::TlsSource::from_dir(&federation.pki(S), "operator").unwrap();
    let signer = verifier
        .verify_evidence(
            &evidence.payload,
            &xueji_rpc::Evidence {
                scheme: evidence.scheme as u16,
                signature: evidence.signature.clone(),
                certificates: evidence.certificates.clone(),
            },
            std::time::SystemTime::now(),
        )
        .expect("Fujian's signature verifies");
    assert_eq!(signer.to_string(), "spiffe://xueji/province/35/transfers");
    let payload = String::from_utf8(evidence.payload.clone()).unwrap();
    assert!(
        payload.contains(&id) && payload.contains("\"outcome\":\"approve\""),
        "{payload}"
    );

    // Forgeries of the Anhui school's decision, as Fujian would receive them.
    let copy = last_copy_sent(&federation, R, &id).await;
    let unsigned = anhui_school_decides(&copy, 70, Vec::new());
    let tampered = anhui_school_decides(&copy, 71, Vec::new());
    let mut tampered_signature = signed_by(&federation, S, &id, &tampered, 1);
    tampered_signature.signature[8] ^= 0x01;
    let other = anhui_school_decides(&copy, 72, Vec::new());
    let other_decision = {
        // Anhui's own valid signature, over a decision the task does not carry.
        let mut elsewhere = copy.clone();
        elsewhere.steps[1].decision = Some(Decision {
            verdict: Verdict::Reject,
            by: "anhui-school-operator".into(),
            at: chrono::Utc::now(),
            reason: "另一个决定".into(),
            on_timeout: false,
        });
        let elsewhere = Body::TaskUpdate(tpb::TaskUpdate {
            task_json: serde_json::to_string(&elsewhere).unwrap(),
            ..Default::default()
        });
        signed_by(&federation, S, &id, &elsewhere, 1)
    };
    let outsider = anhui_school_decides(&copy, 73, Vec::new());
    let by_outsider = signed_by(&federation, OUTSIDER, &id, &outsider, 1);

    // The relay refuses a signature that does not verify or is not the sender's.
    let relayed = tampered.clone();
    for (what, signed, reason) in [
        (
            "a tampered signature",
            tampered_signature.clone(),
            "does not verify",
        ),
        (
            "another province's signature",
            by_outsider.clone(),
            "not by province 34",
        ),
    ] {
        let refused = relay_one(
            &mut relay,
            message(&id, S, R, with_signed(relayed.clone(), signed)),
        )
        .await
        .unwrap_or_else(|| panic!("the relay forwarded {what}"));
        assert!(refused.contains(reason), "{what}: {refused}");
    }

    // The receiver checks again, with what the relay cannot know (which decisions are new).
    let forgeries = [
        ("unsigned", unsigned.clone(), "carries no signature"),
        (
            "tampered",
            with_signed(tampered, tampered_signature),
            "does not verify",
        ),
        (
            "signed over another decision",
            with_signed(other, other_decision),
            "over another decision",
        ),
        (
            "signed by another province",
            with_signed(outsider, by_outsider),
            "not by province 34",
        ),
    ];
    let mut fujian = peer_of(&federation, R).await;
    let messages: Vec<tpb::SagaMessage> = forgeries
        .iter()
        .map(|(_, body, _)| message(&id, S, R, body.clone()))
        .collect();
    fujian
        .receive_messages(tpb::ReceiveMessagesRequest {
            messages: messages.clone(),
        })
        .await
        .expect("taken");
    eventually("Fujian set every forgery aside", async || {
        let aside = set_aside_in(&federation, R).await;
        messages
            .iter()
            .all(|m| aside.iter().any(|a| a.message_id == m.message_id))
    })
    .await;
    let aside = set_aside_in(&federation, R).await;
    for ((what, _, reason), sent) in forgeries.iter().zip(&messages) {
        let found = aside
            .iter()
            .find(|a| a.message_id == sent.message_id)
            .expect("set aside");
        assert!(found.reason.contains(reason), "{what}: {}", found.reason);
    }
    assert_eq!(
        step_in(&federation, R, &id, 1)
            .await
            .map(|(_, _, state)| state),
        Some("open".to_owned()),
        "no forgery decided the Anhui school's step"
    );
}
