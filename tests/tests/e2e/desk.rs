//! The registrar's desk: the September queue of pending registrations, a batch approved in
//! one call with each outcome listed, and the search a registrar runs when a parent calls.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::identity::v1 as pb;
use xueji_tests::{TestNode, registration, violated_fields};

/// Registers a pupil at `school` in `grade` and answers its registry number.
async fn register(
    node: &TestNode,
    key: &str,
    name: &str,
    sequence: u32,
    school: &str,
    grade: u32,
) -> String {
    let mut request = registration(key, name, sequence);
    request.school_code = school.into();
    request.grade = grade;
    if grade == 2 {
        request.entry_date = "2023-09-01".into();
    }
    node.client(Level::School, school, Role::Operator)
        .await
        .register_student(request)
        .await
        .expect("registered")
        .into_inner()
        .student
        .expect("student")
        .registry_number
}

fn queue(scope: &str) -> pb::ListPendingRegistrationsRequest {
    pb::ListPendingRegistrationsRequest {
        scope: scope.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_september_queue_lists_counts_and_approves_a_batch_each_on_its_own() {
    let node = TestNode::start().await;
    let first = register(&node, "q-1", "排队一", 301, "2135000101", 1).await;
    let second = register(&node, "q-2", "排队二", 302, "2135000101", 1).await;
    let third = register(&node, "q-3", "排队三", 303, "2135000101", 1).await;
    let older = register(&node, "q-4", "排队四", 304, "2135000101", 2).await;
    let elsewhere = register(&node, "q-5", "排队五", 305, "2135000102", 1).await;

    let mut county = node.client(Level::County, "350102", Role::Approver).await;
    let listed = county
        .list_pending_registrations(queue(""))
        .await
        .unwrap()
        .into_inner();
    let numbers: Vec<_> = listed
        .registrations
        .iter()
        .map(|s| s.registry_number.clone())
        .collect();
    assert_eq!(
        numbers,
        [first.clone(), second.clone(), third.clone(), older.clone()],
        "oldest first, the county's only"
    );
    assert_eq!(listed.total, 4);
    let counts: Vec<_> = listed
        .counts
        .iter()
        .map(|c| (c.school_code.as_str(), c.grade, c.pending))
        .collect();
    assert_eq!(counts, [("2135000101", 1, 3), ("2135000101", 2, 1)]);

    // Paged: two by two, the counts over the whole queue on every page.
    let page = county
        .list_pending_registrations(pb::ListPendingRegistrationsRequest {
            page_size: 2,
            ..queue("")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.registrations.len(), 2);
    assert_eq!(page.total, 4);
    let rest = county
        .list_pending_registrations(pb::ListPendingRegistrationsRequest {
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..queue("")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.registrations[0].registry_number, third);
    assert!(rest.next_page_token.is_empty());

    // By grade, by school, by day.
    let grade_two = county
        .list_pending_registrations(pb::ListPendingRegistrationsRequest {
            grade: 2,
            ..queue("2135000101")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grade_two.registrations.len(), 1);
    assert_eq!(grade_two.registrations[0].registry_number, older);
    let tomorrow = (chrono::Utc::now() + chrono::Days::new(2)).date_naive();
    let none = county
        .list_pending_registrations(pb::ListPendingRegistrationsRequest {
            registered_from: tomorrow.to_string(),
            ..queue("")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.total, 0);
    assert!(none.registrations.is_empty());

    // Bad filters name their fields; another county's school is not found.
    let bad = county
        .list_pending_registrations(pb::ListPendingRegistrationsRequest {
            grade: 13,
            registered_from: "2026-13-01".into(),
            page_token: "x".into(),
            ..queue("")
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        ["grade", "registered_from", "page_token"]
    );
    let foreign = county
        .list_pending_registrations(queue("2135000102"))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);

    // A batch: one rejected before, two to approve. Each is decided and audited on its own.
    county
        .reject_registration(pb::RejectRegistrationRequest {
            registry_number: older.clone(),
            reason: "材料不全".into(),
        })
        .await
        .unwrap();
    let approvals_before = approvals(&node).await;
    let batch = county
        .approve_registrations(pb::ApproveRegistrationsRequest {
            registry_numbers: vec![first.clone(), older.clone(), second.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((batch.approved, batch.refused), (2, 1), "{batch:?}");
    let asked: Vec<_> = batch
        .outcomes
        .iter()
        .map(|o| o.registry_number.clone())
        .collect();
    assert_eq!(
        asked,
        [first.clone(), older.clone(), second.clone()],
        "in the order asked"
    );
    assert_eq!(batch.outcomes[1].error_code, "FAILED_PRECONDITION");
    assert!(batch.outcomes[1].student.is_none());
    assert!(!batch.outcomes[1].error_message.is_empty());
    for outcome in [&batch.outcomes[0], &batch.outcomes[2]] {
        let student = outcome.student.as_ref().expect("approved");
        assert!(
            matches!(
                student.status(),
                pb::EnrollmentStatus::Active | pb::EnrollmentStatus::AwaitingNationalCheck
            ),
            "{student:?}"
        );
        assert!(outcome.error_code.is_empty());
    }
    assert_eq!(approvals(&node).await, approvals_before + 2);

    // The queue holds what is left.
    let left = county
        .list_pending_registrations(queue(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(left.total, 1);
    assert_eq!(left.registrations[0].registry_number, third);

    // A batch naming a record the caller cannot see decides nothing.
    let refused = county
        .approve_registrations(pb::ApproveRegistrationsRequest {
            registry_numbers: vec![third.clone(), elsewhere.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    assert!(refused.message().contains(&elsewhere), "{refused:?}");
    let twice = county
        .approve_registrations(pb::ApproveRegistrationsRequest {
            registry_numbers: vec![third.clone(), third.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&twice), ["registry_numbers"]);
    let empty = county
        .approve_registrations(pb::ApproveRegistrationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty), ["registry_numbers"]);
    let by_school = node
        .client(Level::School, "2135000101", Role::Operator)
        .await
        .approve_registrations(pb::ApproveRegistrationsRequest {
            registry_numbers: vec![third.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(by_school.code(), Code::PermissionDenied);
    let still = county
        .list_pending_registrations(queue(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.total, 1, "nothing was decided");
}

async fn approvals(node: &TestNode) -> usize {
    node.audit_actions()
        .await
        .iter()
        .filter(|a| *a == "identity.approve_registration")
        .count()
}

#[tokio::test]
async fn a_registrar_finds_a_pupil_by_what_a_parent_says() {
    let node = TestNode::start().await;
    let wang = register(&node, "s-1", "王小明", 311, "2135000101", 1).await;
    let li = register(&node, "s-2", "李小红", 312, "2135000101", 1).await;
    let other = register(&node, "s-3", "王小明", 313, "2135000102", 1).await;
    let mut county = node.client(Level::County, "350102", Role::Operator).await;
    let search = async |county: &mut xueji_client::IdentityClient,
                        request: pb::SearchStudentsRequest| {
        county.search_students(request).await.map(|r| {
            r.into_inner()
                .students
                .into_iter()
                .map(|s| s.registry_number)
                .collect::<Vec<_>>()
        })
    };

    // By name (as stored: NFC, spaces around it ignored), inside the county only.
    let found = search(
        &mut county,
        pb::SearchStudentsRequest {
            name: " 王小明 ".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(found, std::slice::from_ref(&wang));
    assert!(!found.contains(&other));
    // By name and birth date: a wrong date finds nothing.
    let none = search(
        &mut county,
        pb::SearchStudentsRequest {
            name: "王小明".into(),
            birth_date: "2018-03-08".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(none.is_empty());
    // By the guardian's phone: both of the county's pupils.
    let mut by_phone = search(
        &mut county,
        pb::SearchStudentsRequest {
            guardian: "13800000000".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    by_phone.sort();
    let mut both = vec![wang.clone(), li.clone()];
    both.sort();
    assert_eq!(by_phone, both);
    // By the guardian's name and a part of the ID number.
    let li_id = node
        .client(Level::County, "350102", Role::Operator)
        .await
        .get_student(pb::GetStudentRequest { number: li.clone() })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
        .document_number;
    let part = &li_id[10..17];
    let by_part = search(
        &mut county,
        pb::SearchStudentsRequest {
            guardian: "王建国".into(),
            document_number_part: part.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(by_part, std::slice::from_ref(&li));

    // Bad input names its field; a search needs a criterion; a foreign scope is not found.
    let bad = county
        .search_students(pb::SearchStudentsRequest {
            document_number_part: "12%".into(),
            birth_date: "yesterday".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&bad),
        ["birth_date", "document_number_part"]
    );
    let nothing = county
        .search_students(pb::SearchStudentsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), Code::InvalidArgument);
    let foreign = county
        .search_students(pb::SearchStudentsRequest {
            scope: "350103".into(),
            name: "王小明".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    // The province finds both namesakes, each in its county.
    let mut province = node.client(Level::Province, "350000", Role::Operator).await;
    let mut everywhere = search(
        &mut province,
        pb::SearchStudentsRequest {
            name: "王小明".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    everywhere.sort();
    let mut expected = vec![wang, other];
    expected.sort();
    assert_eq!(everywhere, expected);
}
