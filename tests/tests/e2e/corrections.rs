//! Key-field corrections end to end on a running federation: the duplicate re-check (local and
//! national) refusing at once with nothing written, the school's approver then the registry
//! authority, an ID-number correction giving a new `G` number with the old one kept as an alias
//! here and in the national index, and the student's history of every value.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as ipb, national::v1 as npb};
use xueji_tests::{
    federation::Federation, png_evidence, resident_id, transfers::active_student, violated_fields,
};

fn correction(
    key: &str,
    number: &str,
    values: &[(&str, &str)],
    evidence: &[String],
) -> ipb::RequestCorrectionRequest {
    ipb::RequestCorrectionRequest {
        idempotency_key: key.into(),
        registry_number: number.into(),
        values: values
            .iter()
            .map(|(field, value)| ipb::FieldValue {
                field: (*field).into(),
                value: (*value).into(),
            })
            .collect(),
        reason: "户口本登记有误".into(),
        evidence_ids: evidence.to_vec(),
    }
}

#[tokio::test]
async fn an_id_number_correction_keeps_the_alias_and_moves_the_national_entry() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let (number, name, birth) = active_student(&federation, "35", &school).await;
    let (other, other_name, other_birth) = active_student(&federation, "35", &school).await;
    let far_school = federation.a_primary_school("34").await;
    let (far, _, far_birth) = active_student(&federation, "34", &far_school).await;
    assert_eq!(
        birth, other_birth,
        "the helper's students share a birth date"
    );
    let mut desk = federation
        .status_changes("35", Level::School, &school, Role::Operator)
        .await;
    let evidence = vec![
        png_evidence(&mut desk, &number, "户口本.png")
            .await
            .unwrap(),
    ];
    let new_id = resident_id(&format!("{}{}999", &number[1..7], birth.replace('-', "")));

    // Refused at once, naming the field, nothing written: no evidence; a value unchanged; a
    // birth date the ID number contradicts; an ID number another record of this province holds;
    // one a record of another province holds; another live record's name, gender and birth
    // date.
    let refusals = [
        (
            correction("c-0", &number, &[("name", "林更正")], &[]),
            Code::InvalidArgument,
            "evidence_ids",
        ),
        (
            correction("c-1", &number, &[("name", &name)], &evidence),
            Code::InvalidArgument,
            "name",
        ),
        (
            correction("c-2", &number, &[("birth_date", "2014-02-02")], &evidence),
            Code::InvalidArgument,
            "birth_date",
        ),
        (
            correction("c-3", &number, &[("id_number", &other[1..])], &evidence),
            Code::AlreadyExists,
            "id_number",
        ),
        (
            correction(
                "c-4",
                &number,
                &[("birth_date", &far_birth), ("id_number", &far[1..])],
                &evidence,
            ),
            Code::AlreadyExists,
            "id_number",
        ),
        (
            correction("c-5", &number, &[("name", &other_name)], &evidence),
            Code::AlreadyExists,
            "name",
        ),
    ];
    for (request, code, field) in refusals {
        let refused = desk.request_correction(request.clone()).await.unwrap_err();
        assert_eq!(refused.code(), code, "{request:?}: {refused:?}");
        assert_eq!(violated_fields(&refused), [field], "{refused:?}");
    }
    assert!(refusals_left_no_trace(&federation, &school, &number).await);

    // A valid correction of the name and the ID number: the student's pending task.
    let asked = correction(
        "c-ok",
        &number,
        &[("name", "林更正"), ("id_number", &new_id)],
        &evidence,
    );
    let change = desk
        .request_correction(asked.clone())
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(change.kind(), ipb::StatusChangeKind::Correction);
    assert_eq!(change.corrections.len(), 2);
    assert_eq!(change.corrections[1].from, &number[1..]);
    let replay = desk.request_correction(asked).await.unwrap().into_inner();
    assert_eq!(
        replay.change.unwrap().id,
        change.id,
        "a retry answers the same"
    );
    let busy = desk
        .request_correction(correction(
            "c-busy",
            &number,
            &[("name", "林再改")],
            &evidence,
        ))
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::FailedPrecondition, "{busy:?}");

    // The school's approver, then the county's.
    let mut school_approver = federation
        .status_changes("35", Level::School, &school, Role::Approver)
        .await;
    let out_of_turn = federation
        .status_changes("35", Level::County, &county, Role::Approver)
        .await
        .decide_status_change(decide(&change.id, 1))
        .await
        .unwrap_err();
    assert_eq!(out_of_turn.code(), Code::FailedPrecondition);
    school_approver
        .decide_status_change(decide(&change.id, 0))
        .await
        .unwrap();
    let done = federation
        .status_changes("35", Level::County, &county, Role::Approver)
        .await
        .decide_status_change(decide(&change.id, 1))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(done.state(), ipb::StatusChangeState::Approved);

    // The record: a new `G` number, the old one an alias that still finds the student.
    let mut reader = federation
        .identity("35", Level::School, &school, Role::Operator)
        .await;
    let student = reader
        .get_student(ipb::GetStudentRequest {
            number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!(student.registry_number, format!("G{new_id}"));
    assert!(student.aliases.contains(&number), "{student:?}");
    assert_eq!(student.name, "林更正");
    assert_eq!(student.document_number, new_id);

    // The national index moved the entry through the claim: the new number, the old as an
    // alias, the new ID number claimed (the old one released).
    federation.delivered("35").await;
    let ministry = federation.token(Level::Ministry, "", Role::Operator);
    let mut national = federation.directory("national", &ministry).await;
    let entry = national
        .get_index_entry(npb::GetIndexEntryRequest {
            number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    assert_eq!(entry.registry_number, format!("G{new_id}"));
    assert!(entry.aliases.contains(&number), "{entry:?}");
    assert_eq!(entry.claimed_id_number, new_id);

    // The history: every value of the name and the number, who, why and who approved.
    let history = desk
        .get_student_history(ipb::GetStudentHistoryRequest {
            registry_number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let values = |field: &str| -> Vec<String> {
        history
            .fields
            .iter()
            .filter(|f| f.field == field)
            .map(|f| f.value.clone())
            .collect()
    };
    assert_eq!(values("name"), [name.clone(), "林更正".to_owned()]);
    assert_eq!(
        values("id_number"),
        [number[1..].to_owned(), new_id.clone()]
    );
    assert!(values("registry_number").ends_with(&[number.clone(), format!("G{new_id}")]));
    let corrected = history
        .fields
        .iter()
        .find(|f| f.field == "name" && f.value == "林更正")
        .unwrap();
    assert_eq!(corrected.change_id, change.id);
    assert!(corrected.reason.contains("户口本登记有误"), "{corrected:?}");
    assert!(corrected.approved_by.contains(&county), "{corrected:?}");
    // Another school's users do not see it.
    let other_school = federation
        .primary_schools("35")
        .await
        .into_iter()
        .find(|s| *s != school)
        .unwrap();
    let hidden = federation
        .status_changes("35", Level::School, &other_school, Role::Operator)
        .await
        .get_student_history(ipb::GetStudentHistoryRequest {
            registry_number: number,
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
}

fn decide(id: &str, step: u32) -> ipb::DecideStatusChangeRequest {
    ipb::DecideStatusChangeRequest {
        id: id.into(),
        step,
        approve: true,
        remark: String::new(),
    }
}

/// No correction was opened: the inbox of the school's approver is empty.
async fn refusals_left_no_trace(federation: &Federation, school: &str, number: &str) -> bool {
    let inbox = federation
        .status_changes("35", Level::School, school, Role::Approver)
        .await
        .list_status_change_inbox(ipb::ListStatusChangeInboxRequest { page_size: 50 })
        .await
        .unwrap()
        .into_inner();
    !inbox.changes.iter().any(|c| c.registry_number == number)
}

fn details(key: &str, number: &str, values: &[(&str, &str)]) -> ipb::UpdateStudentDetailsRequest {
    ipb::UpdateStudentDetailsRequest {
        idempotency_key: key.into(),
        registry_number: number.into(),
        values: values
            .iter()
            .map(|(field, value)| ipb::FieldValue {
                field: (*field).into(),
                value: (*value).into(),
            })
            .collect(),
        reason: "家长更换手机号".into(),
    }
}

/// Anhui 第十七条: the school keeps the non-key fields itself, without approval; each change is
/// audited with its old value, shows in the history, and the statistics follow the flags.
#[tokio::test]
async fn the_school_updates_non_key_fields_itself_and_the_history_and_figures_follow() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let (number, _, _) = active_student(&federation, "35", &school).await;
    let mut desk = federation
        .status_changes("35", Level::School, &school, Role::Operator)
        .await;
    let mut stats = federation
        .stats("35", Level::School, &school, Role::Operator)
        .await;
    let migrants = async |stats: &mut xueji_client::StatsClient| {
        stats
            .get_counts(xueji_proto::stats::v1::GetCountsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .cells
            .iter()
            .find(|c| c.dimension == "migrant_child" && c.value == "yes")
            .map_or(0, |c| c.students)
    };

    // Refused at once, naming the field, nothing written: a key field, a bad phone, a field
    // the school does not keep, the same field twice.
    let refused = desk
        .update_student_details(details(
            "d-bad",
            &number,
            &[
                ("name", "王小二"),
                ("guardian.phone", "call me"),
                ("ethnicity", "99"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&refused),
        ["values", "guardian.phone", "ethnicity"]
    );

    let updated = desk
        .update_student_details(details(
            "d-1",
            &number,
            &[
                ("guardian.phone", "13900000000"),
                ("migrant_child", "是"),
                ("entry_route", "entrance_exam"),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.replayed);
    let changed: Vec<_> = updated
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.from.as_str(), c.to.as_str()))
        .collect();
    assert_eq!(
        changed,
        [
            ("guardian.phone", "13800000000", "13900000000"),
            ("entry_route", "nearby_admission", "entrance_exam"),
            ("migrant_child", "false", "true"),
        ]
    );
    let student = updated.student.unwrap();
    assert_eq!(student.guardian.as_ref().unwrap().phone, "13900000000");
    assert!(student.migrant_child);
    assert_eq!(student.entry_route(), ipb::EntryRoute::EntranceExam);

    // A retry answers the same update and writes nothing; the key with other values is refused.
    let audited = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM audit.entries WHERE action = 'identity.update_student_details'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let pool = federation.province("35").pool.clone();
    assert_eq!(audited(pool.clone()).await, 1);
    let again = desk
        .update_student_details(details(
            "d-1",
            &number,
            &[
                ("guardian.phone", "13900000000"),
                ("migrant_child", "是"),
                ("entry_route", "entrance_exam"),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.changes, updated.changes);
    assert_eq!(audited(pool.clone()).await, 1);
    let reused = desk
        .update_student_details(details(
            "d-1",
            &number,
            &[("guardian.phone", "13700000000")],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&reused), ["idempotency_key"]);
    let before: serde_json::Value = sqlx::query_scalar(
        "SELECT before FROM audit.entries WHERE action = 'identity.update_student_details'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(before["guardian.phone"], "13800000000", "{before}");

    // The history holds both phone numbers, the second by the school without an approver.
    let history = desk
        .get_student_history(ipb::GetStudentHistoryRequest {
            registry_number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let phones: Vec<_> = history
        .fields
        .iter()
        .filter(|f| f.field == "guardian.phone")
        .collect();
    assert_eq!(phones.len(), 2, "{history:?}");
    assert_eq!(phones[0].value, "13800000000");
    assert_eq!(phones[1].value, "13900000000");
    assert!(
        phones[1].reason.contains("家长更换手机号"),
        "{:?}",
        phones[1]
    );
    assert!(phones[1].approved_by.is_empty());

    // The figures follow the flag.
    for _ in 0..150 {
        if migrants(&mut stats).await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        migrants(&mut stats).await,
        1,
        "the migrant count follows the flag"
    );

    // Another school sees nothing of the record.
    let other = federation
        .primary_schools("35")
        .await
        .into_iter()
        .find(|s| *s != school)
        .unwrap();
    let hidden = federation
        .status_changes("35", Level::School, &other, Role::Operator)
        .await
        .update_student_details(details("d-x", &number, &[("guardian.phone", "1")]))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
}
