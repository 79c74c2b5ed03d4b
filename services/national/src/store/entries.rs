//! What the index's entries share between indexing and continuation: a number added to an
//! entry, and who holds an ID number's claim.

use sqlx::PgConnection;

use crate::NationalError;

/// Who holds an ID number's claim: the entry, its province and number, its index status.
pub(super) struct ClaimOwner {
    pub(super) student_id: i64,
    pub(super) province: String,
    pub(super) registry_number: String,
    pub(super) status: String,
}

/// Records `number` for student `id`; a number held by another student is refused.
pub(super) async fn add_number(
    conn: &mut PgConnection,
    id: i64,
    number: &str,
    province: &str,
) -> Result<(), NationalError> {
    let holder = sqlx::query_scalar!(
        "WITH added AS (
             INSERT INTO national.numbers (number, student_id) VALUES ($1, $2)
             ON CONFLICT (number) DO NOTHING RETURNING student_id
         )
         SELECT student_id FROM added
         UNION ALL SELECT student_id FROM national.numbers WHERE number = $1",
        number,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    if holder.iter().any(|holder| *holder != Some(id)) {
        return Err(NationalError::PermissionDenied(format!(
            "registry number {number} is already indexed for another student; province \
             {province} may not reuse it"
        )));
    }
    Ok(())
}
