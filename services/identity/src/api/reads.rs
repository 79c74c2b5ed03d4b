//! Reads: a school's students, its workload, the problem records of a jurisdiction.

use xueji_auth::{Caller, Jurisdiction};
use xueji_codes::SchoolCode;
use xueji_proto::identity::v1 as pb;

use super::{IdentityApi, NATIONAL_PHASE, convert, page_size, page_token, paginate};
use crate::{
    IdentityError,
    domain::problems::{other_province_named, other_record_shown, partners_shown},
};

impl IdentityApi {
    pub(super) async fn school_students(
        &self,
        caller: &Caller,
        request: pb::ListStudentsRequest,
    ) -> Result<pb::ListStudentsResponse, IdentityError> {
        let limit = page_size(request.page_size)?;
        let after = page_token(&request.page_token)?;
        let code: SchoolCode = request
            .school_code
            .parse()
            .map_err(|e| IdentityError::invalid("school_code", format!("school code {e}")))?;
        if self.visible_school(caller, &code).await?.is_none() {
            return Err(IdentityError::NotFound(format!("school {code}")));
        }
        let records = self
            .store
            .students_of_school(&code, &after, i64::from(limit) + 1)
            .await?;
        let (students, next_page_token) = paginate(records, limit);
        Ok(pb::ListStudentsResponse {
            students: students.into_iter().map(convert::student).collect(),
            next_page_token,
        })
    }

    pub(super) async fn workload_of(
        &self,
        caller: &Caller,
        request: pb::GetSchoolWorkloadRequest,
    ) -> Result<pb::GetSchoolWorkloadResponse, IdentityError> {
        let code: SchoolCode = request
            .school_code
            .trim()
            .parse()
            .map_err(|e| IdentityError::invalid("school_code", format!("school code {e}")))?;
        // A school nobody registered at may be unknown here; the ministry and the school's
        // province may still ask (the answer is then zero).
        let oversees_province = match &caller.jurisdiction {
            Jurisdiction::Nation => true,
            Jurisdiction::Division(division) => {
                caller.level == xueji_auth::Level::Province
                    && division.province_digits() == code.province_digits()
            }
            Jurisdiction::School(_) => false,
        };
        if !oversees_province && self.visible_school(caller, &code).await?.is_none() {
            return Err(IdentityError::NotFound(format!("school {code}")));
        }
        let workload = self.store.school_workload(&code).await?;
        Ok(pb::GetSchoolWorkloadResponse {
            active_enrollments: workload.active_enrollments,
            pending_registrations: workload.pending_registrations,
            suspended_enrollments: workload.suspended_enrollments,
            pending_tasks: workload.pending_tasks,
        })
    }

    pub(super) async fn problem_records(
        &self,
        caller: &Caller,
        request: pb::ListProblemRecordsRequest,
    ) -> Result<pb::ListProblemRecordsResponse, IdentityError> {
        let limit = page_size(request.page_size)?;
        // Three phases: this province's duplicate-name groups (token: a registry number), the
        // problems the national index found (token: "national:<flag id>"), then the invalid
        // ID numbers a scan found (token: "invalid:<student id>").
        let phase = ProblemPhase::of(&request.page_token)?;
        let (counties, school) = self
            .schools
            .scope_of(&self.store, caller, &request.jurisdiction, "jurisdiction")
            .await?;
        let mut problems = Vec::new();
        let mut next_page_token = String::new();
        if let ProblemPhase::DuplicateNames(after) = &phase {
            let records = self
                .store
                .duplicate_name_problems(&counties, school.as_deref(), after, i64::from(limit) + 1)
                .await?;
            let (records, next) = paginate(records, limit);
            for record in records {
                let partners = self.store.duplicate_partners(&record).await?;
                let shown = partners_shown(
                    caller,
                    partners.iter().map(|partner| {
                        (
                            partner.registry_number.as_str(),
                            partner.school_code.as_str(),
                            partner.school_division.as_str(),
                        )
                    }),
                );
                problems.push(pb::ProblemRecord {
                    id: format!("duplicate_name:{}", record.registry_number),
                    kind: pb::ProblemKind::DuplicateName as i32,
                    detail: shown.detail(),
                    registry_number: record.registry_number,
                    name: record.name,
                    school_code: record.school_code,
                    related_registry_numbers: shown.named,
                    flagged_at: record
                        .registered_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                });
            }
            next_page_token = next;
        }
        let room = i64::from(limit) - problems.len() as i64;
        let national_after = match phase {
            ProblemPhase::DuplicateNames(_) => Some(0),
            ProblemPhase::National(after) => Some(after),
            ProblemPhase::InvalidIds(_) => None,
        };
        if let Some(national_after) = national_after
            && next_page_token.is_empty()
            && room > 0
        {
            let flags = self
                .store
                .national_flags(&counties, school.as_deref(), national_after, room + 1)
                .await?;
            let more = flags.len() as i64 > room;
            let mut last_id = None;
            for flag in flags.into_iter().take(room as usize) {
                last_id = Some(flag.id);
                problems.push(pb::ProblemRecord {
                    id: format!("national:{}", flag.id),
                    kind: match flag.kind.as_str() {
                        "duplicate_id_number" => pb::ProblemKind::DuplicateIdNumber,
                        "duplicate_name" => pb::ProblemKind::DuplicateName,
                        other => {
                            return Err(IdentityError::Internal(format!(
                                "stored national flag kind {other:?} is not a kind this service \
                                 knows"
                            )));
                        }
                    } as i32,
                    detail: format!(
                        "{} (found by the national index: a record of {})",
                        flag.detail,
                        other_province_named(caller, &flag.other_province)
                    ),
                    registry_number: flag.registry_number,
                    name: flag.name,
                    school_code: flag.school_code,
                    related_registry_numbers: other_record_shown(
                        caller,
                        flag.other_registry_number,
                    ),
                    flagged_at: flag
                        .flagged_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                });
            }
            if more && let Some(id) = last_id {
                next_page_token = format!("{NATIONAL_PHASE}{id}");
            }
        }
        let room = i64::from(limit) - problems.len() as i64;
        if next_page_token.is_empty() && room > 0 {
            let after = match phase {
                ProblemPhase::InvalidIds(after) => after,
                _ => 0,
            };
            let found = self
                .store
                .invalid_id_problems(&counties, school.as_deref(), after, room + 1)
                .await?;
            let more = found.len() as i64 > room;
            let mut last_id = None;
            for problem in found.into_iter().take(room as usize) {
                last_id = Some(problem.student_id);
                problems.push(pb::ProblemRecord {
                    id: format!("{INVALID_PHASE}{}", problem.student_id),
                    kind: pb::ProblemKind::InvalidIdNumber as i32,
                    detail: problem.detail,
                    registry_number: problem.registry_number,
                    name: problem.name,
                    school_code: problem.school_code,
                    related_registry_numbers: Vec::new(),
                    flagged_at: problem
                        .found_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                });
            }
            if more && let Some(id) = last_id {
                next_page_token = format!("{INVALID_PHASE}{id}");
            }
        }
        Ok(pb::ListProblemRecordsResponse {
            problems,
            next_page_token,
        })
    }
}

/// The page token of the invalid-ID phase of the problem list.
const INVALID_PHASE: &str = "invalid:";

/// Where a page of the problem list starts.
enum ProblemPhase {
    /// After this registry number (empty: from the start).
    DuplicateNames(String),
    /// After this national flag id.
    National(i64),
    /// After this student id.
    InvalidIds(i64),
}

impl ProblemPhase {
    fn of(token: &str) -> Result<Self, IdentityError> {
        let id = |text: &str| {
            text.parse::<i64>().map_err(|_| {
                IdentityError::invalid("page_token", "is not a token this service issued")
            })
        };
        Ok(if let Some(after) = token.strip_prefix(NATIONAL_PHASE) {
            Self::National(id(after)?)
        } else if let Some(after) = token.strip_prefix(INVALID_PHASE) {
            Self::InvalidIds(id(after)?)
        } else {
            Self::DuplicateNames(page_token(token)?)
        })
    }
}
