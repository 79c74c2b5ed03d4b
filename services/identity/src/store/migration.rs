//! The bulk writer of migrated records: one transaction per chunk writes the students, their
//! numbers (aliases included), enrollments in their states, duplicate counters, J sequences,
//! the national index's messages, one audit entry, the chunk's bad rows and the job's
//! progress, so a crash leaves a job exactly at a chunk's end.

use std::collections::{HashMap, HashSet};

use super::{
    Actor, Store,
    imports::{ChunkDone, RowError, RowProblem, save_chunk},
};
use crate::{
    IdentityError,
    domain::{self, sheet::MigratedRecord},
};

/// A migrated record with its sheet row and cells (for the error file, if the writer refuses
/// it after all).
#[derive(Debug, Clone)]
pub struct MigrationRow {
    pub row: i64,
    pub cells: Vec<String>,
    pub record: MigratedRecord,
}

impl Store {
    /// Writes a chunk of migrated records in one transaction, with the job's progress. A
    /// record already here (its number, with the same name and birth date) is counted as
    /// present; one whose numbers or ID number another record holds is a bad row.
    pub async fn migrate_chunk(
        &self,
        job: uuid::Uuid,
        rows: &[MigrationRow],
        mut done: ChunkDone,
        actor: Actor<'_>,
    ) -> Result<ChunkDone, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let numbers: Vec<String> = rows
            .iter()
            .flat_map(|r| {
                std::iter::once(&r.record.registry_number)
                    .chain(&r.record.aliases)
                    .map(|n| n.as_str().to_owned())
            })
            .collect();
        let held: HashMap<String, (String, String, chrono::NaiveDate)> = sqlx::query!(
            "SELECT r.number, s.registry_number, s.name, s.birth_date
             FROM identity.registry_numbers r JOIN identity.students s ON s.id = r.student_id
             WHERE r.number = ANY($1)",
            &numbers
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.number, (r.registry_number, r.name, r.birth_date)))
        .collect();
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.record.registration.resident_id.as_ref())
            .map(|id| id.as_str().to_owned())
            .collect();
        let claimed: HashMap<String, String> = sqlx::query!(
            r#"SELECT id_number_claim AS "id!", registry_number FROM identity.students
               WHERE id_number_claim = ANY($1)"#,
            &ids
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.registry_number))
        .collect();

        let mut batch = MigrationColumns::default();
        let mut seen_numbers: HashSet<&str> = HashSet::new();
        let mut seen_ids: HashSet<&str> = HashSet::new();
        for row in rows {
            let record = &row.record;
            let registration = &record.registration;
            let mut problems = Vec::new();
            let mut problem = |field: &str, heading: &str, reason: String| {
                problems.push(RowProblem {
                    field: field.to_owned(),
                    heading: heading.to_owned(),
                    reason,
                })
            };
            if let Some((current, name, birth)) = held.get(record.registry_number.as_str()) {
                if *name == registration.name && *birth == registration.birth_date {
                    done.already += 1;
                } else {
                    problem(
                        "registry_number",
                        "全国学籍号",
                        format!("is already the number of another record ({current})"),
                    );
                    done.errors.push(bad(row, problems));
                }
                continue;
            }
            for alias in &record.aliases {
                if let Some((current, _, _)) = held.get(alias.as_str()) {
                    problem(
                        "aliases",
                        "曾用学籍号",
                        format!("{alias} is already a number of another record ({current})"),
                    );
                }
            }
            let numbers = std::iter::once(&record.registry_number).chain(&record.aliases);
            if numbers.clone().any(|n| seen_numbers.contains(n.as_str())) {
                problem(
                    "registry_number",
                    "全国学籍号",
                    "repeats a number of an earlier row of this file".into(),
                );
            }
            if let Some(id) = &registration.resident_id {
                if let Some(holder) = claimed.get(id.as_str()) {
                    problem(
                        "document_number",
                        "证件号码",
                        format!(
                            "another live record of this province ({holder}) holds this resident ID number"
                        ),
                    );
                } else if seen_ids.contains(id.as_str()) {
                    problem(
                        "document_number",
                        "证件号码",
                        "repeats the resident ID number of an earlier row of this file".into(),
                    );
                }
            }
            if !problems.is_empty() {
                done.errors.push(bad(row, problems));
                continue;
            }
            seen_numbers.extend(numbers.map(|n| n.as_str()));
            if let Some(id) = &registration.resident_id {
                seen_ids.insert(id.as_str());
            }
            batch.push(row);
        }
        let written = write_migrated(&mut tx, &batch, job, actor).await?;
        if written != batch.numbers.len() as i64 {
            // A registration or another import took a number or an ID number between the
            // checks above and the insert: nothing of the chunk is kept; it is read again.
            return Err(IdentityError::Unavailable(
                "another change took a number of this chunk meanwhile; send the file again to \
                 resume"
                    .into(),
            ));
        }
        done.imported += written;
        save_chunk(&mut tx, job, &done).await?;
        tx.commit().await?;
        Ok(done)
    }
}

fn bad(row: &MigrationRow, problems: Vec<RowProblem>) -> RowError {
    RowError {
        row: row.row,
        cells: row.cells.clone(),
        problems,
    }
}

/// The chunk's records as columns, for one set-wide statement.
#[derive(Default)]
struct MigrationColumns {
    rows: Vec<i64>,
    numbers: Vec<String>,
    names: Vec<String>,
    genders: Vec<&'static str>,
    birth_dates: Vec<chrono::NaiveDate>,
    ethnicities: Vec<String>,
    document_types: Vec<&'static str>,
    document_numbers: Vec<Option<String>>,
    claims: Vec<Option<String>>,
    name_keys: Vec<String>,
    guardians: Vec<serde_json::Value>,
    fingerprints: Vec<Vec<u8>>,
    provincial: Vec<serde_json::Value>,
    schools: Vec<String>,
    divisions: Vec<String>,
    grades: Vec<i16>,
    entry_dates: Vec<chrono::NaiveDate>,
    entry_routes: Vec<&'static str>,
    statuses: Vec<&'static str>,
    national_statuses: Vec<&'static str>,
    left_reasons: Vec<Option<&'static str>>,
    alias_owners: Vec<String>,
    alias_numbers: Vec<String>,
    migrant: Vec<bool>,
    left_behind: Vec<bool>,
}

impl MigrationColumns {
    fn push(&mut self, row: &MigrationRow) {
        let record = &row.record;
        let r = &record.registration;
        self.rows.push(row.row);
        self.numbers
            .push(record.registry_number.as_str().to_owned());
        self.names.push(r.name.clone());
        self.genders.push(domain::gender_str(r.gender));
        self.birth_dates.push(r.birth_date);
        self.ethnicities.push(r.ethnicity.clone());
        self.document_types.push(r.document_type.as_str());
        self.document_numbers.push(r.document_number.clone());
        self.claims
            .push(r.resident_id.as_ref().map(|id| id.as_str().to_owned()));
        self.name_keys.push(r.name_key());
        self.guardians
            .push(serde_json::to_value(&r.guardian).expect("guardians serialize"));
        self.fingerprints.push(r.fingerprint());
        self.provincial
            .push(serde_json::to_value(&r.provincial_fields).expect("fields serialize"));
        self.schools.push(r.school.code.as_str().to_owned());
        self.divisions.push(r.school.division.as_str().to_owned());
        self.grades.push(r.grade as i16);
        self.entry_dates.push(r.entry_date);
        self.entry_routes.push(r.entry_route.as_str());
        self.statuses.push(record.status.as_str());
        self.national_statuses.push(match record.status {
            domain::EnrollmentStatus::Pending => "pending",
            _ => "active",
        });
        self.left_reasons
            .push(record.left_reason.map(|reason| reason.as_str()));
        self.migrant.push(r.flags.migrant_child);
        self.left_behind.push(r.flags.left_behind_child);
        for alias in &record.aliases {
            self.alias_owners
                .push(record.registry_number.as_str().to_owned());
            self.alias_numbers.push(alias.as_str().to_owned());
        }
    }
}

/// One statement writes the chunk: students, numbers (current and aliases), enrollments in
/// their states, duplicate-group counters, J sequences past every migrated J number, the
/// national index's messages and one audit entry naming every record. Answers how many
/// students it wrote (fewer than given when a concurrent change took a key).
async fn write_migrated(
    tx: &mut sqlx::PgConnection,
    batch: &MigrationColumns,
    job: uuid::Uuid,
    actor: Actor<'_>,
) -> Result<i64, IdentityError> {
    if batch.numbers.is_empty() {
        return Ok(0);
    }
    let describe = actor.caller.describe();
    let j_numbers: Vec<&str> = batch
        .numbers
        .iter()
        .chain(&batch.alias_numbers)
        .map(String::as_str)
        .filter(|n| n.starts_with('J'))
        .collect();
    let row = sqlx::query!(
        r#"WITH input AS (
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[],
                                    $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[],
                                    $11::bytea[], $12::jsonb[], $13::text[], $14::text[],
                                    $15::int2[], $16::date[], $17::text[], $18::text[],
                                    $19::text[], $20::text[], $21::bigint[], $29::bool[],
                                    $30::bool[])
                   AS u(number, name, gender, birth_date, ethnicity, document_type,
                        document_number, claim, name_key, guardian, fingerprint, provincial,
                        school_code, school_division, grade, entry_date, entry_route, status,
                        national_status, left_reason, sheet_row, migrant, left_behind)
           ), student AS (
               INSERT INTO identity.students
                   (registry_number, name, gender, birth_date, ethnicity, document_type,
                    document_number, id_number_claim, name_key, guardian, idempotency_key,
                    request_hash, registered_by, provincial_fields, migrant_child,
                    left_behind_child)
               SELECT number, name, gender, birth_date, ethnicity, document_type,
                      document_number, claim, name_key, guardian, 'migration:' || number,
                      fingerprint, $22, provincial, migrant, left_behind
               FROM input ORDER BY sheet_row
               ON CONFLICT DO NOTHING
               RETURNING id, registry_number
           ), number AS (
               INSERT INTO identity.registry_numbers (number, student_id)
               SELECT s.registry_number, s.id FROM student s
               UNION ALL
               SELECT a.number, s.id
               FROM unnest($23::text[], $24::text[]) AS a(owner, number)
               JOIN student s ON s.registry_number = a.owner
               RETURNING student_id
           ), enrollment AS (
               INSERT INTO identity.enrollments
                   (student_id, school_code, school_division, grade, entry_date, entry_route,
                    status, left_reason, decided_at, decided_by, decision_reason)
               SELECT s.id, i.school_code, i.school_division, i.grade, i.entry_date,
                      i.entry_route, i.status, i.left_reason,
                      CASE WHEN i.status <> 'pending' THEN identity.clock_now() END,
                      CASE WHEN i.status <> 'pending' THEN $22 END,
                      CASE WHEN i.status <> 'pending' THEN 'migrated by import ' || $25::text END
               FROM student s JOIN input i ON i.number = s.registry_number
               RETURNING id
           ), duplicate AS (
               INSERT INTO identity.duplicate_groups (key, registrations)
               SELECT i.name_key, count(*) FROM student s JOIN input i ON i.number = s.registry_number
               GROUP BY i.name_key
               ON CONFLICT (key) DO UPDATE
                   SET registrations = identity.duplicate_groups.registrations + EXCLUDED.registrations
               RETURNING key
           ), j_sequence AS (
               INSERT INTO identity.j_sequences (division, birth_date, last_value)
               SELECT substr(n, 2, 6), to_date(substr(n, 8, 8), 'YYYYMMDD'),
                      max(substr(n, 16, 3)::int)
               FROM unnest($26::text[]) AS n
               GROUP BY 1, 2
               ON CONFLICT (division, birth_date) DO UPDATE
                   SET last_value = greatest(identity.j_sequences.last_value, EXCLUDED.last_value)
               RETURNING division
           ), outbox AS (
               INSERT INTO identity.outbox (payload)
               SELECT json_build_object(
                          'kind', 'index_student', 'registry_number', s.registry_number,
                          'aliases', to_json(ARRAY(SELECT a.number
                                                   FROM unnest($23::text[], $24::text[])
                                                        AS a(owner, number)
                                                   WHERE a.owner = s.registry_number
                                                   ORDER BY a.number)),
                          'id_number', i.claim,
                          'duplicate_digest', encode(sha256(convert_to(i.name_key, 'UTF8')), 'hex'),
                          'status', i.national_status,
                          'migrated', true)
               FROM student s JOIN input i ON i.number = s.registry_number
               ORDER BY i.sheet_row
               RETURNING sequence
           ), audited AS (
               SELECT audit.record($22, $27, 'identity.migrate_students', 'import:' || $25::text,
                                   NULL,
                                   jsonb_build_object(
                                       'job', $25::text,
                                       'records', (SELECT jsonb_agg(jsonb_build_object(
                                                              'row', i.sheet_row,
                                                              'registry_number', s.registry_number,
                                                              'school', i.school_code,
                                                              'status', i.status)
                                                          ORDER BY i.sheet_row)
                                                   FROM student s
                                                   JOIN input i ON i.number = s.registry_number)),
                                   $28) AS entry
           )
           SELECT (SELECT count(*) FROM student) AS "students!",
                  (SELECT count(*) FROM number) + (SELECT count(*) FROM enrollment)
                      + (SELECT count(*) FROM duplicate) + (SELECT count(*) FROM j_sequence)
                      + (SELECT count(*) FROM outbox) + (SELECT count(entry) FROM audited)
                      AS "writes!""#,
        &batch.numbers,
        &batch.names,
        &batch.genders as &[&str],
        &batch.birth_dates,
        &batch.ethnicities,
        &batch.document_types as &[&str],
        &batch.document_numbers as &[Option<String>],
        &batch.claims as &[Option<String>],
        &batch.name_keys,
        &batch.guardians,
        &batch.fingerprints,
        &batch.provincial,
        &batch.schools,
        &batch.divisions,
        &batch.grades,
        &batch.entry_dates,
        &batch.entry_routes as &[&str],
        &batch.statuses as &[&str],
        &batch.national_statuses as &[&str],
        &batch.left_reasons as &[Option<&str>],
        &batch.rows,
        describe,
        &batch.alias_owners,
        &batch.alias_numbers,
        job.to_string(),
        &j_numbers as &[&str],
        actor.caller.jurisdiction.as_string(),
        actor.request_id,
        &batch.migrant,
        &batch.left_behind,
    )
    .fetch_one(&mut *tx)
    .await?;
    debug_assert!(row.writes > 0);
    Ok(row.students)
}
