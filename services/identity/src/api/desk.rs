//! The registrar's desk: the September queue of pending registrations, the approval of a
//! chosen batch of them, and the search a registrar runs when a parent calls.

use chrono::NaiveDate;
use tonic::Status;
use xueji_auth::Caller;
use xueji_proto::identity::v1 as pb;
use xueji_validation::{Violations, parse_date};

use super::{IdentityApi, NATIONAL_PATIENCE, convert, page_token, paginate};
use crate::{
    IdentityError,
    store::{
        StudentRecord,
        queue::{QueueFilter, SearchCriteria},
    },
};

/// Registrations a queue page holds by default and at most.
const QUEUE_PAGE: u32 = 100;
const MAX_QUEUE_PAGE: u32 = 500;
/// Registrations one batch approval decides at most.
const MAX_BATCH: usize = 500;
/// Students a search page holds by default and at most.
const SEARCH_PAGE: u32 = 20;
const MAX_SEARCH_PAGE: u32 = 100;

impl IdentityApi {
    pub(super) async fn pending_queue(
        &self,
        caller: &Caller,
        request: pb::ListPendingRegistrationsRequest,
    ) -> Result<pb::ListPendingRegistrationsResponse, IdentityError> {
        let mut violations = Violations::default();
        let grade = match request.grade {
            0 => None,
            g @ 1..=12 => Some(g as i16),
            _ => {
                violations.add("grade", "must be 1–12, or 0 for every grade");
                None
            }
        };
        let from = optional_date(&mut violations, "registered_from", &request.registered_from);
        let until = optional_date(
            &mut violations,
            "registered_until",
            &request.registered_until,
        );
        if let (Some(from), Some(until)) = (from, until)
            && from > until
        {
            violations.add("registered_until", "must not be before registered_from");
        }
        let limit = match request.page_size {
            0 => QUEUE_PAGE,
            n if n <= MAX_QUEUE_PAGE => n,
            _ => {
                violations.add("page_size", format!("must be at most {MAX_QUEUE_PAGE}"));
                QUEUE_PAGE
            }
        };
        let after = match request.page_token.trim() {
            "" => 0,
            token => token.parse::<i64>().unwrap_or_else(|_| {
                violations.add("page_token", "is not a token this service issued");
                0
            }),
        };
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let (counties, school) = self
            .schools
            .scope_of(&self.store, caller, &request.scope, "scope")
            .await?;
        let filter = QueueFilter { grade, from, until };
        let mut page = self
            .store
            .pending_registrations(
                &counties,
                school.as_deref(),
                &filter,
                after,
                i64::from(limit) + 1,
            )
            .await?;
        let next_page_token = if page.len() > limit as usize {
            page.truncate(limit as usize);
            page.last().map(|r| r.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let counts = self
            .store
            .pending_counts(&counties, school.as_deref(), &filter)
            .await?;
        Ok(pb::ListPendingRegistrationsResponse {
            registrations: page.into_iter().map(convert::student).collect(),
            total: counts.iter().map(|c| c.pending.max(0) as u64).sum(),
            counts: counts
                .into_iter()
                .map(|c| pb::PendingCount {
                    school_code: c.school_code,
                    grade: c.grade.max(0) as u32,
                    pending: c.pending.max(0) as u64,
                })
                .collect(),
            next_page_token,
        })
    }

    /// Decides every registration of the batch on its own, as ApproveRegistration does, then
    /// waits once for the national checks they queued.
    pub(super) async fn approve_batch(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::ApproveRegistrationsRequest,
    ) -> Result<pb::ApproveRegistrationsResponse, IdentityError> {
        let numbers: Vec<String> = request
            .registry_numbers
            .iter()
            .map(|n| n.trim().to_owned())
            .collect();
        if numbers.is_empty() || numbers.len() > MAX_BATCH {
            return Err(IdentityError::invalid(
                "registry_numbers",
                format!("must name 1–{MAX_BATCH} registrations"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = numbers.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(IdentityError::invalid(
                "registry_numbers",
                format!("{twice} is named twice"),
            ));
        }
        // Every record found and decidable by the caller before anything is decided.
        let mut records = Vec::with_capacity(numbers.len());
        for number in &numbers {
            let record = self
                .visible_student(caller, "registry_numbers", number)
                .await?;
            Self::require_decider(caller, &record)?;
            records.push(record);
        }
        let mut decided: Vec<Result<Option<i64>, IdentityError>> = Vec::new();
        for record in &records {
            decided.push(
                self.record_approval(caller, request_id, record)
                    .await
                    .map(|claim| claim.map(|claim| claim.sequence)),
            );
        }
        if let Some(last) = decided
            .iter()
            .filter_map(|d| d.as_ref().ok().copied().flatten())
            .max()
        {
            self.national
                .try_deliver_within(NATIONAL_PATIENCE, last)
                .await;
        }
        let mut outcomes = Vec::with_capacity(records.len());
        let (mut approved, mut refused) = (0, 0);
        for ((number, record), decision) in numbers.iter().zip(&records).zip(decided) {
            let answer = match decision {
                Ok(Some(sequence)) => self.national_refusal(caller, record, sequence).await,
                Ok(None) => Ok(()),
                Err(error) => Err(error),
            };
            let outcome = match answer {
                Ok(()) => self.store.student(record.id).await,
                Err(error) => Err(error),
            };
            outcomes.push(match outcome {
                Ok(after) => {
                    approved += 1;
                    approved_outcome(number, after)
                }
                Err(error) => {
                    refused += 1;
                    refused_outcome(number, error)
                }
            });
        }
        Ok(pb::ApproveRegistrationsResponse {
            outcomes,
            approved,
            refused,
        })
    }

    pub(super) async fn search(
        &self,
        caller: &Caller,
        request: pb::SearchStudentsRequest,
    ) -> Result<pb::SearchStudentsResponse, IdentityError> {
        let mut violations = Violations::default();
        let name = match request.name.trim() {
            "" => None,
            raw => xueji_validation::person_name(raw, 100)
                .map_err(|why| violations.add("name", why))
                .ok(),
        };
        let birth_date = optional_date(&mut violations, "birth_date", &request.birth_date);
        let guardian = match request.guardian.trim() {
            "" => None,
            text if text.chars().count() > 100 => {
                violations.add("guardian", "must be at most 100 characters");
                None
            }
            text => Some(text.to_owned()),
        };
        let document_part = match request.document_number_part.trim() {
            "" => None,
            part if (4..=18).contains(&part.len())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'X' || b == b'x') =>
            {
                Some(part.to_ascii_uppercase())
            }
            _ => {
                violations.add(
                    "document_number_part",
                    "must be 4–18 consecutive characters of a document number (digits, X)",
                );
                None
            }
        };
        let limit = match request.page_size {
            0 => SEARCH_PAGE,
            n if n <= MAX_SEARCH_PAGE => n,
            _ => {
                violations.add("page_size", format!("must be at most {MAX_SEARCH_PAGE}"));
                SEARCH_PAGE
            }
        };
        let after = page_token(&request.page_token).unwrap_or_else(|_| {
            violations.add("page_token", "is not a token this service issued");
            String::new()
        });
        let criteria = SearchCriteria {
            name,
            birth_date,
            guardian,
            document_part,
        };
        if violations.is_empty()
            && criteria.name.is_none()
            && criteria.birth_date.is_none()
            && criteria.guardian.is_none()
            && criteria.document_part.is_none()
        {
            violations.add(
                "name",
                "give at least one of name, birth_date, guardian or document_number_part",
            );
        }
        if !violations.is_empty() {
            return Err(IdentityError::InvalidArgument(violations.into_vec()));
        }
        let (counties, school) = self
            .schools
            .scope_of(&self.store, caller, &request.scope, "scope")
            .await?;
        let found = self
            .store
            .search_students(
                &counties,
                school.as_deref(),
                &criteria,
                &after,
                i64::from(limit) + 1,
            )
            .await?;
        let (students, next_page_token) = paginate(found, limit);
        Ok(pb::SearchStudentsResponse {
            students: students.into_iter().map(convert::student).collect(),
            next_page_token,
        })
    }
}

/// An optional date field: empty is `None`, anything else must parse.
fn optional_date(
    violations: &mut Violations,
    field: &'static str,
    text: &str,
) -> Option<NaiveDate> {
    match text.trim() {
        "" => None,
        text => violations.check(parse_date(field, text)),
    }
}

fn approved_outcome(number: &str, record: StudentRecord) -> pb::RegistrationOutcome {
    pb::RegistrationOutcome {
        registry_number: number.to_owned(),
        student: Some(convert::student(record)),
        error_code: String::new(),
        error_message: String::new(),
    }
}

/// The refusal as the single approval would have answered it.
fn refused_outcome(number: &str, error: IdentityError) -> pb::RegistrationOutcome {
    let status = Status::from(error);
    pb::RegistrationOutcome {
        registry_number: number.to_owned(),
        student: None,
        error_code: xueji_rpc::code_name(status.code()).to_owned(),
        error_message: status.message().to_owned(),
    }
}
