//! Registration and the registry authority's decisions on it.

use std::collections::BTreeMap;

use chrono::Utc;
use rand::Rng;
use xueji_auth::{Caller, Level};
use xueji_codes::SchoolCode;
use xueji_proto::identity::v1 as pb;

use super::{IdentityApi, NATIONAL_PATIENCE, NUMBER_DRAWS, convert};
use crate::{
    IdentityError,
    domain::{self, Decision, provincial_fields::check_registration_fields},
    national::DeliveryOutcome,
    store::{Actor, Approval, ContinueOutcome, RegisterOutcome, outbox},
};

/// Whose namespace a registration's idempotency key is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyScope {
    /// The caller's own (`RegisterStudent`): one user's key never meets another's.
    Caller,
    /// Already global (an import row's key names its job and row, whoever resumes the job).
    Global,
}

impl IdentityApi {
    pub(super) async fn register(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RegisterStudentRequest,
    ) -> Result<pb::RegisterStudentResponse, IdentityError> {
        let continues = request.continues_registry_number.trim().to_owned();
        let given: BTreeMap<String, String> = request
            .provincial_fields
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let input = convert::registration_input(request);
        self.register_input(
            caller,
            request_id,
            input,
            given,
            &continues,
            KeyScope::Caller,
        )
        .await
    }

    /// Registration from decoded input: what `RegisterStudent` and an intake import's rows
    /// share (every check, the batcher, progression).
    pub(crate) async fn register_input(
        &self,
        caller: &Caller,
        request_id: &str,
        input: domain::RegistrationInput,
        given: BTreeMap<String, String>,
        continues: &str,
        key_scope: KeyScope,
    ) -> Result<pb::RegisterStudentResponse, IdentityError> {
        let school = match input.school_code.parse::<SchoolCode>() {
            Ok(code) => self.visible_school(caller, &code).await?,
            Err(_) => None,
        };
        if let Some(school) = &school
            && !domain::may_register(caller, school)
        {
            return Err(IdentityError::PermissionDenied(format!(
                "{} users oversee registrations; schools and their authorities register students",
                caller.level
            )));
        }
        // The province's own fields are checked where the school (its province) and the grade
        // (its stage) are known; their violations join the national fields'.
        let place = school
            .as_ref()
            .and_then(|s| Some((s.code.clone(), s.grade_place(input.grade)?.stage)));
        let provincial = match &place {
            Some((code, stage)) => {
                let province = code.province_digits();
                check_registration_fields(self.fields.of(province), province, &given, *stage)
            }
            None => Ok(BTreeMap::new()),
        };
        let registration = domain::validate_registration(input, school, Utc::now().date_naive());
        let mut registration = match (registration, provincial) {
            (Ok(mut registration), Ok(fields)) => {
                registration.provincial_fields = fields;
                registration
            }
            (national, provincial) => {
                let mut violations = national.err().unwrap_or_default();
                violations.extend(provincial.err().unwrap_or_default());
                return Err(IdentityError::InvalidArgument(violations));
            }
        };
        if key_scope == KeyScope::Caller {
            registration.idempotency_key = caller.scoped_key(&registration.idempotency_key);
        }
        if !continues.is_empty() {
            let student_id = self.continued_student(continues, &registration).await?;
            return self
                .continue_student(student_id, &registration, caller, request_id)
                .await;
        }

        for _ in 0..NUMBER_DRAWS {
            let number = registration.temporary_number(rand::thread_rng().gen_range(0..10_000));
            let outcome = self
                .registrations
                .register(
                    registration.clone(),
                    number.clone(),
                    caller.clone(),
                    request_id.to_owned(),
                )
                .await?;
            match outcome {
                RegisterOutcome::Created { duplicate_name, .. } => {
                    return Ok(pb::RegisterStudentResponse {
                        student: Some(convert::new_student(&registration, &number, duplicate_name)),
                        replayed: false,
                        continued: false,
                    });
                }
                RegisterOutcome::Replayed { student_id } => {
                    let record = self.store.student(student_id).await?;
                    return Ok(pb::RegisterStudentResponse {
                        student: Some(convert::student(record)),
                        replayed: true,
                        continued: false,
                    });
                }
                RegisterOutcome::KeyReused => {
                    return Err(IdentityError::invalid(
                        "idempotency_key",
                        "was already used for a different registration; use a new key",
                    ));
                }
                RegisterOutcome::DuplicateIdNumber { .. } => {
                    // The holder may have finished a stage: then this is progression (升学).
                    let holder = match &registration.resident_id {
                        Some(id) => self.store.student_by_id_number(id.as_str()).await?,
                        None => None,
                    };
                    if let Some(holder) = holder {
                        match self
                            .continue_student(holder, &registration, caller, request_id)
                            .await
                        {
                            Err(IdentityError::FailedPrecondition(_)) => {}
                            answer => return answer,
                        }
                    }
                    return Err(IdentityError::AlreadyExists {
                        field: "document_number",
                        message: "another live enrollment record holds this resident ID number; \
                                  a student has exactly one record"
                            .into(),
                    });
                }
                RegisterOutcome::NumberTaken => continue,
            }
        }
        Err(IdentityError::Exhausted(
            "no free temporary number for this division and birth date; retry".into(),
        ))
    }

    pub(super) async fn approve(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::ApproveRegistrationRequest,
    ) -> Result<pb::ApproveRegistrationResponse, IdentityError> {
        let record = self
            .visible_student(caller, "registry_number", &request.registry_number)
            .await?;
        Self::require_decider(caller, &record)?;
        let needed =
            domain::decision_needed(record.status, Decision::Approve, &record.registry_number)
                .map_err(IdentityError::FailedPrecondition)?;
        if needed {
            let promotion = domain::promotion_for(
                &record.registry_number,
                record.document_type,
                record.document_number.as_deref(),
                record.school_division.parse().map_err(|_| {
                    IdentityError::FailedPrecondition("the school's division is invalid".into())
                })?,
                record.birth_date,
            );
            let approval = self
                .store
                .approve(record.id, &promotion, Actor { caller, request_id })
                .await?;
            self.national.wake();
            if let Approval::AwaitingNationalCheck { claim } = approval {
                self.national
                    .try_deliver_within(NATIONAL_PATIENCE, claim.sequence)
                    .await;
                if let Some(DeliveryOutcome::Refused { owner_province, .. }) =
                    outbox::outcome_of(self.store.pool(), claim.sequence).await?
                {
                    // Where the other record is, and which it is, stays outside the caller's
                    // jurisdiction: only a province's and the ministry's operators, who settle
                    // it with the other province, learn which province holds it.
                    let holder = if matches!(caller.level, Level::Province | Level::Ministry) {
                        format!("province {owner_province}")
                    } else {
                        "another province".to_owned()
                    };
                    return Err(IdentityError::FailedPrecondition(format!(
                        "the national duplicate check refused resident ID number {}: {holder} \
                         holds a live record for it; the registration is pending again and \
                         flagged as a duplicate for the provinces' authorities to settle",
                        record.document_number.as_deref().unwrap_or_default()
                    )));
                }
            }
        }
        let record = self.store.student(record.id).await?;
        Ok(pb::ApproveRegistrationResponse {
            student: Some(convert::student(record)),
        })
    }

    pub(super) async fn reject(
        &self,
        caller: &Caller,
        request_id: &str,
        request: pb::RejectRegistrationRequest,
    ) -> Result<pb::RejectRegistrationResponse, IdentityError> {
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(IdentityError::invalid(
                "reason",
                "a rejection needs a reason of 1–500 characters",
            ));
        }
        let record = self
            .visible_student(caller, "registry_number", &request.registry_number)
            .await?;
        Self::require_decider(caller, &record)?;
        self.store
            .reject(record.id, reason, Actor { caller, request_id })
            .await?;
        self.national.wake();
        let record = self.store.student(record.id).await?;
        Ok(pb::RejectRegistrationResponse {
            student: Some(convert::student(record)),
        })
    }

    /// The student a progression names by registry number: found only when the name and birth
    /// date match the record (the record may lie outside the caller's jurisdiction; a mismatch
    /// says nothing about it).
    async fn continued_student(
        &self,
        number: &str,
        registration: &domain::Registration,
    ) -> Result<i64, IdentityError> {
        let missing = || {
            IdentityError::invalid(
                "continues_registry_number",
                "no finished record of this province has this number with this name and birth date",
            )
        };
        let parsed: xueji_codes::RegistryNumber = number.parse().map_err(|e| {
            IdentityError::invalid("continues_registry_number", format!("registry number {e}"))
        })?;
        let id = self
            .store
            .student_by_number(parsed.as_str())
            .await?
            .ok_or_else(missing)?;
        let record = self.store.student(id).await?;
        if record.name != registration.name || record.birth_date != registration.birth_date {
            return Err(missing());
        }
        Ok(id)
    }

    /// Opens the next stage's enrollment for a student whose record finished its stage.
    /// FAILED_PRECONDITION when the record has not finished it.
    async fn continue_student(
        &self,
        student_id: i64,
        registration: &domain::Registration,
        caller: &Caller,
        request_id: &str,
    ) -> Result<pb::RegisterStudentResponse, IdentityError> {
        let outcome = self
            .store
            .continue_student(student_id, registration, Actor { caller, request_id })
            .await?;
        let replayed = match outcome {
            ContinueOutcome::Opened => false,
            ContinueOutcome::Replayed => true,
            ContinueOutcome::KeyReused => {
                return Err(IdentityError::invalid(
                    "idempotency_key",
                    "was already used for a different registration; use a new key",
                ));
            }
            ContinueOutcome::NotFinished(status) => {
                return Err(IdentityError::FailedPrecondition(format!(
                    "the student's record is {}: only a record that finished its stage \
                     (graduated, completed, incomplete) continues at the next stage",
                    status.as_str()
                )));
            }
            ContinueOutcome::Refused(violations) => {
                return Err(IdentityError::InvalidArgument(violations));
            }
        };
        let record = self.store.student(student_id).await?;
        Ok(pb::RegisterStudentResponse {
            student: Some(convert::student(record)),
            replayed,
            continued: true,
        })
    }
}
