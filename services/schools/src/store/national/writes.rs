//! The writes applications and lifecycle steps share: a school loaded, a code allocated, a
//! school inserted, a change recorded.

use chrono::NaiveDate;
use sqlx::PgConnection;
use xueji_codes::{SchoolCategory, SchoolCode};

use crate::store::SchoolRow;
use crate::{
    SchoolsError,
    domain::{self, Profile, SchoolRecord},
};

pub(super) async fn load_school(
    conn: &mut PgConnection,
    code: &str,
) -> Result<Option<SchoolRecord>, SchoolsError> {
    let row = sqlx::query_as!(
        SchoolRow,
        r#"SELECT s.code, profile AS "profile!", status, open_from, open_until,
                  former_names AS "former_names!", replaced_on AS "replaced_on!",
                  successors AS "successors!"
           FROM schools_national.schools s
           CROSS JOIN LATERAL schools_national.school_extras(s) AS x
           WHERE s.code = $1"#,
        code
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(SchoolRow::into_record).transpose()?)
}

pub(super) async fn allocate_code(
    conn: &mut PgConnection,
    category: SchoolCategory,
    province: &str,
) -> Result<SchoolCode, SchoolsError> {
    let sequence = sqlx::query_scalar!(
        "INSERT INTO schools_national.code_sequences (category, province, last_value)
         VALUES ($1, $2, 1)
         ON CONFLICT (category, province)
             DO UPDATE SET last_value = schools_national.code_sequences.last_value + 1
         RETURNING last_value",
        category.digits(),
        province
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.is_check_violation() => {
            SchoolsError::FailedPrecondition(format!(
                "all 999999 codes of category {} in province {province} are issued",
                category.digits()
            ))
        }
        _ => error.into(),
    })?;
    Ok(domain::make_code(category, province, sequence as u32))
}

pub(super) async fn insert_school(
    conn: &mut PgConnection,
    code: &SchoolCode,
    profile: &Profile,
    open_from: NaiveDate,
    application_id: Option<&str>,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "INSERT INTO schools_national.schools
             (code, name, category, province, stages, division, registry_authority, operator_type,
              address, township, status, open_from, application_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12)",
        code.as_str(),
        profile.name,
        profile.category.digits(),
        profile.province(),
        serde_json::to_value(&profile.stages).expect("serializable"),
        profile.division.as_str(),
        profile.registry_authority.as_str(),
        profile.operator_type.as_str(),
        profile.address,
        profile.township,
        open_from,
        application_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Appends a change carrying the school as it now stands, and returns that school.
pub(super) async fn record_change(
    conn: &mut PgConnection,
    kind: &str,
    code: &SchoolCode,
    predecessors: &[String],
    effective_date: NaiveDate,
    reason: &str,
) -> Result<SchoolRecord, SchoolsError> {
    let school = load_school(conn, code.as_str())
        .await?
        .ok_or_else(|| SchoolsError::NotFound(format!("school {code}")))?;
    sqlx::query!(
        "INSERT INTO schools_national.changes (kind, code, school, predecessors, effective_date, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
        kind,
        code.as_str(),
        serde_json::to_value(&school).expect("serializable"),
        predecessors,
        effective_date,
        reason,
    )
    .execute(&mut *conn)
    .await?;
    Ok(school)
}
