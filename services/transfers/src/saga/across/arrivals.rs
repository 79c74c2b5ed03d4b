//! What a province does with each message of a transfer between provinces when it arrives:
//! a hold asked of it, the answer to its own, a copy of the steps, a cancellation, the record.
//! Each handler checks the transfer's state or version first, so a message applied again
//! changes nothing.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;
use xueji_calendar::china_today;
use xueji_proto::transfers::v1::{self as pb, saga_message::Body};
use xueji_workflow::{Outcome, Task, TaskState};

use crate::saga::{Saga, stored_student};
use crate::{
    TransferError,
    domain::{
        SchoolFacts, StudentKey,
        remote::{self},
    },
    links::{Arrival, Held},
    store::{self, NewTransfer, Role, SendingSide, TransferRecord, TransferState, relay},
};

use super::*;

impl Saga {
    /// The sending side: holds the student another province asked for, and answers.
    pub(in crate::saga) async fn hold_for_other(
        &self,
        id: Uuid,
        from: &str,
        traceparent: &str,
        request: pb::HoldRequest,
    ) -> Result<(), TransferError> {
        let birth_date = NaiveDate::parse_from_str(&request.birth_date, "%Y-%m-%d")
            .map_err(|_| bad_message("hold_request.birth_date: not a date"))?;
        remote::check_hold_request(
            from,
            &request.receiving_school_code,
            &request.receiving_division,
            &request.receiving_authority,
            &[
                ("hold_request.name", &request.name),
                ("hold_request.reason", &request.reason),
                ("hold_request.started_by", &request.started_by),
            ],
            &request.evidence,
            request.target_grade,
        )
        .map_err(refused)?;
        let typed = if request.registry_number.is_empty() {
            request.id_number.clone()
        } else {
            request.registry_number.clone()
        };
        if StudentKey::parse(&typed).is_none() {
            return Err(bad_message(
                "hold_request: neither a registry number nor a resident ID number",
            ));
        }
        let key = format!("relay:{id}");
        let traceparent = traceparent.to_owned();
        let inserted = self
            .store
            .insert_sending_copy(
                &NewTransfer {
                    id,
                    idempotency_key: &key,
                    request_hash: &[],
                    receiving_school: &request.receiving_school_code,
                    receiving_division: &request.receiving_division,
                    receiving_authority: &request.receiving_authority,
                    typed_number: &typed,
                    typed_name: &request.name,
                    typed_birth_date: birth_date,
                    target_grade: request.target_grade,
                    reason: &request.reason,
                    evidence: &request.evidence,
                    started_by: &request.started_by,
                    traceparent: &traceparent,
                },
                from,
            )
            .await?;
        let record = self.get(id).await?;
        if record.role != Role::Sending {
            return Err(bad_message(format!(
                "transfer {id} is not one this province sends"
            )));
        }
        check_counterpart(&record, from)?;
        if record.state != TransferState::Starting {
            // Answered before (the answer was queued with the refusal).
            return Ok(());
        }
        let student = stored_student(&record)?;
        let answer = match self
            .ledger
            .hold(id, &student, &record.typed_name, record.typed_birth_date)
            .await
        {
            Ok(held) => {
                let code: xueji_codes::SchoolCode = held.school_code.parse().map_err(|_| {
                    TransferError::Internal(format!(
                        "identity answered school {:?}",
                        held.school_code
                    ))
                })?;
                let school = self.schools.school(&code).await?.ok_or_else(|| {
                    TransferError::Unavailable(format!(
                        "the school list does not hold the sending school {code} yet"
                    ))
                })?;
                let mut tx = self.store.begin().await?;
                relay::record_sending_side(
                    &mut tx,
                    id,
                    SendingSide {
                        school: school.code.as_str(),
                        division: school.division.as_str(),
                        authority: school.registry_authority.as_str(),
                        registry_number: &held.registry_number,
                    },
                )
                .await?;
                store::audit(
                    &mut tx,
                    SYSTEM,
                    "transfers.hold_for_province",
                    id,
                    None,
                    Some(serde_json::json!({
                        "receiving_province": from, "registry_number": held.registry_number,
                        "new": inserted,
                    })),
                )
                .await?;
                let answer = pb::HoldAnswer {
                    held: true,
                    registry_number: held.registry_number,
                    school_code: held.school_code,
                    grade: held.grade,
                    school_division: school.division.to_string(),
                    registry_authority: school.registry_authority.to_string(),
                    ..Default::default()
                };
                (tx, answer)
            }
            Err(TransferError::Refused {
                reason,
                national_code,
                message,
            }) => {
                let mut tx = self.store.begin().await?;
                let refusal = store::Refusal {
                    reason: &reason,
                    national_code: national_code.as_deref(),
                    message: &message,
                    other_province: Some(from),
                };
                store::refuse(&mut tx, SYSTEM, id, refusal, false).await?;
                let answer = pb::HoldAnswer {
                    held: false,
                    refusal: reason,
                    national_code: national_code.unwrap_or_default(),
                    message,
                    ..Default::default()
                };
                (tx, answer)
            }
            Err(other) => return Err(other),
        };
        let (mut tx, answer) = answer;
        self.send(
            &mut tx,
            (id, &record.traceparent),
            from,
            "hold_answer",
            0,
            Body::HoldAnswer(answer),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The receiving side: the student's province answered the hold.
    pub(in crate::saga) async fn hold_answered(
        &self,
        id: Uuid,
        from: &str,
        answer: pb::HoldAnswer,
    ) -> Result<(), TransferError> {
        let record = self.get(id).await?;
        if record.role != Role::Receiving {
            return Err(bad_message(format!(
                "transfer {id} is not one this province receives"
            )));
        }
        if record.state != TransferState::Starting || !record.awaiting_hold {
            return Ok(());
        }
        // An answer applied again (its approvals could not open the first time) comes from
        // the province that answered first; no other province speaks for this student.
        if let Some(answered) = &record.other_province
            && answered != from
        {
            return Err(bad_message(format!(
                "transfer {id}'s hold was answered by province {answered}, not {from}"
            )));
        }
        // The national relay answers a hold it could not route itself (no province holds the
        // student): such an answer comes from no province and can only refuse.
        if from.is_empty() && answer.held {
            return Err(bad_message("a hold answer from no province cannot hold"));
        }
        remote::text("hold_answer.refusal", &answer.refusal).map_err(refused)?;
        remote::text("hold_answer.message", &answer.message).map_err(refused)?;
        remote::text("hold_answer.national_code", &answer.national_code).map_err(refused)?;
        if !answer.held {
            let national_code = (!answer.national_code.is_empty()).then_some(answer.national_code);
            let mut tx = self.store.begin().await?;
            let refusal = store::Refusal {
                reason: &answer.refusal,
                national_code: national_code.as_deref(),
                message: &answer.message,
                other_province: Some(from),
            };
            store::refuse(&mut tx, SYSTEM, id, refusal, false).await?;
            tx.commit().await?;
            return Ok(());
        }
        remote::registry_number("hold_answer.registry_number", &answer.registry_number)
            .map_err(refused)?;
        if !(1..=12).contains(&answer.grade) {
            return Err(bad_message("hold_answer.grade: must be 1 to 12"));
        }
        // The sending school as its own province describes it (this province's replica answers
        // for this province's schools only).
        let sending = SchoolFacts {
            code: remote::school_of("hold_answer.school_code", &answer.school_code, from)
                .map_err(refused)?,
            division: remote::division_of(
                "hold_answer.school_division",
                &answer.school_division,
                from,
            )
            .map_err(refused)?,
            registry_authority: remote::division_of(
                "hold_answer.registry_authority",
                &answer.registry_authority,
                from,
            )
            .map_err(refused)?,
            township: None,
            // The sending side's grades are its own province's business.
            stages: Vec::new(),
        };
        let mut tx = self.store.begin().await?;
        relay::set_other_province(&mut tx, id, from).await?;
        tx.commit().await?;
        let held = Held {
            registry_number: answer.registry_number,
            school_code: answer.school_code,
            grade: answer.grade,
        };
        match self
            .open_approvals(id, SYSTEM, held, None, Some((from, sending)))
            .await
        {
            Ok(_) | Err(TransferError::Refused { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Either side: the other side changed the task. Only what `from` owns is taken (see
    /// `xueji_workflow::Task::merge_remote`): its steps' decisions, deadlines and
    /// escalations, and a cancellation; a task that ended takes nothing.
    pub(in crate::saga) async fn update_received(
        &self,
        id: Uuid,
        from: &str,
        update: pb::TaskUpdate,
    ) -> Result<(), TransferError> {
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .ok_or_else(|| bad_message(format!("an update of unknown transfer {id}")))?;
        check_counterpart(&record, from)?;
        let version = i64::try_from(update.version)
            .map_err(|_| bad_message("task_update.version: out of range"))?;
        if version <= record.version {
            return Ok(());
        }
        for (field, value) in [
            ("task_update.refusal", &update.refusal),
            ("task_update.message", &update.message),
        ] {
            remote::text(field, value).map_err(refused)?;
        }
        if update.state == TransferState::Refused.as_str() {
            // The receiving side refused the start after the hold (a rule of its province):
            // only the receiving side refuses, and only a start.
            if record.role != Role::Sending || record.state != TransferState::Starting {
                return Err(bad_message(
                    "only the receiving province refuses, and only a transfer starting",
                ));
            }
            let refusal = store::Refusal {
                reason: &update.refusal,
                national_code: None,
                message: &update.message,
                other_province: Some(from),
            };
            store::refuse(&mut tx, SYSTEM, id, refusal, true).await?;
        } else {
            if update.task_json.len() > 64 * 1024 {
                return Err(bad_message("task_update.task_json: too long"));
            }
            let remote_task: Task = serde_json::from_str(&update.task_json)
                .map_err(|e| bad_message(format!("task_update.task_json: {e}")))?;
            if record.state.is_terminal() {
                return Err(bad_message(format!(
                    "transfer {id} is {}: it takes no update",
                    record.state.as_str()
                )));
            }
            let sending_here = match (
                record.role,
                &record.sending_school,
                &record.sending_authority,
            ) {
                (Role::Sending, Some(school), Some(authority)) => {
                    Some((school.as_str(), authority.as_str()))
                }
                (Role::Sending, _, _) => {
                    return Err(bad_message(format!(
                        "transfer {id} holds no student here yet"
                    )));
                }
                _ => None,
            };
            let school_authority = record.sending_authority.clone().unwrap_or_default();
            let mut task = record.task.clone();
            let first_copy = task.steps.is_empty();
            let now = self.clock.now();
            let merged = self.with_rules(&school_authority, |rules| {
                remote::with_counterpart(&self.province, from, sending_here, |side| {
                    task.merge_remote(&remote_task, side, now, rules)
                })
            });
            let changed = merged.map_err(|e| bad_message(format!("task_update: {e}")))?;
            if record.role == Role::Sending
                && task.state == TaskState::Approved
                && !task.steps_of_decided(&self.province)
            {
                return Err(bad_message(
                    "task_update: approved without this province's own decisions",
                ));
            }
            if !changed && !first_copy {
                return Ok(());
            }
            self.check_remote_decisions(
                &mut tx,
                id,
                from,
                crate::saga::evidence::Copies {
                    before: &record.task,
                    merged: &task,
                    remote: &remote_task,
                    signed: &update.signed_decisions,
                },
            )
            .await?;
            if first_copy {
                store::insert_steps(&mut tx, id, &task).await?;
            }
            store::write_task(&mut tx, id, record.role, &task, Some(version)).await?;
        }
        let who = remote_actor_name(from);
        store::audit(
            &mut tx,
            remote_actor(&who),
            "transfers.update_received",
            id,
            Some(serde_json::json!({ "version": record.version, "state": record.state.as_str() })),
            Some(serde_json::json!({ "version": version, "from_province": from })),
        )
        .await?;
        tx.commit().await?;
        self.effects_due.notify_one();
        Ok(())
    }

    /// The sending side: the receiving side cancels while the turn is here. Only the
    /// receiving province asks; the entry names that province, and the user it gives as data.
    pub(in crate::saga) async fn cancel_requested(
        &self,
        id: Uuid,
        from: &str,
        request: pb::CancelRequest,
    ) -> Result<(), TransferError> {
        let at = DateTime::parse_from_rfc3339(&request.at)
            .map_err(|_| bad_message("cancel_request.at: not a time"))?
            .with_timezone(&Utc);
        remote::text("cancel_request.by", &request.by).map_err(refused)?;
        remote::text("cancel_request.reason", &request.reason).map_err(refused)?;
        let mut tx = self.store.begin().await?;
        let record = store::load(&mut tx, id, true)
            .await?
            .ok_or_else(|| bad_message(format!("a cancellation of unknown transfer {id}")))?;
        check_counterpart(&record, from)?;
        if record.role != Role::Sending {
            return Err(bad_message(
                "only the receiving province asks for a cancellation",
            ));
        }
        let who = remote_actor_name(from);
        let mut task = record.task.clone();
        let outcome = if record.state == TransferState::InProgress {
            task.cancel(&request.by, &request.reason, at)
        } else {
            Ok(Outcome::AlreadyApplied)
        };
        match outcome {
            Ok(Outcome::AlreadyApplied) | Err(_) => {
                // Too late (the last approval came first) or done: the receiving side learns
                // the task as it stands from the updates already sent.
                store::audit(
                    &mut tx,
                    remote_actor(&who),
                    "transfers.cancel_too_late",
                    id,
                    None,
                    Some(serde_json::json!({ "by": request.by, "state": record.state.as_str() })),
                )
                .await?;
            }
            Ok(_) => {
                let version = store::save_task(&mut tx, id, record.role, &task).await?;
                self.replicate_task(&mut tx, &record, &task, version)
                    .await?;
                store::audit(
                    &mut tx,
                    remote_actor(&who),
                    "transfers.cancel",
                    id,
                    Some(serde_json::json!({ "state": record.state.as_str() })),
                    Some(serde_json::json!({
                        "state": "cancelled", "reason": request.reason, "by": request.by,
                    })),
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.effects_due.notify_one();
        self.relay_due.notify_one();
        Ok(())
    }

    /// The receiving side: the record left the sending province; it opens here, only for an
    /// approved transfer (this province's own steps decided here), from the province that
    /// held the student, and only for the student held: the same registry number, name,
    /// birth date and ID number. (The national relay forwarded it only when the index showed
    /// the sender owning the number.)
    pub(in crate::saga) async fn record_arrived(
        &self,
        id: Uuid,
        from: &str,
        moved: pb::RecordMoved,
    ) -> Result<(), TransferError> {
        let record = self.get(id).await?;
        check_counterpart(&record, from)?;
        if record.role != Role::Receiving {
            return Err(bad_message("a record moves only to the receiving province"));
        }
        match record.state {
            TransferState::Completed => return Ok(()),
            TransferState::Approved => {}
            // The sender's approval travels before its record (one outbox, one relay order,
            // one inbox order per transfer): a record ahead of this side's approval was sent
            // without one.
            other => {
                return Err(bad_message(format!(
                    "transfer {id} is {}: no record opens for it",
                    other.as_str()
                )));
            }
        }
        if !record.task.steps_of_decided(&self.province) {
            return Err(bad_message(format!(
                "transfer {id} lacks this province's own approvals"
            )));
        }
        let student = moved
            .student
            .ok_or_else(|| bad_message("record_moved without the student"))?;
        check_moved_is_held(&record, &student)?;
        let arrival = Arrival {
            receiving_school: record.receiving_school.clone(),
            grade: record.target_grade,
            entry_date: china_today(self.clock.now()),
            deciders: record.deciders(),
        };
        self.ledger.transfer_in(id, &student, &arrival).await?;
        let mut tx = self.store.begin().await?;
        relay::complete(&mut tx, id).await?;
        store::audit(
            &mut tx,
            SYSTEM,
            "transfers.complete",
            id,
            None,
            Some(serde_json::json!({
                "registry_number": student.registry_number, "from_province": from,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Is the moved record the student the sending province held for `record`? Same number as
/// the hold answered, and the name, birth date and ID number the family gave at the start.
fn check_moved_is_held(
    record: &TransferRecord,
    student: &xueji_proto::identity::v1::MovedStudent,
) -> Result<(), TransferError> {
    let held = record.registry_number.as_deref().unwrap_or_default();
    if held.is_empty() || student.registry_number != held {
        return Err(bad_message(
            "record_moved: the record is not the student the hold answered",
        ));
    }
    let same_name = xueji_validation::canonical_name(&student.name)
        == xueji_validation::canonical_name(&record.typed_name);
    if !same_name || student.birth_date != date_text(record.typed_birth_date) {
        return Err(bad_message(
            "record_moved: the record's name or birth date is not the held student's",
        ));
    }
    if record.typed_number.len() == 18
        && !student
            .id_number_claim
            .eq_ignore_ascii_case(&record.typed_number)
    {
        return Err(bad_message(
            "record_moved: the record's ID number is not the held student's",
        ));
    }
    Ok(())
}
