//! All SQL of the identity service. Every query is checked against the schema at compile time
//! (offline data in the workspace's `.sqlx/`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool, types::Json};
use xueji_audit::Entry;
use xueji_auth::Caller;
use xueji_codes::{RegistryNumber, SchoolCode};

pub mod moves;
pub mod outbox;
pub mod transfers;

use crate::national::{ApprovalContext, OutboxBody};
use crate::{
    IdentityError,
    domain::{Decision, EnrollmentStatus, Guardian, Promotion, Registration, School},
};

pub const SCHEMA: &str = "identity";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or upgrades the identity schema and the audit schema it writes to.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    xueji_audit::migrate(pool).await?;
    xueji_db::migrate_schema(pool, SCHEMA, &MIGRATOR).await
}

/// A student with the current enrollment, as reads return it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StudentRecord {
    pub id: i64,
    pub registry_number: String,
    pub aliases: Vec<String>,
    pub name: String,
    pub gender: String,
    pub birth_date: NaiveDate,
    pub ethnicity: String,
    pub document_type: String,
    pub document_number: Option<String>,
    pub guardian: serde_json::Value,
    pub registered_at: DateTime<Utc>,
    pub school_code: String,
    pub school_division: String,
    pub registry_authority: String,
    pub grade: i16,
    pub entry_date: NaiveDate,
    pub entry_route: String,
    pub status: String,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub duplicate_name: bool,
    /// Problems the national index found across provinces (`duplicate_id_number`,
    /// `duplicate_name`).
    pub national_problems: Vec<String>,
}

/// Another live record of a duplicate group, and where it sits (for scope checks).
#[derive(Debug, Clone)]
pub struct PartnerRecord {
    pub registry_number: String,
    pub school_code: String,
    pub school_division: String,
}

/// A problem the national index found, with the student it concerns.
#[derive(Debug, Clone)]
pub struct NationalFlag {
    pub id: i64,
    pub kind: String,
    pub registry_number: String,
    pub name: String,
    pub school_code: String,
    pub other_province: String,
    pub other_registry_number: String,
    pub detail: String,
    pub flagged_at: DateTime<Utc>,
}

/// What approving did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Already approved (or awaiting its national check): nothing written.
    Unchanged,
    /// The new number is issued and the record active.
    Promoted,
    /// Waiting for the national duplicate check, queued as this outbox message.
    AwaitingNationalCheck { claim: outbox::Queued },
}

/// What registering did.
#[derive(Debug)]
pub enum RegisterOutcome {
    Created {
        student_id: i64,
        duplicate_name: bool,
    },
    /// The idempotency key was seen before with the same content.
    Replayed { student_id: i64 },
    /// The key was seen before with different content.
    KeyReused,
    /// Another live record holds this resident ID number.
    DuplicateIdNumber { registry_number: String },
    /// The drawn temporary number is taken: draw again.
    NumberTaken,
}

/// A registration locked for a decision.
#[derive(Debug)]
pub struct LockedRegistration {
    pub registry_number: String,
    /// False when the decision was already taken: a retry changes nothing.
    pub needs_decision: bool,
}

/// Who changes something and under which request, for the audit entry.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub caller: &'a Caller,
    pub request_id: &'a str,
}

/// One registration of a batch: what [`Store::register`] takes, for many at once.
#[derive(Debug, Clone, Copy)]
pub struct BatchRegistration<'a> {
    pub registration: &'a Registration,
    pub number: &'a RegistryNumber,
    pub actor: Actor<'a>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Adds or updates a school in this node's directory.
    pub async fn upsert_school(&self, school: &School) -> Result<(), IdentityError> {
        sqlx::query!(
            "INSERT INTO identity.schools (code, name, division, registry_authority, open_from, open_until)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, division = excluded.division,
                 registry_authority = excluded.registry_authority,
                 open_from = excluded.open_from, open_until = excluded.open_until",
            school.code.as_str(),
            school.name,
            school.division.as_str(),
            school.registry_authority.as_str(),
            school.open_from,
            school.open_until,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// (active enrollments, pending registrations) currently at a school.
    pub async fn school_workload(&self, code: &SchoolCode) -> Result<(u64, u64), IdentityError> {
        let row = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE status = 'active') AS "active!",
                      count(*) FILTER (WHERE status = 'pending') AS "pending!"
               FROM identity.enrollments WHERE school_code = $1 AND is_current"#,
            code.as_str()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.active as u64, row.pending as u64))
    }

    pub async fn school(&self, code: &SchoolCode) -> Result<Option<School>, IdentityError> {
        let row = sqlx::query!(
            "SELECT code, name, division, registry_authority, open_from, open_until
             FROM identity.schools WHERE code = $1",
            code.as_str()
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|row| {
            Some(School {
                code: row.code.parse().ok()?,
                name: row.name,
                division: row.division.parse().ok()?,
                registry_authority: row.registry_authority.parse().ok()?,
                open_from: row.open_from,
                open_until: row.open_until,
            })
        }))
    }

    /// Registers in one statement (one round trip, its own transaction): the student, the
    /// temporary number, the enrollment, the duplicate-group counter and the audit entry commit
    /// together or not at all.
    pub async fn register(
        &self,
        registration: &Registration,
        number: &RegistryNumber,
        actor: Actor<'_>,
    ) -> Result<RegisterOutcome, IdentityError> {
        // Typed JSON, encoded as jsonb: passed `as _`, since the macro expects a
        // `serde_json::Value` for jsonb parameters.
        let guardian = Json(&registration.guardian);
        let after = audit_after(registration, number);
        let id_claim = registration.resident_id.as_ref().map(|id| id.as_str());
        let result = sqlx::query!(
            r#"WITH student AS (
                   INSERT INTO identity.students
                       (registry_number, name, gender, birth_date, ethnicity, document_type,
                        document_number, id_number_claim, name_key, guardian, idempotency_key,
                        request_hash, registered_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                   ON CONFLICT (idempotency_key) DO NOTHING
                   RETURNING id
               ), number AS (
                   INSERT INTO identity.registry_numbers (number, student_id)
                   SELECT $1, id FROM student
                   RETURNING student_id
               ), enrollment AS (
                   INSERT INTO identity.enrollments
                       (student_id, school_code, school_division, grade, entry_date, entry_route, status)
                   SELECT id, $14, $15, $16, $17, $18, 'pending' FROM student
                   RETURNING id
               ), duplicate AS (
                   INSERT INTO identity.duplicate_groups (key, registrations)
                   SELECT $9, 1 FROM student
                   ON CONFLICT (key) DO UPDATE
                       SET registrations = identity.duplicate_groups.registrations + 1
                   RETURNING registrations
               ), audited AS (
                   SELECT audit.record($13, $19, 'identity.register_student', 'student:' || $1,
                                       NULL, $20, $21) AS entry
                   FROM student
               ), outbox AS (
                   INSERT INTO identity.outbox (payload)
                   SELECT json_build_object(
                              'kind', 'index_student', 'registry_number', $1::text,
                              'aliases', '[]'::json, 'id_number', $8::text,
                              'duplicate_digest', encode(sha256(convert_to($9, 'UTF8')), 'hex'),
                              'status', 'pending')
                   FROM student
               )
               SELECT student.id AS "id!",
                      (SELECT registrations FROM duplicate) AS "registrations!",
                      (SELECT count(*) FROM number) + (SELECT count(*) FROM enrollment)
                          + (SELECT count(entry) FROM audited) AS "writes!"
               FROM student"#,
            number.as_str(),
            registration.name,
            crate::domain::gender_str(registration.gender),
            registration.birth_date,
            registration.ethnicity,
            registration.document_type.as_str(),
            registration.document_number,
            id_claim,
            registration.name_key(),
            guardian as _,
            registration.idempotency_key,
            registration.fingerprint(),
            actor.caller.describe(),
            registration.school.code.as_str(),
            registration.school.division.as_str(),
            registration.grade as i16,
            registration.entry_date,
            registration.entry_route.as_str(),
            actor.caller.jurisdiction.as_string(),
            after as _,
            actor.request_id,
        )
        .fetch_optional(&self.pool)
        .await;

        match result {
            Ok(Some(row)) => {
                debug_assert_eq!(row.writes, 3);
                Ok(RegisterOutcome::Created {
                    student_id: row.id,
                    duplicate_name: row.registrations > 1,
                })
            }
            Ok(None) => self.replay(registration).await,
            Err(error) => match xueji_db::unique_violation(&error) {
                Some("students_id_number_claim_key") => {
                    let holder = sqlx::query_scalar!(
                        "SELECT registry_number FROM identity.students WHERE id_number_claim = $1",
                        id_claim
                    )
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(RegisterOutcome::DuplicateIdNumber {
                        registry_number: holder.unwrap_or_default(),
                    })
                }
                Some("registry_numbers_pkey") => Ok(RegisterOutcome::NumberTaken),
                _ => Err(error.into()),
            },
        }
    }

    /// Registers many in one statement, for the batcher: the same writes as
    /// [`register`](Self::register), amortising one round trip and one commit over the batch.
    /// Answers by idempotency key `Created`, or `NumberTaken` for a number issued before (draw
    /// again). A registration missing from the answer met something else already there (its
    /// key, a live record of its ID number) and must go through `register` to get its own
    /// answer; the rest of the batch is written regardless, so one clash does not send a whole
    /// batch down the slow path. A number drawn at the same moment by a concurrent batch fails
    /// the statement; it is then written again, and the number, committed by then, is answered
    /// `NumberTaken` with the rest written. Only repeated failures end in an error (the caller
    /// then goes one by one).
    /// Idempotency keys and numbers must be distinct within the batch. Runs on the caller's
    /// connection: a batch writer keeps one, instead of taking one from the pool (and checking
    /// it with a round trip) for every batch.
    pub async fn register_batch(
        &self,
        conn: &mut PgConnection,
        batch: &[BatchRegistration<'_>],
    ) -> Result<HashMap<String, RegisterOutcome>, IdentityError> {
        // PostgreSQL raises the unique violation only once the other writer has committed, so
        // the statement's own probe finds the number taken on the next attempt.
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            match Self::write_batch(&mut *conn, batch).await {
                Err(error)
                    if attempt < ATTEMPTS
                        && xueji_db::unique_violation(&error) == Some("registry_numbers_pkey") =>
                {
                    attempt += 1;
                }
                written => return Ok(written?),
            }
        }
    }

    async fn write_batch(
        conn: &mut PgConnection,
        batch: &[BatchRegistration<'_>],
    ) -> Result<HashMap<String, RegisterOutcome>, sqlx::Error> {
        let mut columns = BatchColumns::default();
        for row in batch {
            columns.push(row);
        }
        let rows = sqlx::query!(
            r#"WITH input AS (
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[],
                                        $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[],
                                        $11::text[], $12::bytea[], $13::text[], $14::text[],
                                        $15::text[], $16::int2[], $17::date[], $18::text[],
                                        $19::text[], $20::text[], $21::text[])
                       AS i(registry_number, name, gender, birth_date, ethnicity, document_type,
                            document_number, id_number_claim, name_key, guardian, idempotency_key,
                            request_hash, registered_by, school_code, school_division, grade,
                            entry_date, entry_route, jurisdiction, after, request_id)
               ), checked AS MATERIALIZED (
                   -- A lateral probe per row: the planner would otherwise turn an EXISTS into
                   -- a hashed scan of every number ever issued.
                   SELECT input.idempotency_key, taken.number IS NOT NULL AS number_taken
                   FROM input
                   LEFT JOIN LATERAL (
                       SELECT r.number FROM identity.registry_numbers r
                       WHERE r.number = input.registry_number LIMIT 1
                   ) AS taken ON true
               ), student AS (
                   INSERT INTO identity.students
                       (registry_number, name, gender, birth_date, ethnicity, document_type,
                        document_number, id_number_claim, name_key, guardian, idempotency_key,
                        request_hash, registered_by)
                   SELECT registry_number, name, gender, birth_date, ethnicity, document_type,
                          document_number, id_number_claim, name_key, guardian, idempotency_key,
                          request_hash, registered_by
                   FROM input JOIN checked USING (idempotency_key)
                   WHERE NOT checked.number_taken
                   ON CONFLICT DO NOTHING
                   RETURNING id, idempotency_key
               ), created AS (
                   -- The inserts below run to completion though nothing reads them, as every
                   -- data-modifying CTE does, so they return nothing.
                   SELECT student.id, input.* FROM student JOIN input USING (idempotency_key)
               ), number AS (
                   INSERT INTO identity.registry_numbers (number, student_id)
                   SELECT registry_number, id FROM created
               ), enrollment AS (
                   INSERT INTO identity.enrollments
                       (student_id, school_code, school_division, grade, entry_date, entry_route, status)
                   SELECT id, school_code, school_division, grade, entry_date, entry_route, 'pending'
                   FROM created
               ), duplicate AS (
                   INSERT INTO identity.duplicate_groups (key, registrations)
                   SELECT name_key, count(*) FROM created GROUP BY name_key
                   ON CONFLICT (key) DO UPDATE
                       SET registrations = identity.duplicate_groups.registrations + excluded.registrations
                   RETURNING key, registrations
               ), audited AS (
                   INSERT INTO audit.entries (actor, jurisdiction, action, object, after, request_id)
                   SELECT registered_by, jurisdiction, 'identity.register_student',
                          'student:' || registry_number, after::json, request_id
                   FROM created
               ), outbox AS (
                   INSERT INTO identity.outbox (payload)
                   SELECT json_build_object(
                              'kind', 'index_student', 'registry_number', registry_number,
                              'aliases', '[]'::json, 'id_number', id_number_claim,
                              'duplicate_digest',
                              encode(sha256(convert_to(name_key, 'UTF8')), 'hex'),
                              'status', 'pending')
                   FROM created
               )
               SELECT checked.idempotency_key AS "idempotency_key!",
                      checked.number_taken AS "number_taken!",
                      created.id AS "id?", duplicate.registrations AS "registrations?"
               FROM checked
               LEFT JOIN created USING (idempotency_key)
               LEFT JOIN duplicate ON duplicate.key = created.name_key"#,
            &columns.registry_number,
            &columns.name,
            &columns.gender,
            &columns.birth_date,
            &columns.ethnicity,
            &columns.document_type,
            &columns.document_number as &[Option<String>],
            &columns.id_number_claim as &[Option<String>],
            &columns.name_key,
            &columns.guardian as _,
            &columns.idempotency_key,
            &columns.request_hash,
            &columns.registered_by,
            &columns.school_code,
            &columns.school_division,
            &columns.grade,
            &columns.entry_date,
            &columns.entry_route,
            &columns.jurisdiction,
            &columns.after,
            &columns.request_id,
        )
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let outcome = match (row.id, row.registrations) {
                    (Some(student_id), Some(registrations)) => RegisterOutcome::Created {
                        student_id,
                        duplicate_name: registrations > 1,
                    },
                    _ if row.number_taken => RegisterOutcome::NumberTaken,
                    _ => return None,
                };
                Some((row.idempotency_key, outcome))
            })
            .collect())
    }

    async fn replay(&self, registration: &Registration) -> Result<RegisterOutcome, IdentityError> {
        let earlier = sqlx::query!(
            "SELECT id, request_hash FROM identity.students WHERE idempotency_key = $1",
            registration.idempotency_key
        )
        .fetch_one(&self.pool)
        .await?;
        if earlier.request_hash == registration.fingerprint() {
            Ok(RegisterOutcome::Replayed {
                student_id: earlier.id,
            })
        } else {
            Ok(RegisterOutcome::KeyReused)
        }
    }

    /// The student holding `number` now or as an alias.
    pub async fn student_by_number(&self, number: &str) -> Result<Option<i64>, IdentityError> {
        Ok(sqlx::query_scalar!(
            "SELECT student_id FROM identity.registry_numbers WHERE number = $1",
            number
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The student with this resident ID number, the live record first.
    pub async fn student_by_id_number(
        &self,
        id_number: &str,
    ) -> Result<Option<i64>, IdentityError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT id AS "id!" FROM (
                 SELECT id, 0 AS rank FROM identity.students WHERE id_number_claim = $1
                 UNION ALL
                 SELECT id, 1 FROM identity.students
                 WHERE id_number_claim IS NULL AND document_number = $1
                   AND document_type = 'resident_id_card'
             ) AS found ORDER BY rank, id DESC LIMIT 1"#,
            id_number
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Students by id, in registry-number order.
    pub async fn students(&self, ids: &[i64]) -> Result<Vec<StudentRecord>, IdentityError> {
        Ok(sqlx::query_as!(
            StudentRecord,
            r#"SELECT id AS "id!", registry_number AS "registry_number!", aliases AS "aliases!",
                      name AS "name!", gender AS "gender!", birth_date AS "birth_date!",
                      ethnicity AS "ethnicity!", document_type AS "document_type!",
                      document_number, guardian AS "guardian!", registered_at AS "registered_at!",
                      school_code AS "school_code!", school_division AS "school_division!",
                      registry_authority AS "registry_authority!", grade AS "grade!",
                      entry_date AS "entry_date!", entry_route AS "entry_route!",
                      status AS "status!", decided_at, decided_by, decision_reason,
                      duplicate_name AS "duplicate_name!",
                      national_problems AS "national_problems!"
               FROM identity.student_view WHERE id = ANY($1) ORDER BY registry_number"#,
            ids
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn student(&self, id: i64) -> Result<StudentRecord, IdentityError> {
        self.students(&[id])
            .await?
            .pop()
            .ok_or_else(|| IdentityError::NotFound("student".into()))
    }

    /// One page of a school's students after `after` (a registry number), in number order.
    pub async fn students_of_school(
        &self,
        school: &SchoolCode,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StudentRecord>, IdentityError> {
        let ids = sqlx::query_scalar!(
            "SELECT s.id FROM identity.enrollments e
             JOIN identity.students s ON s.id = e.student_id
             WHERE e.school_code = $1 AND e.is_current AND s.registry_number > $2
             ORDER BY s.registry_number LIMIT $3",
            school.as_str(),
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        self.students(&ids).await
    }

    /// One page of live students in duplicate groups inside the given counties or school,
    /// after `after` (a registry number).
    pub async fn duplicate_name_problems(
        &self,
        counties: &[String],
        school: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StudentRecord>, IdentityError> {
        let ids = sqlx::query_scalar!(
            "SELECT s.id FROM identity.duplicate_groups g
             JOIN identity.students s ON s.name_key = g.key
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE g.registrations > 1 AND e.status <> 'rejected'
               AND (e.school_division = ANY($1) OR e.school_code = $2)
               AND s.registry_number > $3
               AND (SELECT count(*) FROM identity.students s2
                    JOIN identity.enrollments e2 ON e2.student_id = s2.id AND e2.is_current
                    WHERE s2.name_key = g.key AND e2.status <> 'rejected') > 1
             ORDER BY s.registry_number LIMIT $4",
            counties,
            school,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        self.students(&ids).await
    }

    /// One page of problems the national index found, for students inside the given counties
    /// or school, after flag `after`.
    pub async fn national_flags(
        &self,
        counties: &[String],
        school: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<NationalFlag>, IdentityError> {
        Ok(sqlx::query_as!(
            NationalFlag,
            "SELECT f.id, f.kind, s.registry_number, s.name, e.school_code, f.other_province,
                    f.other_registry_number, f.detail, f.flagged_at
             FROM identity.national_flags f
             JOIN identity.students s ON s.id = f.student_id
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE (e.school_division = ANY($1) OR e.school_code = $2) AND f.id > $3
             ORDER BY f.id LIMIT $4",
            counties,
            school,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The other live members of a student's duplicate group.
    pub async fn duplicate_partners(
        &self,
        student: &StudentRecord,
    ) -> Result<Vec<PartnerRecord>, IdentityError> {
        Ok(sqlx::query_as!(
            PartnerRecord,
            "SELECT s.registry_number, e.school_code, e.school_division
             FROM identity.students s
             JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
             WHERE s.name_key = (SELECT name_key FROM identity.students WHERE id = $1)
               AND s.id <> $1 AND e.status <> 'rejected'
             ORDER BY s.registry_number",
            student.id
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Approves a pending registration. A `J` is issued at once (the old number kept as an
    /// alias) and reported to the national index. A `G` needs the national duplicate check
    /// first: the record waits for it, and the claim goes into the outbox in the same
    /// transaction. Approving a record already approved changes nothing.
    pub async fn approve(
        &self,
        student_id: i64,
        promotion: &Promotion,
        actor: Actor<'_>,
    ) -> Result<Approval, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let locked = lock_registration(&mut tx, student_id, Decision::Approve).await?;
        if !locked.needs_decision {
            return Ok(Approval::Unchanged);
        }
        let approval = ApprovalContext {
            decided_by: actor.caller.describe(),
            jurisdiction: actor.caller.jurisdiction.as_string(),
            request_id: actor.request_id.to_owned(),
        };
        let number = match promotion {
            Promotion::ToG(resident_id) => {
                sqlx::query!(
                    "UPDATE identity.enrollments
                     SET status = 'awaiting_national_check', decided_at = now(), decided_by = $2
                     WHERE student_id = $1 AND is_current",
                    student_id,
                    approval.decided_by
                )
                .execute(&mut *tx)
                .await?;
                let claim = outbox::enqueue(
                    &mut tx,
                    &OutboxBody::ClaimIdNumber {
                        registry_number: locked.registry_number.clone(),
                        id_number: resident_id.to_string(),
                        approval: approval.clone(),
                    },
                )
                .await?;
                audit_decision(
                    &mut tx,
                    &approval,
                    "identity.approve_registration",
                    &locked.registry_number,
                    serde_json::json!({ "status": "pending" }),
                    serde_json::json!({
                        "status": "awaiting_national_check", "national_claim": claim.message_id
                    }),
                )
                .await?;
                tx.commit().await?;
                return Ok(Approval::AwaitingNationalCheck { claim });
            }
            Promotion::ToJ {
                division,
                birth_date,
            } => {
                let sequence = sqlx::query_scalar!(
                    "INSERT INTO identity.j_sequences (division, birth_date, last_value)
                     VALUES ($1, $2, 1)
                     ON CONFLICT (division, birth_date) DO UPDATE
                         SET last_value = identity.j_sequences.last_value + 1
                     RETURNING last_value",
                    division.as_str(),
                    birth_date
                )
                .fetch_one(&mut *tx)
                .await?;
                u16::try_from(sequence)
                    .ok()
                    .and_then(|sequence| RegistryNumber::j(*division, *birth_date, sequence))
                    .ok_or_else(|| {
                        IdentityError::Exhausted(format!(
                            "all 999 J numbers of division {division} and birth date {birth_date} are issued"
                        ))
                    })?
            }
        };
        promote(
            &mut tx,
            student_id,
            &locked.registry_number,
            number.as_str(),
            &approval,
            "identity.approve_registration",
        )
        .await?;
        outbox::enqueue_index(&mut tx, student_id, "active").await?;
        tx.commit().await?;
        Ok(Approval::Promoted)
    }

    /// Rejects a pending registration and releases its ID number. Rejecting a rejected record
    /// changes nothing.
    pub async fn reject(
        &self,
        student_id: i64,
        reason: &str,
        actor: Actor<'_>,
    ) -> Result<(), IdentityError> {
        let mut tx = self.pool.begin().await?;
        let locked = lock_registration(&mut tx, student_id, Decision::Reject).await?;
        if !locked.needs_decision {
            return Ok(());
        }
        let decided_by = actor.caller.describe();
        sqlx::query!(
            "UPDATE identity.enrollments
             SET status = 'rejected', decided_at = now(), decided_by = $2, decision_reason = $3
             WHERE student_id = $1 AND is_current",
            student_id,
            decided_by,
            reason
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE identity.students SET id_number_claim = NULL WHERE id = $1",
            student_id
        )
        .execute(&mut *tx)
        .await?;
        outbox::enqueue(
            &mut tx,
            &OutboxBody::ReleaseStudent {
                registry_number: locked.registry_number.clone(),
            },
        )
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &decided_by,
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.reject_registration",
                object: &format!("student:{}", locked.registry_number),
                before: Some(serde_json::json!({ "status": "pending" })),
                after: Some(serde_json::json!({ "status": "rejected", "reason": reason })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Row counts of the service's tables, for tests and operators.
    pub async fn counts(&self) -> Result<(i64, i64, i64), IdentityError> {
        let row = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM identity.students) AS "students!",
                      (SELECT count(*) FROM identity.enrollments) AS "enrollments!",
                      (SELECT count(*) FROM audit.entries) AS "audit!""#
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.students, row.enrollments, row.audit))
    }
}

/// Locks a registration for `decision` and says whether the decision still has work to do.
/// Issues `number` to a student (keeping `old_number` as an alias), activates the enrollment
/// and audits, on the caller's transaction.
async fn promote(
    tx: &mut sqlx::PgConnection,
    student_id: i64,
    old_number: &str,
    number: &str,
    approval: &ApprovalContext,
    action: &str,
) -> Result<(), IdentityError> {
    let inserted = sqlx::query!(
        "INSERT INTO identity.registry_numbers (number, student_id) VALUES ($1, $2)",
        number,
        student_id
    )
    .execute(&mut *tx)
    .await;
    if let Err(error) = inserted {
        return Err(match xueji_db::unique_violation(&error) {
            Some(_) => IdentityError::AlreadyExists {
                field: "registry_number",
                message: format!("registry number {number} was already issued to another student"),
            },
            None => error.into(),
        });
    }
    sqlx::query!(
        "UPDATE identity.students SET registry_number = $2 WHERE id = $1",
        student_id,
        number
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE identity.enrollments
         SET status = 'active', decided_at = now(), decided_by = $2
         WHERE student_id = $1 AND is_current",
        student_id,
        approval.decided_by
    )
    .execute(&mut *tx)
    .await?;
    audit_decision(
        tx,
        approval,
        action,
        old_number,
        serde_json::json!({ "registry_number": old_number }),
        serde_json::json!({
            "registry_number": number, "status": "active", "aliases": [old_number]
        }),
    )
    .await
}

async fn audit_decision(
    tx: &mut sqlx::PgConnection,
    approval: &ApprovalContext,
    action: &str,
    registry_number: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> Result<(), IdentityError> {
    xueji_audit::record(
        tx,
        &Entry {
            actor: &approval.decided_by,
            jurisdiction: &approval.jurisdiction,
            action,
            object: &format!("student:{registry_number}"),
            before: Some(before),
            after: Some(after),
            request_id: &approval.request_id,
        },
    )
    .await?;
    Ok(())
}

async fn lock_registration(
    tx: &mut sqlx::PgConnection,
    student_id: i64,
    decision: Decision,
) -> Result<LockedRegistration, IdentityError> {
    let row = sqlx::query!(
        "SELECT s.registry_number, e.status
         FROM identity.students s
         JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
         WHERE s.id = $1
         FOR UPDATE OF s, e",
        student_id
    )
    .fetch_optional(tx)
    .await?
    .ok_or_else(|| IdentityError::NotFound("student".into()))?;
    let status = EnrollmentStatus::parse(&row.status).ok_or_else(|| {
        IdentityError::FailedPrecondition(format!("unknown enrollment status {}", row.status))
    })?;
    let needs_decision = crate::domain::decision_needed(status, decision, &row.registry_number)
        .map_err(IdentityError::FailedPrecondition)?;
    Ok(LockedRegistration {
        registry_number: row.registry_number,
        needs_decision,
    })
}

/// The audit log's picture of a new registration. Serialized straight from the registration's
/// fields: building a `serde_json::Value` first (a map per row) cost more than the encoding.
#[derive(serde::Serialize)]
struct RegistrationAfter<'a> {
    registry_number: &'a str,
    name: &'a str,
    gender: &'static str,
    birth_date: NaiveDate,
    ethnicity: &'a str,
    document_type: &'static str,
    document_number: Option<&'a str>,
    school_code: &'a str,
    grade: u32,
    entry_date: NaiveDate,
    entry_route: &'static str,
    guardian: &'a Guardian,
    status: &'static str,
}

fn audit_after<'a>(
    registration: &'a Registration,
    number: &'a RegistryNumber,
) -> Json<RegistrationAfter<'a>> {
    Json(RegistrationAfter {
        registry_number: number.as_str(),
        name: &registration.name,
        gender: crate::domain::gender_str(registration.gender),
        birth_date: registration.birth_date,
        ethnicity: &registration.ethnicity,
        document_type: registration.document_type.as_str(),
        document_number: registration.document_number.as_deref(),
        school_code: registration.school.code.as_str(),
        grade: registration.grade,
        entry_date: registration.entry_date,
        entry_route: registration.entry_route.as_str(),
        guardian: &registration.guardian,
        status: "pending",
    })
}

/// A batch of registrations as the column arrays `register_batch` unnests.
#[derive(Default)]
struct BatchColumns<'a> {
    registry_number: Vec<String>,
    name: Vec<String>,
    gender: Vec<String>,
    birth_date: Vec<NaiveDate>,
    ethnicity: Vec<String>,
    document_type: Vec<String>,
    document_number: Vec<Option<String>>,
    id_number_claim: Vec<Option<String>>,
    name_key: Vec<String>,
    guardian: Vec<Json<&'a Guardian>>,
    idempotency_key: Vec<String>,
    request_hash: Vec<Vec<u8>>,
    registered_by: Vec<String>,
    school_code: Vec<String>,
    school_division: Vec<String>,
    grade: Vec<i16>,
    entry_date: Vec<NaiveDate>,
    entry_route: Vec<String>,
    jurisdiction: Vec<String>,
    /// Audit documents as JSON text, for a json column: nothing to convert on either side.
    after: Vec<String>,
    request_id: Vec<String>,
}

impl<'a> BatchColumns<'a> {
    fn push(&mut self, row: &BatchRegistration<'a>) {
        let BatchRegistration {
            registration,
            number,
            actor: Actor { caller, request_id },
        } = *row;
        self.registry_number.push(number.to_string());
        self.name.push(registration.name.clone());
        self.gender
            .push(crate::domain::gender_str(registration.gender).to_owned());
        self.birth_date.push(registration.birth_date);
        self.ethnicity.push(registration.ethnicity.clone());
        self.document_type
            .push(registration.document_type.as_str().to_owned());
        self.document_number
            .push(registration.document_number.clone());
        self.id_number_claim.push(
            registration
                .resident_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
        );
        self.name_key.push(registration.name_key());
        self.guardian.push(Json(&registration.guardian));
        self.idempotency_key
            .push(registration.idempotency_key.clone());
        self.request_hash.push(registration.fingerprint());
        self.registered_by.push(caller.describe());
        self.school_code.push(registration.school.code.to_string());
        self.school_division
            .push(registration.school.division.to_string());
        self.grade.push(registration.grade as i16);
        self.entry_date.push(registration.entry_date);
        self.entry_route
            .push(registration.entry_route.as_str().to_owned());
        self.jurisdiction.push(caller.jurisdiction.as_string());
        self.after.push(
            serde_json::to_string(&audit_after(registration, number).0)
                .expect("audit documents serialize"),
        );
        self.request_id.push(request_id.to_owned());
    }
}
