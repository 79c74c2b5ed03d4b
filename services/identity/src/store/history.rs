//! What a student's history is assembled from: the registration, the numbers issued, the
//! enrollments and the approved requests, read as the domain's history inputs.

use chrono::{NaiveTime, TimeZone, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Store, unknown};
use crate::{
    IdentityError,
    domain::{
        DocumentType,
        correction::{FieldChange, KeyValues},
        history::{
            ApprovedRequest, DETAIL_UPDATE, EnrollmentTrace, IssuedNumber, Registered,
            TransferTrace,
        },
        parse_gender,
    },
};

/// The decision reason of the archived copy of a move to another province (`store::moves`).
const MOVED_TO_ANOTHER_PROVINCE: &str = "transferred to another province";

/// Everything a student's history is made of.
#[derive(Debug, Clone)]
pub struct HistorySources {
    pub registered: Registered,
    pub numbers: Vec<IssuedNumber>,
    pub enrollments: Vec<EnrollmentTrace>,
    pub approved: Vec<ApprovedRequest>,
}

impl Store {
    /// The photo (an evidence file id) a correction gave the student, if any.
    pub async fn photo_of(&self, student_id: i64) -> Result<Option<Uuid>, IdentityError> {
        Ok(sqlx::query_scalar!(
            "SELECT photo FROM identity.students WHERE id = $1",
            student_id
        )
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// The sources of a student's history.
    pub async fn history_sources(&self, student_id: i64) -> Result<HistorySources, IdentityError> {
        let mut conn = self.pool.acquire().await?;
        let student = sqlx::query!(
            "SELECT name, gender, birth_date, document_type, document_number, photo,
                    registered_by, registered_at, provincial_fields
             FROM identity.students WHERE id = $1",
            student_id
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::NotFound("student".into()))?;
        let enrollments = sqlx::query!(
            "SELECT school_code, entry_date, entry_route, status, grade, decided_by, decided_at,
                    transfer_task, picked_up_from, transfer_deciders, decision_reason,
                    approved_by, approved_at
             FROM identity.enrollments WHERE student_id = $1 ORDER BY id",
            student_id
        )
        .fetch_all(&mut *conn)
        .await?;
        let numbers = sqlx::query!(
            "SELECT number, issued_at FROM identity.registry_numbers
             WHERE student_id = $1 ORDER BY issued_at, number",
            student_id
        )
        .fetch_all(&mut *conn)
        .await?;
        let approved = sqlx::query!(
            r#"SELECT id, kind, reason, requested_by, task, applied,
                      corrections AS "corrections: Json<Vec<FieldChange>>"
               FROM identity.status_changes
               WHERE student_id = $1 AND state = 'approved'
               ORDER BY requested_at"#,
            student_id
        )
        .fetch_all(&mut *conn)
        .await?;
        let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
        // The registration's approval, as kept when it was given (later decisions overwrite
        // the enrollment's last decision).
        let first_approval = enrollments
            .first()
            .and_then(|e| e.approved_by.clone().zip(e.approved_at));
        let mut requests = Vec::new();
        for row in approved {
            let task: xueji_workflow::Task = serde_json::from_value(row.task).map_err(|e| {
                IdentityError::Internal(format!("a stored task does not read: {e}"))
            })?;
            let last = task
                .steps
                .iter()
                .rev()
                .find_map(|step| step.decision.as_ref())
                .ok_or_else(|| {
                    IdentityError::Internal("an approved task has no decision".into())
                })?;
            let applied = row.applied.unwrap_or_default();
            let status_after = applied["after"]["status"].as_str().map(|status| {
                (
                    status.to_owned(),
                    applied["after"]["grade"].as_i64().unwrap_or(0),
                )
            });
            let number_after = applied["registry_number"]["to"]
                .as_str()
                .filter(|to| Some(*to) != applied["registry_number"]["from"].as_str())
                .map(str::to_owned);
            requests.push(ApprovedRequest {
                id: row.id,
                kind: row.kind,
                reason: row.reason,
                requested_by: row.requested_by,
                approved_by: last.by.clone(),
                approved_at: last.at,
                corrections: row.corrections.map(|c| c.0).unwrap_or_default(),
                status_after,
                number_after,
            });
        }
        // Updates of non-key fields, which need no approval: named by whoever made them.
        for update in self.detail_updates(student_id).await? {
            requests.push(ApprovedRequest {
                id: update.id,
                kind: DETAIL_UPDATE.into(),
                reason: update.reason,
                requested_by: update.updated_by,
                approved_by: String::new(),
                approved_at: update.updated_at,
                corrections: update.changes,
                status_after: None,
                number_after: None,
            });
        }
        requests.sort_by_key(|r| r.approved_at);
        Ok(HistorySources {
            registered: Registered {
                by: student.registered_by,
                at: student.registered_at,
                approved: first_approval,
                current: KeyValues {
                    name: student.name,
                    gender: parse_gender(&student.gender)
                        .ok_or_else(|| unknown("gender", &student.gender))?,
                    birth_date: student.birth_date,
                    document_type: DocumentType::parse(&student.document_type)
                        .ok_or_else(|| unknown("document type", &student.document_type))?,
                    document_number: student.document_number,
                    photo: student.photo,
                },
                provincial: serde_json::from_value(student.provincial_fields)
                    .map_err(|e| unknown("provincial_fields", e.to_string()))?,
            },
            numbers: numbers
                .into_iter()
                .map(|row| IssuedNumber {
                    number: row.number,
                    issued_at: row.issued_at,
                })
                .collect(),
            enrollments: enrollments
                .into_iter()
                .map(|row| EnrollmentTrace {
                    school_code: row.school_code,
                    began: china
                        .from_local_datetime(&row.entry_date.and_time(NaiveTime::MIN))
                        .single()
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_else(|| {
                            Utc.from_utc_datetime(&row.entry_date.and_time(NaiveTime::MIN))
                        }),
                    entry_route: row.entry_route,
                    status: row.status,
                    grade: u32::try_from(row.grade).unwrap_or_default(),
                    // The archived copy of a move to another province carries the task that
                    // closed it, not one that opened it.
                    transfer: row
                        .transfer_task
                        .filter(|_| {
                            row.decision_reason.as_deref() != Some(MOVED_TO_ANOTHER_PROVINCE)
                        })
                        .map(|task| TransferTrace {
                            task,
                            picked_up_from: row.picked_up_from,
                            deciders: row.transfer_deciders,
                        }),
                    decided_by: row.decided_by,
                    decided_at: row.decided_at,
                })
                .collect(),
            approved: requests,
        })
    }
}
