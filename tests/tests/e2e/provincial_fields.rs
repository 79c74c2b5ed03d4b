//! Provincial fields (非基础字段) end to end on a running federation: Fujian declares its own
//! fields (`policy/provincial_fields.toml`); registration checks them (nothing written when one
//! is wrong), the record keeps and shows them, a key one changes only by a correction through
//! both approvers with its history, and nothing of them reaches the national node.

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::identity::v1 as ipb;
use xueji_tests::{
    approve_until_active,
    federation::{Federation, registration_at},
    png_evidence, resident_id, violated_fields,
};

/// A value no other record, code or date of the federation holds: found anywhere in the
/// national node's database, it came from a provincial field.
const HUKOU: &str = "620722";
const HUKOU_CORRECTED: &str = "620723";

/// Rows of every table in `pool`'s database whose text holds `needle`, as `schema.table`.
async fn tables_holding(pool: &sqlx::PgPool, needle: &str) -> Vec<String> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
         WHERE table_type = 'BASE TABLE'
           AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut holding = Vec::new();
    for (schema, table) in tables {
        let found: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{schema}\".\"{table}\" t WHERE t::text LIKE '%' || $1 || '%'"
        ))
        .bind(needle)
        .fetch_one(pool)
        .await
        .expect("scan");
        if found > 0 {
            holding.push(format!("{schema}.{table}"));
        }
    }
    holding
}

#[tokio::test]
async fn a_provincial_field_is_checked_kept_corrected_and_never_sent_nationally() {
    let federation = Federation::start().await;
    let school = federation.a_primary_school("35").await;
    let county = federation.school_county("35", &school).await;
    let mut operator = federation
        .identity("35", Level::School, &school, Role::Operator)
        .await;
    let id = resident_id(&format!("{county}20180307015"));
    let with_fields = |fields: &[(&str, &str)]| {
        let mut request = registration_at("pf-1", "郑小闽", &school, &id);
        request.provincial_fields = fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        request
    };

    // Refused with the field named, nothing written: a value not among the choices, a text that
    // does not have the declared form, a field Fujian does not declare (Anhui's).
    let before = federation.province("35").pool.clone();
    let count = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM identity.students")
            .fetch_one(&pool)
            .await
            .expect("count")
    };
    let students_before = count(before.clone()).await;
    for (fields, named) in [
        (vec![("boarding", "有时")], "provincial_fields.boarding"),
        (
            vec![("hukou_division", "62072")],
            "provincial_fields.hukou_division",
        ),
        (vec![("household_type", "农业户口")], "provincial_fields"),
    ] {
        let refused = operator
            .register_student(with_fields(&fields))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(violated_fields(&refused), [named], "{fields:?}");
    }
    // A national field's violation and a provincial one's come together.
    let mut both = with_fields(&[("boarding", "有时")]);
    both.name = String::new();
    let refused = operator.register_student(both).await.unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        ["name", "provincial_fields.boarding"]
    );
    assert_eq!(count(before.clone()).await, students_before);

    // Kept, shown, audited.
    let student = operator
        .register_student(with_fields(&[
            ("boarding", "是"),
            ("hukou_division", HUKOU),
        ]))
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    let shown = |student: &ipb::Student, name: &str| {
        student
            .provincial_fields
            .get(name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(shown(&student, "hukou_division"), HUKOU);
    let approved = approve_until_active(
        &mut federation
            .identity("35", Level::County, &county, Role::Approver)
            .await,
        &student.registry_number,
    )
    .await;
    let number = approved.registry_number.clone();
    assert_eq!(shown(&approved, "boarding"), "是");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit.entries
         WHERE action = 'identity.register_student' AND after::text LIKE '%' || $1 || '%'",
    )
    .bind(HUKOU)
    .fetch_one(&before)
    .await
    .unwrap();
    assert_eq!(audited, 1, "the registration's audit entry holds the field");

    // A key field changes only by a correction; a field that is not key is refused there.
    let mut desk = federation
        .status_changes("35", Level::School, &school, Role::Operator)
        .await;
    let evidence = png_evidence(&mut desk, &number, "户口本.png")
        .await
        .unwrap();
    let correction = |key: &str, field: &str, value: &str| ipb::RequestCorrectionRequest {
        idempotency_key: key.into(),
        registry_number: number.clone(),
        values: vec![ipb::FieldValue {
            field: field.into(),
            value: value.into(),
        }],
        reason: "户籍迁移".into(),
        evidence_ids: vec![evidence.clone()],
    };
    let not_key = desk
        .request_correction(correction("pc-0", "boarding", "否"))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&not_key),
        ["provincial_fields.boarding"],
        "{not_key:?}"
    );
    let bad_form = desk
        .request_correction(correction("pc-1", "hukou_division", "abc"))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&bad_form),
        ["provincial_fields.hukou_division"]
    );
    let change = desk
        .request_correction(correction("pc-2", "hukou_division", HUKOU_CORRECTED))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    for (level, jurisdiction, step) in [
        (Level::School, school.as_str(), 0),
        (Level::County, county.as_str(), 1),
    ] {
        federation
            .status_changes("35", level, jurisdiction, Role::Approver)
            .await
            .decide_status_change(ipb::DecideStatusChangeRequest {
                id: change.id.clone(),
                step,
                approve: true,
                remark: String::new(),
            })
            .await
            .unwrap();
    }
    let now = operator
        .get_student(ipb::GetStudentRequest {
            number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .student
        .unwrap();
    assert_eq!(shown(&now, "hukou_division"), HUKOU_CORRECTED);
    assert_eq!(shown(&now, "boarding"), "是", "the other field is kept");
    let history = desk
        .get_student_history(ipb::GetStudentHistoryRequest {
            registry_number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<_> = history
        .fields
        .iter()
        .filter(|f| f.field == "provincial_fields.hukou_division")
        .map(|f| f.value.as_str())
        .collect();
    assert_eq!(values, [HUKOU, HUKOU_CORRECTED]);

    // The national node received the student (its index entry) but none of the fields.
    federation.delivered("35").await;
    let national = &federation.national.pool;
    assert!(
        !tables_holding(national, &number).await.is_empty(),
        "the national node knows the student"
    );
    for needle in [HUKOU, HUKOU_CORRECTED, "hukou_division", "boarding"] {
        assert_eq!(
            tables_holding(national, needle).await,
            Vec::<String>::new(),
            "{needle} reached the national node"
        );
    }
    let outbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.outbox WHERE payload::text LIKE '%hukou%'
            OR payload::text LIKE '%' || $1 || '%'",
    )
    .bind(HUKOU)
    .fetch_one(&before)
    .await
    .unwrap();
    assert_eq!(
        outbox, 0,
        "no message to the national node carries the fields"
    );
}
