//! Every object answers only its owner: national lookups, problem records, idempotency keys
//! and searches, tried by callers of different jurisdictions against a running federation.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as pb, national::v1 as npb, schools::v1 as spb};
use xueji_tests::{
    federation::{Federation, registration_at},
    resident_id,
};

#[tokio::test]
async fn national_lookups_answer_only_inside_the_callers_jurisdiction() {
    let federation = Federation::start().await;
    let schools = federation.primary_schools("35").await;
    let (own, other) = (&schools[0], &schools[1]);
    let county = federation.school_county("35", own).await;
    let id = resident_id("35010220180307201");
    let mut as_school = federation
        .identity("35", Level::School, own, Role::Operator)
        .await;
    let number = as_school
        .register_student(registration_at("scoped-1", "林小雨", own, &id))
        .await
        .expect("registered")
        .into_inner()
        .student
        .expect("student")
        .registry_number;
    federation.delivered("35").await;

    let federation = &federation;
    let lookup = |level, jurisdiction: &str, number: String| {
        let token = federation.province_token("35", level, jurisdiction, Role::Operator);
        async move {
            let mut directory = federation.directory("35", &token).await;
            directory
                .find_student(npb::FindStudentRequest { number })
                .await
                .map(|answer| answer.into_inner().student.expect("student").name)
        }
    };
    assert_eq!(
        lookup(Level::School, own, id.clone()).await.unwrap(),
        "林小雨"
    );
    assert_eq!(
        lookup(Level::County, &county, number.clone())
            .await
            .unwrap(),
        "林小雨"
    );
    let missing = lookup(Level::School, other, "L350102201803070000".into())
        .await
        .unwrap_err();
    let other_county = if county == "350203" {
        "350102"
    } else {
        "350203"
    };
    for (level, jurisdiction) in [
        (Level::School, other.as_str()),
        (Level::County, other_county),
    ] {
        for asked in [id.clone(), number.clone()] {
            let refused = lookup(level, jurisdiction, asked.clone())
                .await
                .unwrap_err();
            assert_eq!(refused.code(), Code::NotFound, "{level:?} {jurisdiction}");
            assert_eq!(
                refused.message(),
                missing.message().replace("L350102201803070000", &asked),
                "a foreign record answers exactly like a missing one"
            );
        }
    }
}

/// Registers `request` as the operator of its school on a standalone node.
async fn register_at(
    node: &xueji_tests::TestNode,
    request: pb::RegisterStudentRequest,
) -> Result<pb::RegisterStudentResponse, tonic::Status> {
    let school = request.school_code.clone();
    node.client(Level::School, &school, Role::Operator)
        .await
        .register_student(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn idempotency_keys_belong_to_their_caller() {
    let node = xueji_tests::TestNode::start().await;
    let gulou = xueji_tests::registration("shared-key", "林一", 1);
    let first = register_at(&node, gulou.clone()).await.expect("registered");
    assert!(!first.replayed);
    // Another school picks the same key for its own student: a new registration, not the
    // first school's replayed (nor a refusal that tells it the key is taken).
    let mut taijiang = xueji_tests::registration("shared-key", "林二", 2);
    taijiang.school_code = "2135000102".into();
    let second = register_at(&node, taijiang).await.expect("registered");
    assert!(!second.replayed);
    assert_ne!(
        first.student.unwrap().registry_number,
        second.student.unwrap().registry_number
    );
    // The first school's retry replays its own answer.
    assert!(register_at(&node, gulou).await.expect("retry").replayed);
}

/// The problem records `level`/`jurisdiction` sees.
async fn problems_seen_by(
    node: &xueji_tests::TestNode,
    level: Level,
    jurisdiction: &str,
) -> Vec<pb::ProblemRecord> {
    node.client(level, jurisdiction, Role::Operator)
        .await
        .list_problem_records(pb::ListProblemRecordsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("problems")
        .into_inner()
        .problems
}

#[tokio::test]
async fn look_alike_names_meet_and_partners_are_named_only_inside_the_jurisdiction() {
    let node = xueji_tests::TestNode::start().await;
    // The same child typed at two schools of two counties, once with full-width letters and an
    // ideographic space, with no ID number to give them away.
    let without_id = |key: &str, name: &str, school: &str| {
        let mut request = xueji_tests::registration(key, name, 3);
        request.document_type = pb::DocumentType::Passport as i32;
        request.document_number = format!("E{key}");
        request.school_code = school.into();
        request
    };
    let gulou = register_at(&node, without_id("a1", "Wang Xiaohong", "2135000101"))
        .await
        .expect("registered")
        .student
        .unwrap()
        .registry_number;
    let taijiang = register_at(
        &node,
        without_id("a2", "ＷＡＮＧ\u{3000}Ｘｉａｏｈｏｎｇ", "2135000102"),
    )
    .await
    .expect("registered")
    .student
    .unwrap();
    assert!(
        taijiang
            .problems
            .contains(&(pb::ProblemKind::DuplicateName as i32)),
        "full-width letters and spacing do not hide a duplicate"
    );

    // Invisible characters are refused outright, naming the field.
    for (key, trick) in [
        ("b1", "Wang\u{200B}Xiaohong"),
        ("b2", "\u{202E}Wang Xiaohong"),
        ("b3", "王\u{2060}小红"),
    ] {
        let status = register_at(&node, without_id(key, trick, "2135000101"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{trick:?}");
        assert_eq!(xueji_tests::violated_fields(&status), ["name"]);
    }

    // Gulou's county sees its record and that a partner exists, not which.
    let county = problems_seen_by(&node, Level::County, "350102").await;
    let own = county
        .iter()
        .find(|p| p.registry_number == gulou)
        .expect("Gulou's record is flagged");
    assert!(own.related_registry_numbers.is_empty(), "{own:?}");
    assert!(own.detail.contains("outside your jurisdiction"), "{own:?}");
    assert!(county.iter().all(|p| p.school_code == "2135000101"));
    // Fuzhou city sees both and names them to each other.
    let city = problems_seen_by(&node, Level::City, "350100").await;
    let own = city.iter().find(|p| p.registry_number == gulou).unwrap();
    assert_eq!(own.related_registry_numbers, [taijiang.registry_number]);
}

#[tokio::test]
async fn name_searches_take_wildcards_literally() {
    let federation = Federation::start().await;
    let mut intake = federation.intake("35").await;
    let count = |name: &str| {
        let mut intake = intake.clone();
        let name = name.to_owned();
        async move {
            intake
                .list_schools(spb::ListSchoolsRequest {
                    name_contains: name,
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_inner()
                .schools
                .len()
        }
    };
    assert!(count("小学").await > 0, "an ordinary search finds schools");
    for wildcard in ["%", "_", "%小学", "\\"] {
        assert_eq!(
            count(wildcard).await,
            0,
            "{wildcard:?} matched as a wildcard"
        );
    }
    intake
        .list_schools(spb::ListSchoolsRequest::default())
        .await
        .expect("the intake still answers");
}
