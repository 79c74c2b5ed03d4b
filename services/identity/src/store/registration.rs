//! Registration: one statement writes the student, the temporary number, the enrollment, the
//! duplicate-group counter, the audit entry and the outbox row, for one registration or a batch.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sqlx::{PgConnection, types::Json};
use xueji_codes::RegistryNumber;

use super::{Actor, Store};
use crate::{
    IdentityError,
    domain::{Guardian, Registration},
};

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

/// One registration of a batch: what [`Store::register`] takes, for many at once.
#[derive(Debug, Clone, Copy)]
pub struct BatchRegistration<'a> {
    pub registration: &'a Registration,
    pub number: &'a RegistryNumber,
    pub actor: Actor<'a>,
}

impl Store {
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
        let provincial = Json(&registration.provincial_fields);
        let after = audit_after(registration, number);
        let id_claim = registration.resident_id.as_ref().map(|id| id.as_str());
        let result = sqlx::query!(
            r#"WITH student AS (
                   INSERT INTO identity.students
                       (registry_number, name, gender, birth_date, ethnicity, document_type,
                        document_number, id_number_claim, name_key, guardian, idempotency_key,
                        request_hash, registered_by, provincial_fields, migrant_child,
                        left_behind_child)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $22, $23, $24)
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
                      -- A namesake (DESIGN §4 (3)): another live record of the same name,
                      -- gender and birth date, one of the two without an ID number. The
                      -- statement's snapshot holds the others, not this one.
                      ((SELECT registrations FROM duplicate) > 1 AND EXISTS (
                          SELECT 1 FROM identity.students s2
                          JOIN identity.enrollments e2 ON e2.student_id = s2.id AND e2.is_current
                          WHERE s2.name_key = $9 AND e2.status NOT IN ('rejected', 'deleted')
                            AND NOT (identity.holds_resident_id($6, $7)
                                     AND identity.holds_resident_id(s2.document_type,
                                                                    s2.document_number))
                      )) AS "namesake!",
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
            provincial as _,
            registration.flags.migrant_child,
            registration.flags.left_behind_child,
        )
        .fetch_optional(&self.pool)
        .await;

        match result {
            Ok(Some(row)) => {
                debug_assert_eq!(row.writes, 3);
                Ok(RegisterOutcome::Created {
                    student_id: row.id,
                    duplicate_name: row.namesake,
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
                                        $19::text[], $20::text[], $21::text[], $22::jsonb[],
                                        $23::bool[], $24::bool[])
                       AS i(registry_number, name, gender, birth_date, ethnicity, document_type,
                            document_number, id_number_claim, name_key, guardian, idempotency_key,
                            request_hash, registered_by, school_code, school_division, grade,
                            entry_date, entry_route, jurisdiction, after, request_id,
                            provincial_fields, migrant_child, left_behind_child)
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
                        request_hash, registered_by, provincial_fields, migrant_child,
                        left_behind_child)
                   SELECT registry_number, name, gender, birth_date, ethnicity, document_type,
                          document_number, id_number_claim, name_key, guardian, idempotency_key,
                          request_hash, registered_by, provincial_fields, migrant_child,
                          left_behind_child
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
                      created.id AS "id?",
                      -- A namesake (DESIGN §4 (3)) among the records already here or in this
                      -- batch: one of the two without an ID number.
                      duplicate.registrations > 1 AND (
                          EXISTS (
                              SELECT 1 FROM identity.students s2
                              JOIN identity.enrollments e2
                                  ON e2.student_id = s2.id AND e2.is_current
                              WHERE s2.name_key = created.name_key
                                AND e2.status NOT IN ('rejected', 'deleted')
                                AND NOT (identity.holds_resident_id(created.document_type,
                                                                    created.document_number)
                                         AND identity.holds_resident_id(s2.document_type,
                                                                        s2.document_number)))
                          OR EXISTS (
                              SELECT 1 FROM created c2
                              WHERE c2.name_key = created.name_key
                                AND c2.idempotency_key <> created.idempotency_key
                                AND NOT (identity.holds_resident_id(created.document_type,
                                                                    created.document_number)
                                         AND identity.holds_resident_id(c2.document_type,
                                                                        c2.document_number)))
                      ) AS "namesake?"
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
            &columns.provincial_fields as _,
            &columns.migrant_child,
            &columns.left_behind_child,
        )
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let outcome = match (row.id, row.namesake) {
                    (Some(student_id), Some(namesake)) => RegisterOutcome::Created {
                        student_id,
                        duplicate_name: namesake,
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
    /// The province's own fields: audited like the others.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    provincial_fields: &'a BTreeMap<String, String>,
    /// Written only when a flag is set.
    #[serde(skip_serializing_if = "is_unset")]
    flags: crate::domain::StudentFlags,
    status: &'static str,
}

fn is_unset(flags: &crate::domain::StudentFlags) -> bool {
    *flags == crate::domain::StudentFlags::default()
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
        provincial_fields: &registration.provincial_fields,
        flags: registration.flags,
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
    provincial_fields: Vec<Json<&'a BTreeMap<String, String>>>,
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
    migrant_child: Vec<bool>,
    left_behind_child: Vec<bool>,
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
        self.provincial_fields
            .push(Json(&registration.provincial_fields));
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
        self.migrant_child.push(registration.flags.migrant_child);
        self.left_behind_child
            .push(registration.flags.left_behind_child);
    }
}
