//! Status changes end to end on a running federation: evidence checked by content and size,
//! the rules file refusing what a record may not take (nothing written), the pending-task lock,
//! the school's approver then the registry authority, the change applied to the record, and a
//! missed deadline acting as the province's policy says.

use sha2::{Digest, Sha256};
use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::identity::v1 as ipb;
use xueji_tests::{
    federation::Federation,
    matrix_fixture::PNG,
    transfers::{active_student, eventually},
    violated_fields,
};

fn request(
    key: &str,
    number: &str,
    kind: ipb::StatusChangeKind,
    evidence: Vec<String>,
) -> ipb::RequestStatusChangeRequest {
    ipb::RequestStatusChangeRequest {
        idempotency_key: key.into(),
        registry_number: number.into(),
        kind: kind as i32,
        reason: "家长申请".into(),
        grounds: String::new(),
        effective_date: chrono::Utc::now().date_naive().to_string(),
        evidence_ids: evidence,
    }
}

async fn status_of(federation: &Federation, school: &str, number: &str) -> ipb::Student {
    federation
        .identity("35", Level::School, school, Role::Operator)
        .await
        .get_student(ipb::GetStudentRequest {
            number: number.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
}

#[tokio::test]
async fn a_suspension_and_a_resumption_go_through_the_school_and_the_authority() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let (number, _, _) = active_student(&federation, "35", &school).await;
    let mut desk = federation
        .status_changes("35", Level::School, &school, Role::Operator)
        .await;

    // Evidence: checked by content and size; read back whole within the jurisdiction.
    let mut big = PNG.to_vec();
    big.resize(2 * 1024 * 1024 + 1, 0);
    for (name, content) in [("big.png", big), ("证明.pdf", PNG.to_vec())] {
        let refused = desk
            .upload_evidence(ipb::UploadEvidenceRequest {
                registry_number: number.clone(),
                file_name: name.into(),
                content,
            })
            .await
            .unwrap_err();
        assert_eq!(
            violated_fields(&refused),
            ["content"],
            "{name}: {refused:?}"
        );
    }
    let file = desk
        .upload_evidence(ipb::UploadEvidenceRequest {
            registry_number: number.clone(),
            file_name: "病历.png".into(),
            content: PNG.to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .file
        .unwrap();
    assert_eq!(file.media_type, "image/png");
    let digest: String = Sha256::digest(PNG)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(file.sha256, digest);
    let read = desk
        .get_evidence(ipb::GetEvidenceRequest {
            id: file.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.content, PNG);
    let other_school = federation
        .primary_schools("35")
        .await
        .into_iter()
        .find(|s| *s != school)
        .unwrap();
    let hidden = federation
        .status_changes("35", Level::School, &other_school, Role::Operator)
        .await
        .get_evidence(ipb::GetEvidenceRequest {
            id: file.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    // The rules: a suspension needs evidence; expulsion is never in the compulsory stage.
    let no_evidence = desk
        .request_status_change(request(
            "s-0",
            &number,
            ipb::StatusChangeKind::Suspension,
            vec![],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_evidence), ["evidence_ids"]);
    let expelled = desk
        .request_status_change(request(
            "x-0",
            &number,
            ipb::StatusChangeKind::Expulsion,
            vec![file.id.clone()],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&expelled), ["kind"], "{expelled:?}");

    // The suspension, and the lock it holds.
    let asked = request(
        "s-1",
        &number,
        ipb::StatusChangeKind::Suspension,
        vec![file.id.clone()],
    );
    let change = desk
        .request_status_change(asked.clone())
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(change.state(), ipb::StatusChangeState::InProgress);
    let retry = desk
        .request_status_change(asked)
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(retry.id, change.id, "a retry answers the same change");
    let second = desk
        .request_status_change(request(
            "m-1",
            &number,
            ipb::StatusChangeKind::Missing,
            vec![],
        ))
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::FailedPrecondition);
    assert_eq!(xueji_rpc::national_code(&second).as_deref(), Some("2002"));

    // Out of turn, not an approver, then in order.
    let mut authority = federation
        .status_changes("35", Level::County, &county, Role::Approver)
        .await;
    let early = authority
        .decide_status_change(ipb::DecideStatusChangeRequest {
            id: change.id.clone(),
            step: 1,
            approve: true,
            remark: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    let operator = desk
        .decide_status_change(ipb::DecideStatusChangeRequest {
            id: change.id.clone(),
            step: 0,
            approve: true,
            remark: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(operator.code(), Code::PermissionDenied);
    let mut school_approver = federation
        .status_changes("35", Level::School, &school, Role::Approver)
        .await;
    let decide = |step: u32| ipb::DecideStatusChangeRequest {
        id: change.id.clone(),
        step,
        approve: true,
        remark: "同意".into(),
    };
    school_approver
        .decide_status_change(decide(0))
        .await
        .unwrap();
    let inbox = authority
        .list_status_change_inbox(ipb::ListStatusChangeInboxRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(inbox.changes.iter().any(|c| c.id == change.id));
    assert_eq!(
        status_of(&federation, &school, &number).await.status(),
        ipb::EnrollmentStatus::Active
    );
    let done = authority
        .decide_status_change(decide(1))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(done.state(), ipb::StatusChangeState::Approved);
    assert_eq!(
        status_of(&federation, &school, &number).await.status(),
        ipb::EnrollmentStatus::Suspended
    );
    // The same approval again changes nothing.
    authority.decide_status_change(decide(1)).await.unwrap();

    // A suspended student cannot be suspended again; resumption brings them back.
    let again = desk
        .request_status_change(request(
            "s-2",
            &number,
            ipb::StatusChangeKind::Suspension,
            vec![file.id.clone()],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&again), ["kind"]);
    let resume = desk
        .request_status_change(request(
            "r-1",
            &number,
            ipb::StatusChangeKind::Resumption,
            vec![],
        ))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    for (client, step) in [(&mut school_approver, 0), (&mut authority, 1)] {
        client
            .decide_status_change(ipb::DecideStatusChangeRequest {
                id: resume.id.clone(),
                step,
                approve: true,
                remark: String::new(),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        status_of(&federation, &school, &number).await.status(),
        ipb::EnrollmentStatus::Active
    );

    // A missed deadline: Fujian's policy rejects, and the student is free again.
    let missing = desk
        .request_status_change(request(
            "m-2",
            &number,
            ipb::StatusChangeKind::Missing,
            vec![],
        ))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    federation.clock.advance(chrono::Duration::days(40));
    // Tokens are minted on the federation's clock: take fresh ones, forty days on.
    let mut desk = federation
        .status_changes("35", Level::School, &school, Role::Operator)
        .await;
    eventually("the missed deadline to reject the change", async || {
        let change = desk
            .get_status_change(ipb::GetStatusChangeRequest {
                id: missing.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .change
            .unwrap();
        change.state() == ipb::StatusChangeState::Rejected && change.steps[0].on_timeout
    })
    .await;
    let cancelled = desk
        .request_status_change(request(
            "o-1",
            &number,
            ipb::StatusChangeKind::OtherDeparture,
            vec![],
        ))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    let withdrawn = desk
        .cancel_status_change(ipb::CancelStatusChangeRequest {
            id: cancelled.id,
            reason: "家长撤回".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(withdrawn.state(), ipb::StatusChangeState::Cancelled);
    assert_eq!(
        status_of(&federation, &school, &number).await.status(),
        ipb::EnrollmentStatus::Active
    );
}

/// Special education is compulsory education (Model rules 第十六条): a special-school pupil
/// who stops coming is recorded as a dropout (and watched as one), and leaves the registry by
/// withdrawal only on emigration.
#[tokio::test]
async fn a_special_school_pupil_is_in_the_compulsory_stage() {
    let node = xueji_tests::TestNode::start().await;
    let school = "5135000401";
    let mut operator = node.client(Level::School, school, Role::Operator).await;
    let mut approver = node.client(Level::County, "350102", Role::Approver).await;
    let mut numbers = Vec::new();
    for (key, sequence) in [("special-1", 331), ("special-2", 332)] {
        let mut registration = xueji_tests::registration(key, "特教生", sequence);
        registration.school_code = school.into();
        registration.grade = 3;
        registration.entry_date = "2022-09-01".into();
        registration
            .provincial_fields
            .insert("disability_category".into(), "听力".into());
        let number = operator
            .register_student(registration)
            .await
            .expect("registered")
            .into_inner()
            .student
            .unwrap()
            .registry_number;
        numbers.push(
            xueji_tests::approve_until_active(&mut approver, &number)
                .await
                .registry_number,
        );
    }
    let mut desk = node
        .status_changes(Level::School, school, Role::Operator)
        .await;
    desk.request_status_change(request(
        "special-dropout",
        &numbers[0],
        ipb::StatusChangeKind::Dropout,
        Vec::new(),
    ))
    .await
    .expect("a special-school pupil may be recorded as a dropout");
    let evidence = xueji_tests::png_evidence(&mut desk, &numbers[1], "证明.png")
        .await
        .unwrap();
    let refused = desk
        .request_status_change(request(
            "special-withdrawal",
            &numbers[1],
            ipb::StatusChangeKind::Withdrawal,
            vec![evidence],
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("compulsory"),
        "withdrawal only on emigration: {refused:?}"
    );
}
