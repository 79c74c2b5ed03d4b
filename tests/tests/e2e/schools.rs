//! The school-code registry end to end: real node (national authority and provincial intake in
//! one process, talking over the gRPC API), real sockets, real mutual TLS, real PostgreSQL.

use std::collections::BTreeSet;

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as id, schools::v1 as pb};
use xueji_tests::{TestNode, resident_id, violated_fields};

fn profile(name: &str, category: &str, division: &str, authority: &str) -> pb::SchoolProfile {
    let stage = match category {
        "31" => (pb::Stage::Junior, 3),
        "34" => (pb::Stage::Senior, 3),
        "51" => (pb::Stage::Special, 9),
        _ => (pb::Stage::Primary, 6),
    };
    pb::SchoolProfile {
        name: name.into(),
        category: category.into(),
        stages: vec![pb::StageOffered {
            stage: stage.0 as i32,
            years: stage.1,
        }],
        division: division.into(),
        registry_authority: authority.into(),
        operator_type: pb::OperatorType::Public as i32,
        address: "福州市鼓楼区学府路1号".into(),
        township: format!("{division}002"),
    }
}

fn application(key: &str, name: &str) -> pb::FileApplicationRequest {
    pb::FileApplicationRequest {
        idempotency_key: key.into(),
        profile: Some(profile(name, "21", "350102", "350102")),
        open_from: "2025-09-01".into(),
    }
}

/// Submits an application straight to the authority, as a province would.
async fn submitted(node: &TestNode, id: &str, name: &str, category: &str) -> String {
    let mut province = node.authority_as_service("350000").await;
    province
        .submit_application(pb::SubmitApplicationRequest {
            application: Some(pb::Application {
                id: id.into(),
                profile: Some(profile(name, category, "350102", "350102")),
                open_from: "2020-09-01".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("submitted")
        .into_inner()
        .application
        .expect("application")
        .id
}

/// A school issued through the authority (submitted and approved), by code.
async fn issued(node: &TestNode, name: &str, category: &str) -> String {
    let id = submitted(node, &format!("app-{name}"), name, category).await;
    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    ministry
        .approve_application(pb::ApproveApplicationRequest { id })
        .await
        .expect("approved")
        .into_inner()
        .school
        .expect("school")
        .code
}

async fn publish_and_sync(node: &TestNode) -> u64 {
    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    let version = ministry
        .publish(pb::PublishRequest {
            note: "test".into(),
        })
        .await
        .expect("published")
        .into_inner()
        .publication
        .expect("publication")
        .version;
    let mut province = node.intake(Level::Province, "350000", Role::Operator).await;
    let report = province
        .sync_replica(pb::SyncReplicaRequest {})
        .await
        .expect("synced")
        .into_inner();
    assert_eq!(report.replica_version, version);
    version
}

fn lifecycle(code: &str, reason: &str) -> (String, String, String) {
    (code.into(), "2026-09-01".into(), reason.into())
}

async fn school(node: &TestNode, code: &str) -> pb::School {
    node.authority(Level::Ministry, "", Role::Operator)
        .await
        .get_school(pb::SchoolAuthorityGetSchoolRequest { code: code.into() })
        .await
        .expect("school")
        .into_inner()
        .school
        .expect("school")
}

#[tokio::test]
async fn an_application_goes_from_county_to_a_national_code_and_into_the_replica() {
    let node = TestNode::start_registry().await;
    let mut county_operator = node.intake(Level::County, "350102", Role::Operator).await;
    let filed = county_operator
        .file_application(application("new-1", "福州市鼓楼区第九实验小学"))
        .await
        .expect("filed")
        .into_inner()
        .application
        .unwrap();
    assert_eq!(filed.status(), pb::ApplicationStatus::Filed);
    let again = county_operator
        .file_application(application("new-1", "福州市鼓楼区第九实验小学"))
        .await
        .expect("a retry")
        .into_inner()
        .application
        .unwrap();
    assert_eq!(again.id, filed.id, "a retry answers the same application");

    // Out of turn: the city cannot endorse before the county; another county sees nothing.
    let mut city = node.intake(Level::City, "350100", Role::Approver).await;
    let early = city
        .endorse_application(pb::EndorseApplicationRequest {
            id: filed.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::PermissionDenied, "{early:?}");
    let mut other_county = node.intake(Level::County, "350103", Role::Approver).await;
    let foreign = other_county
        .endorse_application(pb::EndorseApplicationRequest {
            id: filed.id.clone(),
        })
        .await
        .unwrap_err();
    let missing = other_county
        .endorse_application(pb::EndorseApplicationRequest {
            id: "350103-nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    assert_eq!(
        foreign.message().replace(&filed.id, "X"),
        missing.message().replace("350103-nothing", "X"),
        "foreign answers like missing"
    );
    let mut county_operator_endorsing = county_operator.clone();
    let operator_refused = county_operator_endorsing
        .endorse_application(pb::EndorseApplicationRequest {
            id: filed.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(operator_refused.code(), Code::PermissionDenied);

    let mut statuses = Vec::new();
    for (level, jurisdiction) in [
        (Level::County, "350102"),
        (Level::City, "350100"),
        (Level::Province, "350000"),
    ] {
        let mut approver = node.intake(level, jurisdiction, Role::Approver).await;
        let endorsed = approver
            .endorse_application(pb::EndorseApplicationRequest {
                id: filed.id.clone(),
            })
            .await
            .expect("endorsed")
            .into_inner()
            .application
            .unwrap();
        statuses.push(endorsed.status());
    }
    assert_eq!(
        statuses,
        [
            pb::ApplicationStatus::CountyEndorsed,
            pb::ApplicationStatus::CityEndorsed,
            pb::ApplicationStatus::Submitted,
        ],
        "the province's endorsement hands it to the national authority"
    );

    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    let queue = ministry
        .list_submitted_applications(pb::ListSubmittedApplicationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .applications;
    assert_eq!(queue.len(), 1);
    let mut province_approver = node
        .authority(Level::Province, "350000", Role::Approver)
        .await;
    let not_national = province_approver
        .approve_application(pb::ApproveApplicationRequest {
            id: filed.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_national.code(), Code::PermissionDenied);
    let school = ministry
        .approve_application(pb::ApproveApplicationRequest {
            id: filed.id.clone(),
        })
        .await
        .expect("approved")
        .into_inner()
        .school
        .unwrap();
    assert_eq!(
        school.code, "2135000001",
        "the first primary school code of Fujian"
    );
    let retried = ministry
        .approve_application(pb::ApproveApplicationRequest {
            id: filed.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap();
    assert_eq!(retried.code, school.code, "approving twice issues one code");

    // Not yet published: the province does not know the school, so it takes no students.
    let mut operator = node
        .client(Level::School, &school.code, Role::Operator)
        .await;
    let mut student = xueji_tests::registration("s-1", "林小明", 1);
    student.school_code = school.code.clone();
    student.entry_date = "2025-09-01".into();
    let unknown = operator
        .register_student(student.clone())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(violated_fields(&unknown).contains(&"school_code".to_string()));

    publish_and_sync(&node).await;
    let decided = county_operator
        .get_application(pb::GetApplicationRequest {
            id: filed.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(decided.status(), pb::ApplicationStatus::Approved);
    assert_eq!(decided.code, school.code);
    let replica = county_operator
        .get_school(pb::GetSchoolRequest {
            code: school.code.clone(),
        })
        .await
        .expect("in the replica")
        .into_inner()
        .school
        .unwrap();
    assert_eq!(replica.published_in, 1);
    let profile = replica.profile.unwrap();
    assert_eq!(profile.name, "福州市鼓楼区第九实验小学");
    assert_eq!(
        profile.township, "350102002",
        "the township reaches the replica"
    );

    let registered = operator
        .register_student(student)
        .await
        .expect("registered at the new school")
        .into_inner();
    assert_eq!(registered.student.unwrap().school_code, school.code);

    let actions = node.audit_actions().await;
    for action in [
        "schools.file_application",
        "schools.endorse_application",
        "schools.submit_application",
        "schools.approve_application",
        "schools.publish",
        "schools.replicate_publication",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} audited: {actions:?}"
        );
    }
}

#[tokio::test]
async fn an_application_can_be_sent_back_with_a_reason() {
    let node = TestNode::start_registry().await;
    let mut county = node.intake(Level::County, "350102", Role::Approver).await;
    let filed = county
        .file_application(application("back-1", "福州市鼓楼区退回小学"))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    let no_reason = county
        .return_application(pb::ReturnApplicationRequest {
            id: filed.id.clone(),
            reason: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_reason), ["reason"]);
    let returned = county
        .return_application(pb::ReturnApplicationRequest {
            id: filed.id.clone(),
            reason: "地址不全".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(returned.status(), pb::ApplicationStatus::Returned);
    assert_eq!(returned.steps.last().unwrap().reason, "地址不全");
    let after = county
        .endorse_application(pb::EndorseApplicationRequest { id: filed.id })
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn bad_applications_name_their_field_and_write_nothing() {
    let node = TestNode::start_registry().await;
    let mut county = node.intake(Level::County, "350102", Role::Operator).await;
    let spoil = |f: fn(&mut pb::FileApplicationRequest)| {
        let mut request = application("bad", "福州市鼓楼区坏小学");
        f(&mut request);
        request
    };
    let cases: Vec<(pb::FileApplicationRequest, &str)> = vec![
        (
            spoil(|r| r.profile.as_mut().unwrap().category = "25".into()),
            "profile.category",
        ),
        (
            spoil(|r| r.profile.as_mut().unwrap().division = "359999".into()),
            "profile.division",
        ),
        (
            spoil(|r| {
                let profile = r.profile.as_mut().unwrap();
                profile.division = "340102".into();
                profile.township = "340102001".into();
                profile.registry_authority = "340102".into();
            }),
            "profile.division",
        ),
        (
            spoil(|r| r.profile.as_mut().unwrap().name = "".into()),
            "profile.name",
        ),
        (
            spoil(|r| r.profile.as_mut().unwrap().operator_type = 0),
            "profile.operator_type",
        ),
        (
            spoil(|r| r.profile.as_mut().unwrap().stages.clear()),
            "profile.stages",
        ),
        (
            spoil(|r| r.profile.as_mut().unwrap().township = "350103001".into()),
            "profile.township",
        ),
        (spoil(|r| r.open_from = "2025-13-01".into()), "open_from"),
        (spoil(|r| r.idempotency_key = "".into()), "idempotency_key"),
    ];
    for (request, field) in cases {
        let status = county.file_application(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_fields(&status), [field], "{status:?}");
    }
    let applications: i64 =
        sqlx::query_scalar("SELECT count(*) FROM schools_provincial.applications")
            .fetch_one(&node.pool)
            .await
            .unwrap();
    assert_eq!(applications, 0, "nothing written");

    let mut gulou = node.intake(Level::County, "350102", Role::Operator).await;
    let mut request = application("other", "福州市台江区越权小学");
    request.profile.as_mut().unwrap().division = "350103".into();
    request.profile.as_mut().unwrap().registry_authority = "350103".into();
    request.profile.as_mut().unwrap().township = "350103001".into();
    let status = gulou.file_application(request).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "a county files for its own county only"
    );

    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    let bad_code = ministry
        .close_school(pb::CloseSchoolRequest {
            code: "2199000001".into(),
            effective_date: "2026-09-01".into(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&bad_code),
        ["code"],
        "a code with no real province"
    );
    let many = ministry
        .rename_school(pb::RenameSchoolRequest {
            code: "21350000".into(),
            new_name: "".into(),
            effective_date: "soon".into(),
            reason: "".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&many),
        ["code", "effective_date", "reason", "new_name"],
        "every bad field at once"
    );
}

#[tokio::test]
async fn lifecycle_rules_keep_void_and_restore_codes() {
    let node = TestNode::start_registry().await;
    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    let a = issued(&node, "甲小学", "21").await;
    let b = issued(&node, "乙小学", "21").await;
    let c = issued(&node, "丙小学", "21").await;
    let d = issued(&node, "丁中学", "31").await;
    let e = issued(&node, "戊小学", "21").await;
    let f = issued(&node, "己小学", "21").await;
    let v1 = publish_and_sync(&node).await;

    // rename: same code, history kept; renaming again to that name changes nothing
    let (code, date, reason) = lifecycle(&a, "更名");
    let renamed = ministry
        .rename_school(pb::RenameSchoolRequest {
            code: code.clone(),
            new_name: "甲实验小学".into(),
            effective_date: date.clone(),
            reason: reason.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap();
    assert_eq!(renamed.code, a);
    assert_eq!(renamed.former_names[0].name, "甲小学");
    ministry
        .rename_school(pb::RenameSchoolRequest {
            code,
            new_name: "甲实验小学".into(),
            effective_date: date,
            reason,
        })
        .await
        .unwrap();

    // merge within a category keeps a predecessor's code; the other is voided
    let merged = ministry
        .merge_schools(pb::MergeSchoolsRequest {
            predecessors: vec![a.clone(), b.clone()],
            merged: Some(profile("甲乙合并小学", "21", "350102", "350102")),
            keep_code: a.clone(),
            effective_date: "2026-09-01".into(),
            reason: "合并".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap();
    assert_eq!(merged.code, a);
    let voided_b = school(&node, &b).await;
    assert_eq!(voided_b.status(), pb::SchoolStatus::Voided);
    assert_eq!(voided_b.successors, std::slice::from_ref(&a));

    // keeping a code across categories is refused; without keep_code a new code is issued
    let refused = ministry
        .merge_schools(pb::MergeSchoolsRequest {
            predecessors: vec![c.clone(), d.clone()],
            merged: Some(profile("丙丁学校", "31", "350102", "350102")),
            keep_code: c.clone(),
            effective_date: "2026-09-01".into(),
            reason: "合并".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["keep_code"]);
    let new_school = ministry
        .merge_schools(pb::MergeSchoolsRequest {
            predecessors: vec![c.clone(), d.clone()],
            merged: Some(profile("丙丁学校", "31", "350102", "350102")),
            keep_code: String::new(),
            effective_date: "2026-09-01".into(),
            reason: "合并".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap();
    assert_eq!(new_school.code, "3135000002", "the next junior code");
    for old in [&c, &d] {
        assert_eq!(school(&node, old).await.status(), pb::SchoolStatus::Voided);
    }
    let lineage = ministry
        .get_lineage(pb::SchoolAuthorityGetLineageRequest { code: c.clone() })
        .await
        .unwrap()
        .into_inner()
        .links;
    assert_eq!(
        lineage
            .iter()
            .map(|l| (l.predecessor.clone(), l.successor.clone()))
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([
            (c.clone(), new_school.code.clone()),
            (d.clone(), new_school.code.clone())
        ])
    );

    // a category change issues a new code and voids the old
    let recoded = ministry
        .change_category(pb::ChangeCategoryRequest {
            code: e.clone(),
            new_category: "31".into(),
            stages: vec![pb::StageOffered {
                stage: pb::Stage::Junior as i32,
                years: 3,
            }],
            effective_date: "2026-09-01".into(),
            reason: "改制".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap();
    assert_eq!(recoded.code, "3135000003");
    assert_eq!(
        school(&node, &e).await.successors,
        std::slice::from_ref(&recoded.code)
    );

    // close and reopen: the original code comes back
    let close = |code: &str| pb::CloseSchoolRequest {
        code: code.into(),
        effective_date: "2026-09-01".into(),
        reason: "停办".into(),
    };
    let closed = ministry
        .close_school(close(&f))
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap();
    assert_eq!(closed.status(), pb::SchoolStatus::Closed);
    let reopened = ministry
        .reopen_school(pb::ReopenSchoolRequest {
            code: f.clone(),
            effective_date: "2027-09-01".into(),
            reason: "复办".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap();
    assert_eq!(
        reopened.code, f,
        "a reopened school gets its original code back"
    );
    assert_eq!(reopened.status(), pb::SchoolStatus::Open);
    let voided_reopen = ministry
        .reopen_school(pb::ReopenSchoolRequest {
            code: b.clone(),
            effective_date: "2027-09-01".into(),
            reason: "复办".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        voided_reopen.code(),
        Code::FailedPrecondition,
        "merged away is void for ever"
    );

    // many closures and creations later, no code was ever issued twice
    let mut seen: BTreeSet<String> = [&a, &b, &c, &d, &e, &f, &new_school.code, &recoded.code]
        .into_iter()
        .cloned()
        .collect();
    for round in 0..5 {
        let created = issued(&node, &format!("新校{round}"), "21").await;
        assert!(seen.insert(created.clone()), "{created} issued twice");
        ministry.close_school(close(&created)).await.unwrap();
    }

    // publications: the diff is exactly what happened since v1, and published rows are frozen
    let v2 = publish_and_sync(&node).await;
    let diff = ministry
        .diff(pb::DiffRequest {
            from_version: v1,
            to_version: v2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let kinds: Vec<(pb::ChangeKind, String)> =
        diff.iter().map(|c| (c.kind(), c.code.clone())).collect();
    assert_eq!(kinds[0], (pb::ChangeKind::Renamed, a.clone()));
    assert!(kinds.contains(&(pb::ChangeKind::Merged, a.clone())));
    assert!(kinds.contains(&(pb::ChangeKind::Voided, b.clone())));
    assert!(kinds.contains(&(pb::ChangeKind::Added, new_school.code.clone())));
    assert!(kinds.contains(&(pb::ChangeKind::Reopened, f.clone())));
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, _)| *k == pb::ChangeKind::Added)
            .count(),
        2 + 5,
        "the merged school, the re-coded one and five new schools"
    );
    assert!(diff.iter().all(|c| c.version == v2));
    let whole = ministry
        .diff(pb::DiffRequest {
            from_version: 0,
            to_version: v2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert_eq!(whole.len(), 6 + diff.len());
    let beyond = ministry
        .diff(pb::DiffRequest {
            from_version: 0,
            to_version: v2 + 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&beyond), ["to_version"]);
    let nothing = ministry
        .publish(pb::PublishRequest::default())
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), Code::FailedPrecondition);
    for statement in [
        "UPDATE schools_national.changes SET reason = 'rewritten'",
        "DELETE FROM schools_national.publications",
        "DELETE FROM schools_national.schools",
    ] {
        let refused = sqlx::query(statement).execute(&node.pool).await;
        assert!(refused.is_err(), "{statement} must be refused");
    }

    // the replica follows, historical codes included
    let mut county = node.intake(Level::County, "350102", Role::Operator).await;
    let historic = county
        .get_school(pb::GetSchoolRequest { code: d.clone() })
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap();
    assert_eq!(historic.status(), pb::SchoolStatus::Voided);
    assert_eq!(historic.successors, std::slice::from_ref(&new_school.code));
    let replica_lineage = county
        .get_lineage(pb::GetLineageRequest { code: d.clone() })
        .await
        .unwrap()
        .into_inner()
        .links;
    assert_eq!(replica_lineage.len(), 2);

    let actions = node.audit_actions().await;
    for action in [
        "schools.rename_school",
        "schools.merge_schools",
        "schools.change_category",
        "schools.close_school",
        "schools.reopen_school",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} audited");
    }
    xueji_audit::seal_all(&node.pool).await.unwrap();
    assert!(
        xueji_audit::verify(&node.pool, |_| {})
            .await
            .unwrap()
            .is_intact()
    );
}

#[tokio::test]
async fn a_school_with_students_does_not_close() {
    let node = TestNode::start_registry().await;
    let code = issued(&node, "有学生小学", "21").await;
    publish_and_sync(&node).await;
    let mut operator = node.client(Level::School, &code, Role::Operator).await;
    let mut student = xueji_tests::registration("c-1", "陈一", 1);
    student.school_code = code.clone();
    student.document_number = resident_id("35010220180307003");
    student.entry_date = "2024-09-01".into();
    operator
        .register_student(student)
        .await
        .expect("registered");

    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    let close = pb::CloseSchoolRequest {
        code: code.clone(),
        effective_date: "2026-09-01".into(),
        reason: "停办".into(),
    };
    let refused = ministry.close_school(close.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("1 pending registrations"),
        "{}",
        refused.message()
    );

    let mut approver = node.client(Level::County, "350102", Role::Approver).await;
    let listed = approver
        .list_students(id::ListStudentsRequest {
            school_code: code.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .students;
    xueji_tests::approve_until_active(&mut approver, &listed[0].registry_number).await;
    let refused = ministry.close_school(close).await.unwrap_err();
    assert!(
        refused.message().contains("1 active students"),
        "{}",
        refused.message()
    );
    assert_eq!(school(&node, &code).await.status(), pb::SchoolStatus::Open);
}

#[tokio::test]
async fn concurrent_approvals_issue_consecutive_codes() {
    let node = TestNode::start_registry().await;
    let mut ids = Vec::new();
    for n in 0..16 {
        ids.push(submitted(&node, &format!("c-{n}"), &format!("并发小学{n}"), "21").await);
    }
    let mut tasks = Vec::new();
    for id in ids {
        let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
        tasks.push(tokio::spawn(async move {
            ministry
                .approve_application(pb::ApproveApplicationRequest { id })
                .await
                .map(|r| r.into_inner().school.unwrap().code)
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap().expect("approved"));
    }
    codes.sort();
    let expected: Vec<String> = (1..=16).map(|n| format!("2135{n:06}")).collect();
    assert_eq!(codes, expected, "no duplicate, no gap");
}

#[tokio::test]
async fn jurisdiction_over_schools() {
    let node = TestNode::start_registry().await;
    let gulou = issued(&node, "鼓楼小学", "21").await;
    let mut province = node.authority_as_service("350000").await;
    province
        .submit_application(pb::SubmitApplicationRequest {
            application: Some(pb::Application {
                id: "taijiang".into(),
                profile: Some(profile("台江小学", "21", "350103", "350103")),
                open_from: "2020-09-01".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    let taijiang = ministry
        .approve_application(pb::ApproveApplicationRequest {
            id: "taijiang".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .school
        .unwrap()
        .code;
    publish_and_sync(&node).await;

    let cases = [
        (Level::School, gulou.as_str(), true, false),
        (Level::School, taijiang.as_str(), false, true),
        (Level::County, "350102", true, false),
        (Level::County, "350103", false, true),
        (Level::City, "350100", true, true),
        (Level::City, "350200", false, false),
        (Level::Province, "350000", true, true),
        (Level::Province, "340000", false, false),
    ];
    for (level, jurisdiction, sees_gulou, sees_taijiang) in cases {
        let mut reader = node.intake(level, jurisdiction, Role::Operator).await;
        for (code, expected) in [(&gulou, sees_gulou), (&taijiang, sees_taijiang)] {
            let answer = reader
                .get_school(pb::GetSchoolRequest { code: code.clone() })
                .await;
            match (expected, answer) {
                (true, Ok(_)) => {}
                (false, Err(status)) => {
                    assert_eq!(
                        status.code(),
                        Code::NotFound,
                        "{level} {jurisdiction} {code}"
                    );
                    assert_eq!(status.message(), format!("school {code} not found"));
                }
                (expected, answer) => {
                    panic!(
                        "{level} {jurisdiction} reading {code}: expected {expected}, got {answer:?}"
                    )
                }
            }
        }
        let listed: BTreeSet<String> = reader
            .list_schools(pb::ListSchoolsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .schools
            .into_iter()
            .map(|s| s.code)
            .collect();
        assert_eq!(
            listed.contains(&gulou),
            sees_gulou,
            "{level} {jurisdiction} list"
        );
        assert_eq!(
            listed.contains(&taijiang),
            sees_taijiang,
            "{level} {jurisdiction} list"
        );
    }

    // only a ministry approver changes the list
    let mut province_approver = node
        .authority(Level::Province, "350000", Role::Approver)
        .await;
    let denied = province_approver
        .rename_school(pb::RenameSchoolRequest {
            code: gulou.clone(),
            new_name: "新名".into(),
            effective_date: "2026-09-01".into(),
            reason: "更名".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // a province submits only its own applications
    let mut anhui = node
        .authority(Level::Province, "340000", Role::Operator)
        .await;
    let foreign = anhui
        .submit_application(pb::SubmitApplicationRequest {
            application: Some(pb::Application {
                id: "from-anhui".into(),
                profile: Some(profile("越省小学", "21", "350102", "350102")),
                open_from: "2020-09-01".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_closed_school_takes_no_students() {
    let node = TestNode::start_registry().await;
    let code = issued(&node, "停办小学", "21").await;
    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    ministry
        .close_school(pb::CloseSchoolRequest {
            code: code.clone(),
            effective_date: "2025-07-01".into(),
            reason: "停办".into(),
        })
        .await
        .expect("an empty school closes");
    publish_and_sync(&node).await;
    let mut operator = node.client(Level::School, &code, Role::Operator).await;
    let mut student = xueji_tests::registration("closed-1", "王一", 1);
    student.school_code = code;
    let refused = operator.register_student(student).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&refused),
        ["school_code"],
        "{}",
        refused.message()
    );
    assert_eq!(node.counts().await.0, 0, "nothing written");
}

#[tokio::test]
async fn lists_come_in_pages_without_gaps_or_repeats() {
    let node = TestNode::start_registry().await;
    let mut county = node.intake(Level::County, "350102", Role::Operator).await;
    let mut filed = BTreeSet::new();
    for n in 0..5 {
        filed.insert(
            county
                .file_application(application(&format!("page-{n}"), &format!("分页小学{n}")))
                .await
                .expect("filed")
                .into_inner()
                .application
                .expect("application")
                .id,
        );
    }
    let mut listed = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = county
            .list_applications(pb::ListApplicationsRequest {
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.applications.len() <= 2);
        listed.extend(page.applications.into_iter().map(|a| a.id));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(listed.len(), 5, "no repeats");
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), filed);
    let status = county
        .list_applications(pb::ListApplicationsRequest {
            page_size: 100_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);

    // Changes of published versions, a page at a time.
    for n in 0..3 {
        issued(&node, &format!("分页发布{n}"), "21").await;
    }
    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    let version = ministry
        .publish(pb::PublishRequest {
            note: "pages".into(),
        })
        .await
        .expect("published")
        .into_inner()
        .publication
        .expect("publication")
        .version;
    let mut codes = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = ministry
            .diff(pb::DiffRequest {
                from_version: version - 1,
                to_version: version,
                page_size: 1,
                page_token,
            })
            .await
            .expect("diff page")
            .into_inner();
        assert!(page.changes.len() <= 1);
        codes.extend(page.changes.into_iter().map(|c| c.code));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(codes.len(), 3, "{codes:?}");
    assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), 3);
}

/// Registers `count` pupils at `code` (numbered from `first`), approves all but the last, and
/// answers their registry numbers.
async fn pupils_at(node: &TestNode, code: &str, first: u32, count: u32) -> Vec<String> {
    let mut operator = node.client(Level::School, code, Role::Operator).await;
    let mut numbers = Vec::new();
    for sequence in first..first + count {
        let mut student = xueji_tests::registration(&format!("m-{sequence}"), "林小", sequence);
        student.school_code = code.into();
        student.entry_date = "2024-09-01".into();
        numbers.push(
            operator
                .register_student(student)
                .await
                .expect("registered")
                .into_inner()
                .student
                .expect("student")
                .registry_number,
        );
    }
    let mut approver = node.client(Level::County, "350102", Role::Approver).await;
    for number in &numbers[..numbers.len() - 1] {
        // Waits for the national check rather than assuming it answers within the approval.
        xueji_tests::approve_until_active(&mut approver, number).await;
    }
    numbers
}

/// The school each student's current enrollment is at, as the province's authority sees it.
async fn schools_of(node: &TestNode, numbers: &[String]) -> Vec<String> {
    let mut province = node.client(Level::Province, "350000", Role::Operator).await;
    let mut schools = Vec::new();
    for number in numbers {
        let student = province
            .get_student(id::GetStudentRequest {
                number: number.clone(),
            })
            .await
            .expect("student")
            .into_inner()
            .student
            .expect("student");
        schools.push(student.school_code);
    }
    schools
}

#[tokio::test]
async fn a_merge_moves_every_student_once_their_tasks_are_done() {
    let node = TestNode::start_with(|config| {
        config.schools_file = None;
        config.succession_sync_ms = 200;
    })
    .await;
    let kept = issued(&node, "城关小学", "21").await;
    let absorbed = issued(&node, "河西小学", "21").await;
    publish_and_sync(&node).await;
    let staying = pupils_at(&node, &kept, 10, 1).await;
    // Two approved pupils and one registration still pending at the school that goes.
    let moving = pupils_at(&node, &absorbed, 20, 3).await;

    // A pupil's suspension request is still running: the merger waits for it.
    let mut desk = node
        .status_changes(Level::School, &absorbed, Role::Operator)
        .await;
    let task = desk
        .request_status_change(id::RequestStatusChangeRequest {
            idempotency_key: "s-1".into(),
            registry_number: moving[0].clone(),
            kind: id::StatusChangeKind::OtherDeparture as i32,
            reason: "家长申请".into(),
            grounds: String::new(),
            effective_date: chrono::Utc::now().date_naive().to_string(),
            evidence_ids: vec![],
        })
        .await
        .expect("requested")
        .into_inner()
        .change
        .expect("change");
    let mut ministry = node.authority(Level::Ministry, "", Role::Approver).await;
    let merge = pb::MergeSchoolsRequest {
        predecessors: vec![kept.clone(), absorbed.clone()],
        merged: Some(profile("城关河西小学", "21", "350102", "350102")),
        keep_code: kept.clone(),
        effective_date: "2026-09-01".into(),
        reason: "布局调整".into(),
    };
    let refused = ministry.merge_schools(merge.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains(&absorbed) && refused.message().contains("1 pending tasks"),
        "{}",
        refused.message()
    );
    assert_eq!(
        school(&node, &absorbed).await.status(),
        pb::SchoolStatus::Open
    );
    desk.cancel_status_change(id::CancelStatusChangeRequest {
        id: task.id,
        reason: "家长撤回".into(),
    })
    .await
    .expect("cancelled");

    ministry.merge_schools(merge).await.expect("merged");
    publish_and_sync(&node).await;
    // Identity follows the replica: every current enrollment of the voided code moves, the
    // pending registration too, as one audited batch.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if schools_of(&node, &moving).await == vec![kept.clone(); 3] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "students still at the voided code"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(schools_of(&node, &staying).await, vec![kept.clone()]);
    let mut workload_reader = node.client(Level::Province, "350000", Role::Operator).await;
    let left_behind = workload_reader
        .get_school_workload(id::GetSchoolWorkloadRequest {
            school_code: absorbed.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            left_behind.active_enrollments,
            left_behind.pending_registrations
        ),
        (0, 0)
    );
    let at_successor = workload_reader
        .get_school_workload(id::GetSchoolWorkloadRequest {
            school_code: kept.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            at_successor.active_enrollments,
            at_successor.pending_registrations
        ),
        (2, 2)
    );
    // The merged school's operator now sees them; nothing moves twice.
    let mut kept_operator = node.client(Level::School, &kept, Role::Operator).await;
    let listed = kept_operator
        .list_students(id::ListStudentsRequest {
            school_code: kept.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .students;
    assert_eq!(listed.len(), 4);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let moves = node
        .audit_actions()
        .await
        .into_iter()
        .filter(|action| action == "identity.move_school_students")
        .count();
    assert_eq!(moves, 1, "one audited batch for the one voided code");
}

/// The registry holds the pupils of primary, junior, senior high, special-education and 专门
/// schools (Ministry 第二条): a published secondary-vocational school has a code but takes no
/// registration, which names the school code and why.
#[tokio::test]
async fn a_vocational_school_takes_no_registration_in_the_student_registry() {
    let node = TestNode::start_with(|config| {
        config.schools_file = None;
    })
    .await;
    let vocational = issued(&node, "福州职业中专学校", "36").await;
    publish_and_sync(&node).await;
    let mut student = xueji_tests::registration("vocational-1", "林职", 341);
    student.school_code = vocational.clone();
    student.grade = 10;
    let refused = node
        .client(Level::School, &vocational, Role::Operator)
        .await
        .register_student(student)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert_eq!(xueji_tests::violated_fields(&refused), ["school_code"]);
    assert!(
        refused.message().contains("outside the student registry"),
        "{refused:?}"
    );
}
