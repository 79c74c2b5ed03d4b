//! 升学 across provinces (籍随人走、终身不变; Ministry 第五条: 一人一号、终身不变): a pupil whose
//! record finished its stage in one province is registered by a school of another. When the
//! new province claims the resident ID number, the national entry the finished record holds
//! moves to the new province with every number it had, the new province's temporary entry
//! folds into it, and the old province is told with a `continued_elsewhere` notice. Only a
//! finished record moves: a live one answers the claim as a duplicate, as before.

use sqlx::PgConnection;
use xueji_codes::RegistryNumber;

use super::{
    entries::{ClaimOwner, add_number},
    notices::notice,
};
use crate::{
    NationalError,
    domain::{Claim, Outcome},
};

/// The notice kind that tells a province its finished record continues in another.
pub const CONTINUED_ELSEWHERE: &str = "continued_elsewhere";

/// Moves the finished entry of `owner` to `province`, folding the claimant's entry
/// (`claimant`, its number) into it, and grants the claim. A province is trusted for its own
/// students only: it takes over another's finished record only for the child that record
/// describes, the same name, gender and birth date (the digests equal) as well as the ID
/// number; otherwise `None`, and the claim is answered as any duplicate.
pub(super) async fn continue_here(
    conn: &mut PgConnection,
    province: &str,
    (claimant, claimant_number): (i64, &str),
    owner: &ClaimOwner,
    claim: &Claim,
) -> Result<Option<Outcome>, NationalError> {
    let same_child = sqlx::query_scalar!(
        r#"SELECT length(c.duplicate_digest) > 0 AND c.duplicate_digest = o.duplicate_digest
                  AS "same!"
           FROM national.students c, national.students o
           WHERE c.id = $1 AND o.id = $2"#,
        claimant,
        owner.student_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !same_child {
        return Ok(None);
    }
    // The claimant's numbers (its temporary L) find the student from now on; its row goes.
    sqlx::query!(
        "UPDATE national.numbers SET student_id = $2 WHERE student_id = $1",
        claimant,
        owner.student_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "DELETE FROM national.id_claims WHERE student_id = $1",
        claimant
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM national.students WHERE id = $1", claimant)
        .execute(&mut *conn)
        .await?;
    let promoted = RegistryNumber::g(&claim.id_number);
    sqlx::query!(
        "UPDATE national.students
         SET province = $2, status = 'active', registry_number = $3, id_digest = $4,
             updated_at = now()
         WHERE id = $1",
        owner.student_id,
        province,
        promoted.as_str(),
        claim.id_digest.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    add_number(conn, owner.student_id, promoted.as_str(), province).await?;
    sqlx::query!(
        "UPDATE national.id_claims SET claimed_at = now() WHERE id_digest = $1",
        claim.id_digest.as_str()
    )
    .execute(&mut *conn)
    .await?;
    notice(
        conn,
        &owner.province,
        &owner.registry_number,
        CONTINUED_ELSEWHERE,
        province,
        claimant_number,
        &format!(
            "continued at a school of province {province} (升学): the number, its ID number's \
             claim and the national entry are that province's now"
        ),
    )
    .await?;
    Ok(Some(Outcome::Granted))
}
