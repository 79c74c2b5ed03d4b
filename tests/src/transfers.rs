//! Helpers of the transfer tests: active students, the parties' clients, the invariants.

use std::sync::atomic::{AtomicU32, Ordering};

use tonic::Code;
use xueji_auth::{Level, Role};
use xueji_proto::{identity::v1 as ipb, transfers::v1 as tpb};

use crate::{
    federation::{Federation, registration_at},
    resident_id,
};

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A student enrolled (approved, active) at `school`: (registry number, name, birth date).
pub async fn active_student(
    federation: &Federation,
    province: &str,
    school: &str,
) -> (String, String, String) {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let division = federation.school_county(province, school).await;
    let date = chrono::NaiveDate::from_ymd_opt(2015, 1, 1).unwrap()
        + chrono::Days::new(u64::from(n / 400) + 3 * u64::from(province.as_bytes()[1]));
    let id = resident_id(&format!(
        "{division}{}{:03}",
        date.format("%Y%m%d"),
        (n % 400) * 2 + 1
    ));
    let name = format!("转学{province}{n}");
    let mut registration = registration_at(&format!("transfer-{province}-{n}"), &name, school, &id);
    registration.grade = 3;
    let student = federation
        .identity(province, Level::School, school, Role::Operator)
        .await
        .register_student(registration)
        .await
        .expect("registered")
        .into_inner()
        .student
        .expect("student");
    let approved = federation
        .identity(province, Level::County, &division, Role::Approver)
        .await
        .approve_registration(ipb::ApproveRegistrationRequest {
            registry_number: student.registry_number.clone(),
        })
        .await
        .expect("approved")
        .into_inner()
        .student
        .expect("student");
    assert_eq!(
        approved.status(),
        ipb::EnrollmentStatus::Active,
        "{approved:?}"
    );
    (approved.registry_number, name, date.to_string())
}

/// A start request of `school` for the student.
pub fn start_request(
    school: &str,
    number: &str,
    name: &str,
    birth: &str,
) -> tpb::StartTransferRequest {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    tpb::StartTransferRequest {
        idempotency_key: format!("start-{n}"),
        receiving_school_code: school.into(),
        registry_number: number.into(),
        name: name.into(),
        birth_date: birth.into(),
        target_grade: 3,
        reason: "随父母工作调动".into(),
        evidence: vec!["居住证明-1".into()],
        ..Default::default()
    }
}

/// The client of the party that decides `step` of `transfer` (as the step names it; the
/// sending side's jurisdictions are read from the database when hidden from the caller).
pub async fn party_client(
    federation: &Federation,
    province: &str,
    jurisdiction: &str,
) -> xueji_node::client::TransfersClient {
    if jurisdiction.len() == 10 {
        federation
            .transfers(province, Level::School, jurisdiction, Role::Operator)
            .await
    } else {
        let level = if jurisdiction.ends_with("0000") {
            Level::Province
        } else if jurisdiction.ends_with("00") {
            Level::City
        } else {
            Level::County
        };
        federation
            .transfers(province, level, jurisdiction, Role::Approver)
            .await
    }
}

/// The parties of a transfer, in order, from the province's database.
pub async fn parties(federation: &Federation, province: &str, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT jurisdiction FROM transfers.steps WHERE transfer_id = $1::uuid ORDER BY position",
    )
    .bind(id)
    .fetch_all(&federation.province(province).pool)
    .await
    .expect("steps")
}

/// Approves every remaining step of `id` as its party.
pub async fn approve_all(federation: &Federation, province: &str, id: &str) -> tpb::Transfer {
    let mut last = None;
    for (position, party) in parties(federation, province, id).await.iter().enumerate() {
        let answer = party_client(federation, province, party)
            .await
            .approve_transfer(tpb::ApproveTransferRequest {
                transfer_id: id.into(),
                step: position as u32,
                remark: String::new(),
            })
            .await;
        match answer {
            Ok(response) => last = response.into_inner().transfer,
            Err(status) if status.code() == Code::FailedPrecondition => {}
            Err(status) => panic!("approving step {position} as {party}: {status:?}"),
        }
    }
    last.expect("approved")
}

/// The invariants of DESIGN §5, checked on a province's database: every student has exactly
/// one current enrollment, no pending task outlives its transfer, no step decided twice, every
/// transfer's effects done.
pub async fn check_invariants(federation: &Federation, province: &str) {
    let pool = &federation.province(province).pool;
    let without_one: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.students s
         WHERE (SELECT count(*) FROM identity.enrollments e
                WHERE e.student_id = s.id AND e.is_current) <> 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        without_one, 0,
        "students without exactly one current enrollment"
    );
    let stale_locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.pending_tasks p
         JOIN transfers.transfers t ON t.id = p.task_id
         WHERE t.state NOT IN ('starting', 'in_progress', 'approved')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(stale_locks, 0, "locks held by ended transfers");
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT object, after->>'step' FROM audit.entries
             WHERE action IN ('transfers.approve', 'transfers.reject')
             GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(twice, 0, "steps decided twice");
    let owed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM transfers.effects WHERE done_at IS NULL")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(owed, 0, "effects still owed to identity");
}
