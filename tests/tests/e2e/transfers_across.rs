//! Transfers between provinces, end to end: the receiving province (Fujian) coordinates, the
//! sending province (Anhui) holds the sending-side steps, every message goes through the
//! national node's relay over mutual TLS. Real nodes, real PostgreSQL.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as ipb, transfers::v1 as tpb};
use xueji_tests::{
    federation::Federation,
    transfers::{
        active_student, approve_step_across, check_federation_invariants, eventually, party_client,
        start_request, state_in, step_in, student_seen_by,
    },
};

/// A primary school of Fujian (receiving) and one of Anhui (sending).
async fn schools(federation: &Federation) -> (String, String) {
    (
        federation.primary_schools("35").await[0].clone(),
        federation.primary_schools("34").await[0].clone(),
    )
}

async fn fujian_school(federation: &Federation, school: &str) -> xueji_client::TransfersClient {
    federation
        .transfers("35", Level::School, school, Role::Operator)
        .await
}

async fn owner_in_index(federation: &Federation, number: &str) -> String {
    xueji_tests::relay::index_owner(federation, number)
        .await
        .expect("indexed")
}

#[tokio::test]
async fn a_student_moves_from_anhui_to_fujian_through_four_approvals() {
    let federation = Federation::start().await;
    let (receiving, sending) = schools(&federation).await;
    federation.delivered("34").await;
    let (number, name, birth) = active_student(&federation, "34", &sending).await;
    federation.delivered("34").await;
    assert_eq!(owner_in_index(&federation, &number).await, "34");

    let mut receiving_school = fujian_school(&federation, &receiving).await;
    let started = receiving_school
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
    assert!(started.cross_province);
    // Still nothing of the sending side for the receiving school.
    assert_eq!(started.sending_school_code, "");
    assert_eq!(started.registry_number, "");
    assert_eq!(started.steps.len(), 3);
    let id = started.id.clone();

    // The sending side's steps are Anhui's: Anhui's policy (20 days, approve on timeout).
    let (sending_jurisdiction, province, _) = step_in(&federation, "35", &id, 1).await.unwrap();
    assert_eq!(
        (sending_jurisdiction.as_str(), province.as_str()),
        (sending.as_str(), "34")
    );
    assert_eq!(started.steps[0].timeout_action, "escalate");

    // Out of turn at the sending province: the receiving authority has not decided yet.
    eventually("the steps reach Anhui", async || {
        step_in(&federation, "34", &id, 1).await.is_some()
    })
    .await;
    let early = party_client(&federation, "34", &sending)
        .await
        .approve_transfer(tpb::ApproveTransferRequest {
            transfer_id: id.clone(),
            step: 1,
            remark: String::new(),
        })
        .await
        .expect_err("out of turn");
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");

    // A sending step cannot be decided at the receiving province's node.
    approve_step_across(&federation, "35", &id, 0).await;
    let wrong_node = party_client(&federation, "35", &receiving)
        .await
        .approve_transfer(tpb::ApproveTransferRequest {
            transfer_id: id.clone(),
            step: 1,
            remark: String::new(),
        })
        .await
        .expect_err("not here");
    assert_eq!(
        wrong_node.code(),
        Code::FailedPrecondition,
        "{wrong_node:?}"
    );

    eventually("the sending school's turn in Anhui", async || {
        step_in(&federation, "34", &id, 1)
            .await
            .is_some_and(|(_, _, state)| state == "open")
    })
    .await;
    // The sending school's step follows Anhui's policy: approve when the deadline passes.
    let timeout: String = sqlx::query_scalar(
        "SELECT timeout_action FROM transfers.steps WHERE transfer_id = $1::uuid AND position = 1",
    )
    .bind(&id)
    .fetch_one(&federation.province("34").pool)
    .await
    .unwrap();
    assert_eq!(timeout, "approve");

    // The sending school finds the task in its own node's inbox.
    eventually("the sending school's inbox shows the task", async || {
        let inbox = party_client(&federation, "34", &sending)
            .await
            .list_transfers(tpb::ListTransfersRequest::default())
            .await
            .expect("inbox")
            .into_inner();
        inbox.transfers.iter().any(|t| t.id == id)
    })
    .await;

    approve_step_across(&federation, "35", &id, 1).await;
    let last = approve_step_across(&federation, "35", &id, 2).await;
    assert!(
        matches!(
            last.state(),
            tpb::TransferState::Approved | tpb::TransferState::Completed
        ),
        "{last:?}"
    );

    eventually("the transfer completes in Fujian", async || {
        state_in(&federation, "35", &id).await.as_deref() == Some("completed")
    })
    .await;
    assert_eq!(
        state_in(&federation, "34", &id).await.as_deref(),
        Some("completed")
    );

    // The record: active at the receiving school in Fujian, with the same number…
    let moved = student_seen_by(&federation, "35", &receiving, &number).await;
    assert_eq!(moved.school_code, receiving);
    assert_eq!(moved.status(), ipb::EnrollmentStatus::Active);
    assert_eq!(moved.name, name);
    // …the sending school's archived copy in Anhui…
    let archived = student_seen_by(&federation, "34", &sending, &number).await;
    assert_eq!(archived.status(), ipb::EnrollmentStatus::TransferredOut);
    // …and the national index names the new province.
    assert_eq!(owner_in_index(&federation, &number).await, "35");
    // The receiving side now sees where the student came from.
    let shown = receiving_school
        .get_transfer(tpb::GetTransferRequest {
            transfer_id: id.clone(),
        })
        .await
        .expect("shown")
        .into_inner()
        .transfer
        .expect("transfer");
    assert_eq!(shown.sending_school_code, sending);
    assert_eq!(shown.registry_number, number);

    check_federation_invariants(&federation).await;
}

#[tokio::test]
async fn refusals_cancellations_and_rejections_across_provinces_release_the_student() {
    let federation = Federation::start().await;
    let (receiving, sending) = schools(&federation).await;
    let (number, name, birth) = active_student(&federation, "34", &sending).await;
    federation.delivered("34").await;
    let mut receiving_school = fujian_school(&federation, &receiving).await;

    // Nobody anywhere holds this number: 2001 from the national node, naming nothing.
    let nobody = receiving_school
        .start_transfer(start_request(
            &receiving,
            "L340102201501019999",
            &name,
            &birth,
        ))
        .await
        .expect_err("refused");
    assert_eq!(nobody.code(), Code::FailedPrecondition, "{nobody:?}");
    assert_eq!(xueji_rpc::national_code(&nobody).as_deref(), Some("2001"));
    // The right number with the wrong name: 2001 from Anhui, naming nothing either.
    let mismatch = receiving_school
        .start_transfer(start_request(&receiving, &number, "别人", &birth))
        .await
        .expect_err("refused");
    assert_eq!(xueji_rpc::national_code(&mismatch).as_deref(), Some("2001"));
    assert!(!mismatch.message().contains(&sending), "{mismatch:?}");
    // A stranger cannot tell a live student from a number nobody holds: the two answers are
    // the same, word for word.
    assert_eq!(mismatch.message(), nobody.message());
    assert_eq!(mismatch.code(), nobody.code());
    assert_eq!(
        mismatch.details(),
        nobody.details(),
        "the same reason and code"
    );

    // Cancelled by the receiving school while the turn is Anhui's.
    let first = receiving_school
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("started")
        .into_inner()
        .transfer
        .expect("transfer");
    // A second transfer of the same student meanwhile: 2002, a task is pending.
    let pending = receiving_school
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect_err("pending");
    assert_eq!(xueji_rpc::national_code(&pending).as_deref(), Some("2002"));
    approve_step_across(&federation, "35", &first.id, 0).await;
    eventually("the turn reaches Anhui", async || {
        step_in(&federation, "34", &first.id, 1)
            .await
            .is_some_and(|(_, _, state)| state == "open")
    })
    .await;
    receiving_school
        .cancel_transfer(tpb::CancelTransferRequest {
            transfer_id: first.id.clone(),
            reason: "家长改变主意".into(),
        })
        .await
        .expect("cancellation sent");
    eventually("the cancellation applies on both sides", async || {
        state_in(&federation, "34", &first.id).await.as_deref() == Some("cancelled")
            && state_in(&federation, "35", &first.id).await.as_deref() == Some("cancelled")
    })
    .await;

    // Rejected by the sending authority: the student is released again.
    let second = receiving_school
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("the student was released, so a new transfer starts")
        .into_inner()
        .transfer
        .expect("transfer");
    approve_step_across(&federation, "35", &second.id, 0).await;
    approve_step_across(&federation, "35", &second.id, 1).await;
    let (authority, _, _) = step_in(&federation, "35", &second.id, 2).await.unwrap();
    eventually("the sending authority's turn", async || {
        step_in(&federation, "34", &second.id, 2)
            .await
            .is_some_and(|(_, _, state)| state == "open")
    })
    .await;
    party_client(&federation, "34", &authority)
        .await
        .reject_transfer(tpb::RejectTransferRequest {
            transfer_id: second.id.clone(),
            step: 2,
            reason: "材料不全".into(),
        })
        .await
        .expect("rejected");
    eventually("the rejection reaches Fujian", async || {
        state_in(&federation, "35", &second.id).await.as_deref() == Some("rejected")
    })
    .await;
    // Still Anhui's student, active, and free to move.
    let still = student_seen_by(&federation, "34", &sending, &number).await;
    assert_eq!(still.status(), ipb::EnrollmentStatus::Active);
    assert_eq!(owner_in_index(&federation, &number).await, "34");
    eventually("the effects settle", async || {
        let owed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM transfers.effects WHERE done_at IS NULL")
                .fetch_one(&federation.province("34").pool)
                .await
                .unwrap();
        owed == 0
    })
    .await;
    check_federation_invariants(&federation).await;
}

#[tokio::test]
async fn a_transfer_between_provinces_survives_the_national_node_and_a_province_going_down() {
    let mut federation = Federation::start().await;
    let (receiving, sending) = schools(&federation).await;
    let (number, name, birth) = active_student(&federation, "34", &sending).await;
    federation.delivered("34").await;
    let id = fujian_school(&federation, &receiving)
        .await
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("started")
        .into_inner()
        .transfer
        .expect("transfer")
        .id;

    // The national node goes down right after the receiving authority decided: the update
    // waits in Fujian's outbox and reaches Anhui once the relay is back.
    federation.kill_national().await;
    party_client(
        &federation,
        "35",
        &step_in(&federation, "35", &id, 0).await.unwrap().0,
    )
    .await
    .approve_transfer(tpb::ApproveTransferRequest {
        transfer_id: id.clone(),
        step: 0,
        remark: String::new(),
    })
    .await
    .expect("decided while the national node is down");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_ne!(
        step_in(&federation, "34", &id, 1)
            .await
            .map(|s| s.2)
            .as_deref(),
        Some("open"),
        "nothing crossed while the relay was down"
    );
    federation.restart_national().await;
    approve_step_across(&federation, "35", &id, 1).await;

    // Anhui goes down right after its last approval: the record's move resumes on restart.
    approve_step_across(&federation, "35", &id, 2).await;
    federation.kill_province("34").await;
    federation.restart_province("34").await;
    eventually("the transfer completes after the restarts", async || {
        state_in(&federation, "35", &id).await.as_deref() == Some("completed")
    })
    .await;
    assert_eq!(owner_in_index(&federation, &number).await, "35");
    eventually("the queues drain", async || {
        let owed: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM transfers.outbox WHERE sent_at IS NULL)
                  + (SELECT count(*) FROM transfers.effects WHERE done_at IS NULL)",
        )
        .fetch_one(&federation.province("34").pool)
        .await
        .unwrap();
        owed == 0
    })
    .await;
    check_federation_invariants(&federation).await;
}
