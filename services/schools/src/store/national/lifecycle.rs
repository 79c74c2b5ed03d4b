//! The lifecycle steps on issued codes: rename, merge, change category, close, reopen; each
//! keeps the school's history and appends the change a publication will carry.

use chrono::NaiveDate;
use sqlx::PgConnection;
use xueji_codes::{SchoolCategory, SchoolCode};

use super::writes::{allocate_code, insert_school, load_school, record_change};
use super::*;
use crate::store::{Actor, audit};
use crate::{
    SchoolsError,
    domain::{self, Profile, SchoolRecord, SchoolStatus, StageOffered, Step},
};

impl NationalStore {
    pub async fn rename(
        &self,
        code: &SchoolCode,
        new_name: &str,
        effective_date: NaiveDate,
        reason: &str,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_school(&mut tx, code).await?;
        if domain::rename(&before, new_name)? == Step::AlreadyDone {
            return Ok(before);
        }
        keep_former_name(&mut tx, code, &before.profile.name, effective_date).await?;
        sqlx::query!(
            "UPDATE schools_national.schools SET name = $2 WHERE code = $1",
            code.as_str(),
            new_name
        )
        .execute(&mut *tx)
        .await?;
        let after = record_change(&mut tx, "renamed", code, &[], effective_date, reason).await?;
        audit_lifecycle(&mut tx, actor, "schools.rename_school", &before, &after).await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn merge(
        &self,
        merger: &Merger,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let mut codes: Vec<&SchoolCode> = merger.predecessors.iter().collect();
        codes.sort();
        codes.dedup();
        let mut predecessors = Vec::new();
        for code in codes {
            predecessors.push(lock_school(&mut tx, code).await?);
        }
        if let Some(done) = earlier_merger(&mut tx, &predecessors).await? {
            return Ok(done);
        }
        let kept = domain::merged_code(&predecessors, &merger.merged, merger.keep.as_ref())?;
        let successor = match &kept {
            Some(code) => {
                let before = predecessors
                    .iter()
                    .find(|p| &p.code == code)
                    .expect("kept code is a predecessor");
                if before.profile.name != merger.merged.name {
                    keep_former_name(&mut tx, code, &before.profile.name, merger.effective_date)
                        .await?;
                }
                update_profile(&mut tx, code, &merger.merged).await?;
                code.clone()
            }
            None => {
                let code = allocate_code(&mut tx, merger.merged.category, merger.merged.province())
                    .await?;
                insert_school(&mut tx, &code, &merger.merged, merger.effective_date, None).await?;
                record_change(
                    &mut tx,
                    "added",
                    &code,
                    &[],
                    merger.effective_date,
                    &merger.reason,
                )
                .await?;
                code
            }
        };
        for predecessor in predecessors.iter().filter(|p| p.code != successor) {
            void(
                &mut tx,
                &predecessor.code,
                &successor,
                LineageKind::Merge,
                merger.effective_date,
                &merger.reason,
            )
            .await?;
        }
        let names: Vec<String> = predecessors.iter().map(|p| p.code.to_string()).collect();
        let merged = record_change(
            &mut tx,
            "merged",
            &successor,
            &names,
            merger.effective_date,
            &merger.reason,
        )
        .await?;
        audit(
            &mut tx,
            actor,
            "schools.merge_schools",
            &format!("school:{successor}"),
            Some(serde_json::to_value(&predecessors).expect("serializable")),
            Some(serde_json::to_value(&merged).expect("serializable")),
        )
        .await?;
        tx.commit().await?;
        Ok(merged)
    }

    pub async fn change_category(
        &self,
        code: &SchoolCode,
        category: SchoolCategory,
        stages: &[StageOffered],
        effective_date: NaiveDate,
        reason: &str,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_school(&mut tx, code).await?;
        if domain::change_category(&before, category)? == Step::AlreadyDone {
            let successor = before
                .successors
                .iter()
                .find(|s| s.category() == category)
                .expect("checked by the domain");
            return load_school(&mut tx, successor.as_str())
                .await?
                .ok_or_else(|| SchoolsError::NotFound(format!("school {successor}")));
        }
        let profile = Profile {
            category,
            stages: stages.to_vec(),
            ..before.profile.clone()
        };
        let new_code = allocate_code(&mut tx, category, profile.province()).await?;
        insert_school(&mut tx, &new_code, &profile, effective_date, None).await?;
        let after = record_change(&mut tx, "added", &new_code, &[], effective_date, reason).await?;
        void(
            &mut tx,
            code,
            &new_code,
            LineageKind::CategoryChange,
            effective_date,
            reason,
        )
        .await?;
        audit_lifecycle(&mut tx, actor, "schools.change_category", &before, &after).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Closes a school whose workload the caller has checked. `check` runs on the locked
    /// record, so a retry on a closed school answers without asking anyone.
    pub async fn close(
        &self,
        code: &SchoolCode,
        effective_date: NaiveDate,
        reason: &str,
        workload: Option<domain::Workload>,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_school(&mut tx, code).await?;
        if domain::close(&before, workload)? == Step::AlreadyDone {
            return Ok(before);
        }
        if effective_date < before.open_from {
            return Err(SchoolsError::invalid(
                "effective_date",
                format!("is before the school opened ({})", before.open_from),
            ));
        }
        sqlx::query!(
            "UPDATE schools_national.schools SET status = 'closed', open_until = $2 WHERE code = $1",
            code.as_str(),
            effective_date
        )
        .execute(&mut *tx)
        .await?;
        let after = record_change(&mut tx, "voided", code, &[], effective_date, reason).await?;
        audit_lifecycle(&mut tx, actor, "schools.close_school", &before, &after).await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn reopen(
        &self,
        code: &SchoolCode,
        effective_date: NaiveDate,
        reason: &str,
        actor: &Actor,
    ) -> Result<SchoolRecord, SchoolsError> {
        let mut tx = self.pool.begin().await?;
        let before = lock_school(&mut tx, code).await?;
        if domain::reopen(&before)? == Step::AlreadyDone {
            return Ok(before);
        }
        sqlx::query!(
            "UPDATE schools_national.schools SET status = 'open', open_until = NULL WHERE code = $1",
            code.as_str()
        )
        .execute(&mut *tx)
        .await?;
        let after = record_change(&mut tx, "reopened", code, &[], effective_date, reason).await?;
        audit_lifecycle(&mut tx, actor, "schools.reopen_school", &before, &after).await?;
        tx.commit().await?;
        Ok(after)
    }
}

/// Locks a school for a lifecycle step; unknown codes are NOT_FOUND.
async fn lock_school(
    conn: &mut PgConnection,
    code: &SchoolCode,
) -> Result<SchoolRecord, SchoolsError> {
    let locked = sqlx::query_scalar!(
        "SELECT code FROM schools_national.schools WHERE code = $1 FOR UPDATE",
        code.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    if locked.is_none() {
        return Err(SchoolsError::NotFound(format!("school {code}")));
    }
    load_school(conn, code.as_str())
        .await?
        .ok_or_else(|| SchoolsError::NotFound(format!("school {code}")))
}

/// The school an earlier, identical merger produced, when these predecessors were already
/// merged (a retry).
async fn earlier_merger(
    conn: &mut PgConnection,
    predecessors: &[SchoolRecord],
) -> Result<Option<SchoolRecord>, SchoolsError> {
    let voided: Vec<&SchoolRecord> = predecessors
        .iter()
        .filter(|p| p.status == SchoolStatus::Voided)
        .collect();
    let Some(first) = voided.first() else {
        return Ok(None);
    };
    let Some(successor) = first.successors.first() else {
        return Ok(None);
    };
    let all_into_successor = predecessors
        .iter()
        .all(|p| &p.code == successor || p.successors.contains(successor));
    if !all_into_successor {
        return Ok(None);
    }
    load_school(conn, successor.as_str()).await
}

/// Remembers the name a school had until `replaced_on`.
async fn keep_former_name(
    conn: &mut PgConnection,
    code: &SchoolCode,
    name: &str,
    replaced_on: NaiveDate,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "INSERT INTO schools_national.former_names (code, name, replaced_on) VALUES ($1, $2, $3)",
        code.as_str(),
        name,
        replaced_on,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn update_profile(
    conn: &mut PgConnection,
    code: &SchoolCode,
    profile: &Profile,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "UPDATE schools_national.schools
         SET name = $2, stages = $3, division = $4, registry_authority = $5, operator_type = $6,
             address = $7, township = $8
         WHERE code = $1",
        code.as_str(),
        profile.name,
        serde_json::to_value(&profile.stages).expect("serializable"),
        profile.division.as_str(),
        profile.registry_authority.as_str(),
        profile.operator_type.as_str(),
        profile.address,
        profile.township,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Voids a code for ever and links it to the school that carries on.
async fn void(
    conn: &mut PgConnection,
    code: &SchoolCode,
    successor: &SchoolCode,
    kind: LineageKind,
    effective_date: NaiveDate,
    reason: &str,
) -> Result<(), SchoolsError> {
    sqlx::query!(
        "UPDATE schools_national.schools SET status = 'voided', open_until = $2 WHERE code = $1",
        code.as_str(),
        effective_date
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO schools_national.lineage (predecessor, successor, kind, effective_date)
         VALUES ($1, $2, $3, $4)",
        code.as_str(),
        successor.as_str(),
        kind.as_str(),
        effective_date
    )
    .execute(&mut *conn)
    .await?;
    record_change(conn, "voided", code, &[], effective_date, reason).await?;
    Ok(())
}

async fn audit_lifecycle(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    before: &SchoolRecord,
    after: &SchoolRecord,
) -> Result<(), SchoolsError> {
    audit(
        conn,
        actor,
        action,
        &format!("school:{}", before.code),
        Some(serde_json::to_value(before).expect("serializable")),
        Some(serde_json::to_value(after).expect("serializable")),
    )
    .await?;
    Ok(())
}
