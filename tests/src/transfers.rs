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
    let mut approver = federation
        .identity(province, Level::County, &division, Role::Approver)
        .await;
    let approved = crate::approve_until_active(&mut approver, &student.registry_number).await;
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
) -> xueji_client::TransfersClient {
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

/// Waits until `check` holds (messages between provinces and the background work run within
/// a second or so).
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 30 s");
}

/// The state of transfer `id` in `province`'s database (None: that province has no row).
pub async fn state_in(federation: &Federation, province: &str, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM transfers.transfers WHERE id = $1::uuid")
        .bind(id)
        .fetch_optional(&federation.province(province).pool)
        .await
        .expect("state")
}

/// Step `position` of `id` in `province`'s database: (jurisdiction, province, state).
pub async fn step_in(
    federation: &Federation,
    province: &str,
    id: &str,
    position: i16,
) -> Option<(String, String, String)> {
    sqlx::query_as(
        "SELECT jurisdiction, province, state FROM transfers.steps
         WHERE transfer_id = $1::uuid AND position = $2",
    )
    .bind(id)
    .bind(position)
    .fetch_optional(&federation.province(province).pool)
    .await
    .expect("step")
}

/// Approves step `position` of a transfer between provinces at the node of the step's
/// province, once the step is open there.
pub async fn approve_step_across(
    federation: &Federation,
    receiving: &str,
    id: &str,
    position: i16,
) -> tpb::Transfer {
    let (_, province, _) = step_in(federation, receiving, id, position)
        .await
        .expect("the receiving side knows every step");
    let mut jurisdiction = String::new();
    eventually(
        &format!("step {position} open in {province}"),
        async || match step_in(federation, &province, id, position).await {
            Some((j, _, state)) if state == "open" => {
                jurisdiction = j;
                true
            }
            _ => false,
        },
    )
    .await;
    party_client(federation, &province, &jurisdiction)
        .await
        .approve_transfer(tpb::ApproveTransferRequest {
            transfer_id: id.into(),
            step: position as u32,
            remark: String::new(),
        })
        .await
        .unwrap_or_else(|status| panic!("approving step {position} in {province}: {status:?}"))
        .into_inner()
        .transfer
        .expect("transfer")
}

/// The invariants across the federation: every registry number has exactly one current
/// enrollment that has not left its province; nothing is left to send or apply; each
/// province's own invariants.
pub async fn check_federation_invariants(federation: &Federation) {
    let mut live: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for province in ["34", "35"] {
        check_invariants(federation, province).await;
        let pool = &federation.province(province).pool;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT s.registry_number FROM identity.students s
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE e.status <> 'transferred_out'",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        for (number,) in rows {
            *live.entry(number).or_default() += 1;
        }
        let unsent: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM transfers.outbox WHERE sent_at IS NULL)
                  + (SELECT count(*) FROM transfers.inbox
                     WHERE applied_at IS NULL AND set_aside_at IS NULL)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            unsent, 0,
            "messages of province {province} still unsent or unapplied"
        );
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM transfers.transfers WHERE state IN ('starting', 'approved')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(unfinished, 0, "transfers of province {province} stuck");
    }
    let twice: Vec<_> = live.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "students enrolled more than once nationally: {twice:?}"
    );
    let unforwarded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM national.relay WHERE forwarded_at IS NULL")
            .fetch_one(&federation.national.pool)
            .await
            .unwrap();
    assert_eq!(unforwarded, 0, "relayed messages not forwarded");
}

/// What the saga's queues hold, for a failing test's message.
pub async fn describe_queues(federation: &Federation) -> String {
    let mut out = String::new();
    for province in ["34", "35"] {
        let pool = &federation.province(province).pool;
        let rows: Vec<(String, i32, Option<String>)> = sqlx::query_as(
            "SELECT 'effect ' || kind || CASE WHEN done_at IS NULL THEN ' owed' ELSE ' done' END,
                    attempts, last_error FROM transfers.effects
             UNION ALL
             SELECT 'inbox ' || from_province || CASE WHEN applied_at IS NULL THEN ' waiting' ELSE ' applied' END,
                    attempts, last_error FROM transfers.inbox
             UNION ALL
             SELECT 'outbox ' || to_province || CASE WHEN sent_at IS NULL THEN ' waiting' ELSE ' sent' END,
                    0, NULL FROM transfers.outbox",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        out.push_str(&format!("province {province}: {rows:?}\n"));
    }
    out
}

/// The student under `number` as `school`'s operator in `province` reads it.
pub async fn student_seen_by(
    federation: &Federation,
    province: &str,
    school: &str,
    number: &str,
) -> ipb::Student {
    federation
        .identity(province, Level::School, school, Role::Operator)
        .await
        .get_student(ipb::GetStudentRequest {
            number: number.to_owned(),
        })
        .await
        .unwrap_or_else(|status| panic!("school {school} reads {number}: {status:?}"))
        .into_inner()
        .student
        .expect("student")
}

/// Two primary schools of Fujian in different counties (no province rule stands in the way of a
/// transfer between them): (receiving, sending).
pub async fn two_schools(federation: &Federation) -> (String, String) {
    let schools = federation.primary_schools("35").await;
    let county = federation.school_county("35", &schools[0]).await;
    for other in &schools[1..] {
        if federation.school_county("35", other).await != county {
            return (schools[0].clone(), other.clone());
        }
    }
    panic!("no two counties with primary schools");
}

/// Asks for `kind` of `number` at Fujian's `school` effective on `effective` (with one evidence
/// file), and has the school's approver and its county approve it; answers the change.
pub async fn approved_status_change(
    federation: &Federation,
    school: &str,
    number: &str,
    kind: ipb::StatusChangeKind,
    effective: chrono::NaiveDate,
) -> ipb::StatusChange {
    let county = federation.school_county("35", school).await;
    let mut desk = federation
        .status_changes("35", Level::School, school, Role::Operator)
        .await;
    let evidence = crate::png_evidence(&mut desk, number, "证明.png")
        .await
        .unwrap_or_else(|status| panic!("evidence for {number}: {status:?}"));
    let change = desk
        .request_status_change(ipb::RequestStatusChangeRequest {
            idempotency_key: format!("{kind:?}-{number}-{effective}"),
            registry_number: number.into(),
            kind: kind as i32,
            reason: "家长申请".into(),
            grounds: String::new(),
            effective_date: effective.to_string(),
            evidence_ids: vec![evidence],
        })
        .await
        .unwrap_or_else(|status| panic!("{kind:?}: {status:?}"))
        .into_inner()
        .change
        .expect("the change");
    for (step, level, jurisdiction) in [(0, Level::School, school), (1, Level::County, &county)] {
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
            .unwrap_or_else(|status| panic!("{kind:?} step {step}: {status:?}"));
    }
    change
}
