//! Reads: students with their current enrollment, pages of a school's students, problem
//! records and the national index's flags.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use xueji_codes::SchoolCode;

use super::Store;
use crate::{
    IdentityError,
    domain::{
        DocumentType, EnrollmentStatus, EntryRoute, Guardian, parse_gender,
        status_change::LeftReason,
    },
};
use xueji_codes::Gender;

/// A student with the current enrollment, as reads return it: every coded value typed. A value
/// this service does not know fails the read (a bug or a foreign write), never a default.
#[derive(Debug, Clone)]
pub struct StudentRecord {
    pub id: i64,
    pub registry_number: String,
    pub aliases: Vec<String>,
    pub name: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub ethnicity: String,
    pub document_type: DocumentType,
    pub document_number: Option<String>,
    pub guardian: Guardian,
    pub registered_at: DateTime<Utc>,
    pub school_code: String,
    pub school_division: String,
    pub registry_authority: String,
    pub grade: u32,
    pub entry_date: NaiveDate,
    pub entry_route: EntryRoute,
    pub status: EnrollmentStatus,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub duplicate_name: bool,
    /// Problems the national index found across provinces (`duplicate_id_number`,
    /// `duplicate_name`).
    pub national_problems: Vec<String>,
    /// Why a `left` record left.
    pub left_reason: Option<LeftReason>,
    /// The province's own fields, by name.
    pub provincial_fields: BTreeMap<String, String>,
    pub flags: crate::domain::StudentFlags,
    /// The last day of a suspension's term (休学期限), while the record is suspended; `None`
    /// for a suspended record with no known term (imported so).
    pub suspended_until: Option<NaiveDate>,
    /// The pupil's class at the school, if any.
    pub class: Option<ClassPlace>,
}

/// A pupil's class and seat (班内学号).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPlace {
    pub id: i64,
    pub name: String,
    pub seat: u32,
}

/// The row as the view returns it, before its values are checked.
struct StudentRow {
    id: i64,
    registry_number: String,
    aliases: Vec<String>,
    name: String,
    gender: String,
    birth_date: NaiveDate,
    ethnicity: String,
    document_type: String,
    document_number: Option<String>,
    guardian: serde_json::Value,
    registered_at: DateTime<Utc>,
    school_code: String,
    school_division: String,
    registry_authority: String,
    grade: i16,
    entry_date: NaiveDate,
    entry_route: String,
    status: String,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<String>,
    decision_reason: Option<String>,
    duplicate_name: bool,
    national_problems: Vec<String>,
    left_reason: Option<String>,
    provincial_fields: serde_json::Value,
    migrant_child: bool,
    left_behind_child: bool,
    suspended_until: Option<NaiveDate>,
    class_id: Option<i64>,
    class_name: Option<String>,
    class_seat: Option<i16>,
}

/// The error for a stored value this service does not know.
pub(crate) fn unknown(column: &str, value: impl std::fmt::Debug) -> IdentityError {
    IdentityError::Internal(format!(
        "stored {column} {value:?} is not a value this service knows"
    ))
}

impl TryFrom<StudentRow> for StudentRecord {
    type Error = IdentityError;

    fn try_from(row: StudentRow) -> Result<Self, IdentityError> {
        Ok(Self {
            gender: parse_gender(&row.gender).ok_or_else(|| unknown("gender", &row.gender))?,
            document_type: DocumentType::parse(&row.document_type)
                .ok_or_else(|| unknown("document_type", &row.document_type))?,
            guardian: serde_json::from_value(row.guardian)
                .map_err(|e| unknown("guardian", e.to_string()))?,
            provincial_fields: serde_json::from_value(row.provincial_fields)
                .map_err(|e| unknown("provincial_fields", e.to_string()))?,
            flags: crate::domain::StudentFlags {
                migrant_child: row.migrant_child,
                left_behind_child: row.left_behind_child,
            },
            grade: u32::try_from(row.grade).map_err(|_| unknown("grade", row.grade))?,
            entry_route: EntryRoute::parse(&row.entry_route)
                .ok_or_else(|| unknown("entry_route", &row.entry_route))?,
            status: EnrollmentStatus::parse(&row.status)
                .ok_or_else(|| unknown("status", &row.status))?,
            left_reason: row
                .left_reason
                .as_deref()
                .map(|text| LeftReason::parse(text).ok_or_else(|| unknown("left_reason", text)))
                .transpose()?,
            id: row.id,
            registry_number: row.registry_number,
            aliases: row.aliases,
            name: row.name,
            birth_date: row.birth_date,
            ethnicity: row.ethnicity,
            document_number: row.document_number,
            registered_at: row.registered_at,
            school_code: row.school_code,
            school_division: row.school_division,
            registry_authority: row.registry_authority,
            entry_date: row.entry_date,
            decided_at: row.decided_at,
            decided_by: row.decided_by,
            decision_reason: row.decision_reason,
            duplicate_name: row.duplicate_name,
            national_problems: row.national_problems,
            suspended_until: row.suspended_until,
            class: match (row.class_id, row.class_name, row.class_seat) {
                (Some(id), Some(name), Some(seat)) => Some(ClassPlace {
                    id,
                    name,
                    seat: u32::try_from(seat).map_err(|_| unknown("class_seat", seat))?,
                }),
                (None, None, None) => None,
                other => return Err(unknown("class", other)),
            },
        })
    }
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

impl Store {
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
        let rows = sqlx::query_as!(
            StudentRow,
            r#"SELECT id AS "id!", registry_number AS "registry_number!", aliases AS "aliases!",
                      name AS "name!", gender AS "gender!", birth_date AS "birth_date!",
                      ethnicity AS "ethnicity!", document_type AS "document_type!",
                      document_number, guardian AS "guardian!", registered_at AS "registered_at!",
                      school_code AS "school_code!", school_division AS "school_division!",
                      registry_authority AS "registry_authority!", grade AS "grade!",
                      entry_date AS "entry_date!", entry_route AS "entry_route!",
                      status AS "status!", decided_at, decided_by, decision_reason,
                      duplicate_name AS "duplicate_name!",
                      national_problems AS "national_problems!", left_reason,
                      provincial_fields AS "provincial_fields!",
                      migrant_child AS "migrant_child!", left_behind_child AS "left_behind_child!",
                      suspended_until, class_id, class_name, class_seat
               FROM identity.student_view WHERE id = ANY($1) ORDER BY registry_number"#,
            ids
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StudentRecord::try_from).collect()
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

    /// One page of live students with a namesake (one of the pair without an ID number)
    /// inside the given counties or school, after `after` (a registry number).
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
             WHERE g.registrations > 1 AND e.status NOT IN ('rejected', 'deleted')
               AND (e.school_division = ANY($1) OR e.school_code = $2)
               AND s.registry_number > $3
               AND NOT EXISTS (SELECT 1 FROM identity.confirmed_records c
                               WHERE c.student_id = s.id AND c.problem = 'duplicate_name')
               AND identity.has_namesake(s.id)
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
}
