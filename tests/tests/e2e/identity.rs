//! The identity service end to end: real node, real sockets, real mutual TLS, real PostgreSQL.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::identity::v1 as pb;
use xueji_tests::{TestNode, registration, resident_id, violated_fields};

#[tokio::test]
async fn register_approve_and_find_by_every_number() {
    let node = TestNode::start().await;
    let mut school = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    let registered = school
        .register_student(registration("k-1", "王𠮷", 1))
        .await
        .expect("registered")
        .into_inner();
    assert!(!registered.replayed);
    let student = registered.student.unwrap();
    assert!(student.registry_number.starts_with("L35010220180307"));
    assert_eq!(student.status(), pb::EnrollmentStatus::Pending);
    assert_eq!(student.name, "王𠮷", "a name outside the BMP round-trips");
    let l_number = student.registry_number.clone();

    let mut county = node.client(Level::County, "350102", Role::Approver).await;
    let approved = county
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: l_number.clone(),
        })
        .await
        .expect("approved")
        .into_inner()
        .student
        .unwrap();
    let id_number = registration("k-1", "王𠮷", 1).document_number;
    assert_eq!(approved.registry_number, format!("G{id_number}"));
    assert_eq!(approved.aliases, vec![l_number.clone()]);
    assert_eq!(approved.status(), pb::EnrollmentStatus::Active);
    assert_eq!(approved.decided_by, "county:350102/approver/tester");

    // Approving again changes nothing.
    let again = county
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: l_number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!(again.registry_number, approved.registry_number);

    for number in [l_number.as_str(), &approved.registry_number, &id_number] {
        let found = school
            .get_student(pb::GetStudentRequest {
                number: number.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("find by {number}: {e}"))
            .into_inner()
            .student
            .unwrap();
        assert_eq!(found.registry_number, approved.registry_number);
        assert_eq!(found.name, "王𠮷");
    }

    let listed = school
        .list_students(pb::ListStudentsRequest {
            school_code: "2135000101".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.students.len(), 1);
    assert_eq!(listed.next_page_token, "");

    let (students, enrollments, _) = node.counts().await;
    assert_eq!((students, enrollments), (1, 1));
    // registered; approved (awaiting the national check); the national check granted the G.
    // (A standalone node keeps one chain: the national index's own entries join it.)
    let identity_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit.entries WHERE action LIKE 'identity.%'")
            .fetch_one(&node.pool)
            .await
            .unwrap();
    assert_eq!(identity_entries, 3);
    xueji_audit::seal_all(&node.pool).await.unwrap();
    let report = xueji_audit::verify(&node.pool, |_| {}).await.unwrap();
    assert!(report.is_intact());
    assert!(report.sealed >= 3);
    node.node.stop().await.unwrap();
}

#[tokio::test]
async fn students_without_a_resident_id_get_a_j_number() {
    let node = TestNode::start().await;
    let mut school = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    let mut request = registration("k-j", "Emma Müller", 0);
    request.document_type = pb::DocumentType::Passport as i32;
    request.document_number = "E12345678".into();
    request.ethnicity = "98".into();
    let l_number = school
        .register_student(request)
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
        .registry_number;
    let mut county = node.client(Level::County, "350102", Role::Approver).await;
    let approved = county
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: l_number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert!(approved.registry_number.starts_with("J35010220180307001"));
    let parsed: xueji_codes::RegistryNumber = approved.registry_number.parse().unwrap();
    assert_eq!(parsed.kind(), xueji_codes::RegistryKind::J);
    assert_eq!(approved.aliases, vec![l_number]);
}

#[tokio::test]
async fn every_bad_input_names_its_field_and_writes_nothing() {
    let node = TestNode::start().await;
    let mut school = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    type Mutation = fn(&mut pb::RegisterStudentRequest);
    let cases: Vec<(&str, Mutation)> = vec![
        ("idempotency_key", |r| r.idempotency_key.clear()),
        ("name", |r| r.name = "  ".into()),
        ("name", |r| r.name = "王\u{7}".into()),
        ("gender", |r| r.gender = 0),
        ("birth_date", |r| r.birth_date = "2018-02-30".into()),
        ("birth_date", |r| r.birth_date = "2018-03-08".into()),
        ("gender", |r| r.gender = pb::Gender::Female as i32),
        ("ethnicity", |r| r.ethnicity = "60".into()),
        ("document_type", |r| r.document_type = 0),
        ("document_number", |r| {
            let last = r.document_number.pop().unwrap();
            r.document_number.push(if last == '0' { '1' } else { '0' });
        }),
        ("document_number", |r| {
            r.document_number = "350102180307001".into()
        }),
        ("document_number", |r| {
            r.document_type = pb::DocumentType::None as i32;
        }),
        ("school_code", |r| r.school_code = "2135".into()),
        ("school_code", |r| r.school_code = "2135009999".into()),
        ("grade", |r| r.grade = 10),
        ("entry_date", |r| r.entry_date = "2018-01-01".into()),
        ("entry_date", |r| r.entry_date = "1 Sept".into()),
        ("entry_route", |r| r.entry_route = 0),
        ("guardian", |r| r.guardian = None),
        ("guardian.phone", |r| {
            r.guardian.as_mut().unwrap().phone = "call me".into()
        }),
    ];
    let before = node.counts().await;
    for (field, mutate) in cases {
        let mut request = registration("k-bad", "王小明", 2);
        mutate(&mut request);
        let status = school.register_student(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            violated_fields(&status).iter().any(|f| f == field),
            "{field} not named in {:?}",
            violated_fields(&status)
        );
    }
    assert_eq!(node.counts().await, before, "nothing written");

    // A lowercase x is accepted and stored upper-case.
    let body = (0..1000)
        .map(|seq| format!("35010220180307{:03}", seq * 2 % 1000))
        .find(|body| resident_id(body).ends_with('X'))
        .unwrap();
    let mut request = registration("k-x", "王小红", 0);
    request.document_number = resident_id(&body).to_lowercase();
    request.gender = pb::Gender::Female as i32;
    let student = school
        .register_student(request)
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert!(student.document_number.ends_with('X'));
}

#[tokio::test]
async fn a_retry_with_the_same_key_returns_the_same_number_and_writes_nothing() {
    let node = TestNode::start().await;
    let mut school = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    let first = school
        .register_student(registration("k-retry", "李雷", 3))
        .await
        .unwrap()
        .into_inner();
    let counts = node.counts().await;
    let second = school
        .register_student(registration("k-retry", "李雷", 3))
        .await
        .unwrap()
        .into_inner();
    assert!(second.replayed);
    assert_eq!(
        first.student.unwrap().registry_number,
        second.student.unwrap().registry_number
    );
    assert_eq!(node.counts().await, counts);

    let status = school
        .register_student(registration("k-retry", "韩梅梅", 4))
        .await
        .expect_err("a reused key with other content is refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["idempotency_key"]);
    assert_eq!(node.counts().await, counts);
}

#[tokio::test]
async fn concurrent_registrations_of_one_id_number_yield_one_record() {
    let node = TestNode::start().await;
    let mut tasks = Vec::new();
    for attempt in 0..8 {
        let mut client = node
            .client(Level::School, "2135000101", Role::Operator)
            .await;
        tasks.push(tokio::spawn(async move {
            client
                .register_student(registration(&format!("k-race-{attempt}"), "张伟", 5))
                .await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
                assert_eq!(violated_fields(&status), ["document_number"]);
            }
        }
    }
    assert_eq!(created, 1);
    assert_eq!(node.counts().await.0, 1);
}

#[tokio::test]
async fn same_name_gender_and_birth_date_are_flagged_not_refused_even_concurrently() {
    let node = TestNode::start().await;
    let mut tasks = Vec::new();
    for twin in 0..2 {
        let mut client = node
            .client(Level::School, "2135000101", Role::Operator)
            .await;
        tasks.push(tokio::spawn(async move {
            let mut request = registration(&format!("k-twin-{twin}"), "林𠮷", 0);
            request.document_type = pb::DocumentType::None as i32;
            request.document_number.clear();
            client.register_student(request).await
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(
            task.await
                .unwrap()
                .expect("registered")
                .into_inner()
                .student
                .unwrap()
                .registry_number,
        );
    }
    let mut county = node.client(Level::County, "350102", Role::Operator).await;
    let problems = county
        .list_problem_records(pb::ListProblemRecordsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .problems;
    let mut flagged: Vec<_> = problems.iter().map(|p| p.registry_number.clone()).collect();
    flagged.sort();
    numbers.sort();
    assert_eq!(flagged, numbers, "both records are problem records");
    assert!(problems.iter().all(
        |p| p.kind() == pb::ProblemKind::DuplicateName && p.related_registry_numbers.len() == 1
    ));

    // Another county sees none of them.
    let mut other = node.client(Level::County, "350103", Role::Operator).await;
    let none = other
        .list_problem_records(pb::ListProblemRecordsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .problems;
    assert!(none.is_empty());
    let refused = other
        .list_problem_records(pb::ListProblemRecordsRequest {
            jurisdiction: "350102".into(),
            ..Default::default()
        })
        .await
        .expect_err("foreign jurisdiction");
    assert_eq!(refused.code(), Code::NotFound);
}

#[tokio::test]
async fn rejection_needs_a_reason_and_frees_the_id_number() {
    let node = TestNode::start().await;
    let mut school = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    let number = school
        .register_student(registration("k-rej", "赵云", 6))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
        .registry_number;
    let mut county = node.client(Level::County, "350102", Role::Approver).await;
    let status = county
        .reject_registration(pb::RejectRegistrationRequest {
            registry_number: number.clone(),
            reason: " ".into(),
        })
        .await
        .expect_err("reason required");
    assert_eq!(violated_fields(&status), ["reason"]);
    let rejected = county
        .reject_registration(pb::RejectRegistrationRequest {
            registry_number: number.clone(),
            reason: "材料不全".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!(rejected.status(), pb::EnrollmentStatus::Rejected);
    assert_eq!(rejected.decision_reason, "材料不全");
    let approve = county
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: number,
        })
        .await
        .expect_err("a rejected registration stays rejected");
    assert_eq!(approve.code(), Code::FailedPrecondition);
    // The ID number is free for a corrected registration.
    school
        .register_student(registration("k-rej-2", "赵云", 6))
        .await
        .expect("registered again");
}

#[tokio::test]
async fn jurisdiction_matrix_and_foreign_equals_missing() {
    let node = TestNode::start().await;
    let mut school_a = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    let number = school_a
        .register_student(registration("k-m", "孙悟空", 7))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
        .registry_number;
    let missing = "L350102201803079999";

    let readers = [
        (Level::School, "2135000101", true),
        (Level::School, "2135000102", false),
        (Level::County, "350102", true),
        (Level::County, "350103", false),
        (Level::City, "350100", true),
        (Level::City, "350200", false),
        (Level::Province, "350000", true),
        (Level::Province, "340000", false),
        (Level::Ministry, "", true),
    ];
    for (level, jurisdiction, sees) in readers {
        let mut client = node.client(level, jurisdiction, Role::Operator).await;
        let result = client
            .get_student(pb::GetStudentRequest {
                number: number.clone(),
            })
            .await;
        if sees {
            assert!(
                result.is_ok(),
                "{level} {jurisdiction} must see the student"
            );
        } else {
            let foreign = result.expect_err("foreign");
            let absent = client
                .get_student(pb::GetStudentRequest {
                    number: missing.into(),
                })
                .await
                .expect_err("missing");
            assert_eq!(foreign.code(), Code::NotFound, "{level} {jurisdiction}");
            assert_eq!(
                foreign.message().replace(&number, "N"),
                absent.message().replace(missing, "N"),
                "a foreign student answers exactly like a missing one"
            );
        }
    }

    // Registering at a foreign school answers like an unknown school.
    let mut school_b = node
        .client(Level::School, "2135000102", Role::Operator)
        .await;
    let foreign = school_b
        .register_student(registration("k-m2", "猪八戒", 8))
        .await
        .expect_err("foreign school");
    let mut unknown_request = registration("k-m3", "猪八戒", 8);
    unknown_request.school_code = "2135009999".into();
    let unknown = school_b
        .register_student(unknown_request)
        .await
        .expect_err("unknown school");
    assert_eq!(foreign.code(), unknown.code());
    assert_eq!(foreign.message(), unknown.message());

    // Deciding: only an approver of the school's registry authority.
    let deciders = [
        (
            Level::School,
            "2135000101",
            Role::Approver,
            Code::PermissionDenied,
        ),
        (
            Level::County,
            "350102",
            Role::Operator,
            Code::PermissionDenied,
        ),
        (Level::County, "350103", Role::Approver, Code::NotFound),
        (
            Level::City,
            "350100",
            Role::Approver,
            Code::PermissionDenied,
        ),
        (
            Level::Province,
            "350000",
            Role::Approver,
            Code::PermissionDenied,
        ),
    ];
    for (level, jurisdiction, role, expected) in deciders {
        let mut client = node.client(level, jurisdiction, role).await;
        let status = client
            .approve_registration(pb::ApproveRegistrationRequest {
                registry_number: number.clone(),
            })
            .await
            .expect_err("not this caller");
        assert_eq!(status.code(), expected, "{level} {jurisdiction} {role}");
    }

    // Senior high schools are approved by the city.
    let mut senior = node
        .client(Level::School, "3435000301", Role::Operator)
        .await;
    let mut request = registration("k-senior", "沙悟净", 9);
    request.school_code = "3435000301".into();
    request.grade = 10;
    let senior_number = senior
        .register_student(request)
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap()
        .registry_number;
    let mut county = node.client(Level::County, "350102", Role::Approver).await;
    let denied = county
        .approve_registration(pb::ApproveRegistrationRequest {
            registry_number: senior_number.clone(),
        })
        .await
        .expect_err("the county is not the authority of a senior high school");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut city = node.client(Level::City, "350100", Role::Approver).await;
    city.approve_registration(pb::ApproveRegistrationRequest {
        registry_number: senior_number,
    })
    .await
    .expect("the city approves");

    // Province and ministry oversee; they do not register.
    let mut province = node.client(Level::Province, "350000", Role::Operator).await;
    let status = province
        .register_student(registration("k-p", "唐僧", 10))
        .await
        .expect_err("province does not register");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn pagination_walks_a_school_in_number_order() {
    let node = TestNode::start().await;
    let mut school = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    for i in 0..7 {
        school
            .register_student(registration(&format!("k-page-{i}"), "周周", 20 + i))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = school
            .list_students(pb::ListStudentsRequest {
                school_code: "2135000101".into(),
                page_size: 3,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.students.len() <= 3);
        seen.extend(page.students.into_iter().map(|s| s.registry_number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 7);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let status = school
        .list_students(pb::ListStudentsRequest {
            school_code: "2135000101".into(),
            page_size: 501,
            page_token: String::new(),
        })
        .await
        .expect_err("page too large");
    assert_eq!(violated_fields(&status), ["page_size"]);
}

#[tokio::test]
async fn audit_tampering_in_the_node_database_is_detected() {
    let node = TestNode::start().await;
    let mut school = node
        .client(Level::School, "2135000101", Role::Operator)
        .await;
    for i in 0..3 {
        school
            .register_student(registration(&format!("k-audit-{i}"), "钱多多", 30 + i))
            .await
            .unwrap();
    }
    xueji_audit::seal_all(&node.pool).await.unwrap();
    let edit = "UPDATE audit.entries SET actor = 'someone-else'
                WHERE id = (SELECT entry_id FROM audit.chain WHERE seq = 2)";
    // The service's own connections may not: entries are append-only.
    assert!(sqlx::query(edit).execute(&node.pool).await.is_err());
    // Someone with the owner's rights switches the triggers off.
    let mut tx = node.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(edit).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let report = xueji_audit::verify(&node.pool, |_| {}).await.unwrap();
    assert_eq!(
        report.problems,
        vec![xueji_audit::ChainProblem::Edited {
            seq: 2,
            id: report_id(&node.pool, 2).await
        }]
    );
}

async fn report_id(pool: &sqlx::PgPool, seq: i64) -> i64 {
    sqlx::query_scalar("SELECT entry_id FROM audit.chain WHERE seq = $1")
        .bind(seq)
        .fetch_one(pool)
        .await
        .unwrap()
}
