//! All SQL of the national service (schema `national`).
//!
//! A delivery is applied in one transaction: every message of the batch, its outcome, the
//! notices it raised. A message that introduces a student in a run of first-time entries is
//! remembered by the entry (`introduced_by`); every other message by its row in the inbox, with
//! its outcome. A message id already applied answers `applied` or its stored outcome and applies
//! nothing; two deliveries of one message racing each other collide on the number's or the
//! inbox's primary key and the loser's whole transaction rolls back (the sender retries and
//! reads the outcome).

mod actor;
pub mod calendar;
mod continuation;
mod delivery;
mod entries;
mod indexing;
mod keying;
mod notices;
pub mod relay;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

pub use actor::DeliveryActor;
pub use continuation::CONTINUED_ELSEWHERE;
pub use keying::{Keyed, key_index};

use crate::{NationalError, index_key::IdDigest};

pub const SCHEMA: &str = "national";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    // The index audits its own changes (claims, notices, ownership).
    xueji_audit::migrate(pool).await?;
    xueji_db::migrate_schema(pool, SCHEMA, &MIGRATOR).await
}

/// A province of the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvinceEntry {
    pub code: String,
    pub name: String,
    pub address: String,
    pub identity: String,
    pub indexed_students: i64,
}

/// A student as the index knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub id: i64,
    pub province: String,
    pub registry_number: String,
    pub aliases: Vec<String>,
    pub status: String,
    /// Whether the student holds a national claim on an ID number.
    pub holds_claim: bool,
    pub updated_at: DateTime<Utc>,
}

impl IndexEntry {
    /// The ID number the student holds the claim on: a granted claim makes the current number
    /// `G` + the ID number (the index keeps only its digest).
    pub fn claimed_id_number(&self) -> Option<String> {
        self.registry_number
            .strip_prefix('G')
            .filter(|_| self.holds_claim)
            .map(str::to_owned)
    }
}

/// A notice queued for a province.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeRow {
    pub sequence: i64,
    pub registry_number: String,
    pub kind: String,
    pub other_province: String,
    pub other_registry_number: String,
    pub detail: String,
    pub noticed_at: DateTime<Utc>,
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

    pub async fn upsert_province(
        &self,
        code: &str,
        name: &str,
        address: &str,
        identity: &str,
    ) -> Result<(), NationalError> {
        sqlx::query!(
            "INSERT INTO national.provinces (code, name, address, identity) VALUES ($1, $2, $3, $4)
             ON CONFLICT (code) DO UPDATE
                 SET name = excluded.name, address = excluded.address,
                     identity = excluded.identity, updated_at = now()
             WHERE (provinces.name, provinces.address, provinces.identity)
                   IS DISTINCT FROM (excluded.name, excluded.address, excluded.identity)",
            code,
            name,
            address,
            identity
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn provinces(&self) -> Result<Vec<ProvinceEntry>, NationalError> {
        Ok(sqlx::query_as!(
            ProvinceEntry,
            r#"SELECT p.code, p.name, p.address, p.identity,
                      (SELECT count(*) FROM national.students s
                       WHERE s.province = p.code AND s.status <> 'ended') AS "indexed_students!"
               FROM national.provinces p ORDER BY p.code"#
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn province_address(&self, code: &str) -> Result<Option<String>, NationalError> {
        Ok(sqlx::query_scalar!(
            "SELECT address FROM national.provinces WHERE code = $1",
            code
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The live record of another province than `province` that holds the claim on an ID
    /// number, or reported it: (province, registry number).
    pub async fn id_number_holder(
        &self,
        province: &str,
        id_digest: &IdDigest,
    ) -> Result<Option<(String, String)>, NationalError> {
        Ok(sqlx::query!(
            "SELECT s.province, s.registry_number FROM national.students s
             WHERE s.province <> $1 AND s.status <> 'ended'
               AND (s.id_digest = $2
                    OR s.id IN (SELECT student_id FROM national.id_claims WHERE id_digest = $2))
             ORDER BY s.id LIMIT 1",
            province,
            id_digest.as_str()
        )
        .fetch_optional(&self.pool)
        .await?
        .map(|row| (row.province, row.registry_number)))
    }

    /// Notices for `province` after `after`, oldest first.
    pub async fn notices(
        &self,
        province: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<NoticeRow>, NationalError> {
        Ok(sqlx::query_as!(
            NoticeRow,
            "SELECT sequence, registry_number, kind, other_province, other_registry_number,
                    detail, noticed_at
             FROM national.notices WHERE province = $1 AND sequence > $2
             ORDER BY sequence LIMIT $3",
            province,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The index entry of a registry number (current or alias).
    pub async fn entry_by_number(&self, number: &str) -> Result<Option<IndexEntry>, NationalError> {
        let id = sqlx::query_scalar!(
            "SELECT student_id FROM national.numbers WHERE number = $1",
            number
        )
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.entry(id).await,
            None => Ok(None),
        }
    }

    /// The index entry holding the national claim on an ID number, else the latest reported
    /// with it.
    pub async fn entry_by_id_digest(
        &self,
        id_digest: &IdDigest,
    ) -> Result<Option<IndexEntry>, NationalError> {
        let id = sqlx::query_scalar!(
            r#"SELECT id AS "id!" FROM (
                   SELECT student_id AS id, 0 AS rank FROM national.id_claims WHERE id_digest = $1
                   UNION ALL
                   SELECT id, 1 FROM national.students WHERE id_digest = $1
               ) AS found ORDER BY rank, id DESC LIMIT 1"#,
            id_digest.as_str()
        )
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.entry(id).await,
            None => Ok(None),
        }
    }

    async fn entry(&self, id: i64) -> Result<Option<IndexEntry>, NationalError> {
        Ok(sqlx::query_as!(
            IndexEntry,
            r#"SELECT s.id, s.province, s.registry_number, s.status, s.updated_at,
                      ARRAY(SELECT n.number FROM national.numbers n
                            WHERE n.student_id = s.id AND n.number <> s.registry_number
                            ORDER BY n.number) AS "aliases!",
                      EXISTS (SELECT 1 FROM national.id_claims c WHERE c.student_id = s.id)
                          AS "holds_claim!"
               FROM national.students s WHERE s.id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Row counts: (index entries, claims, messages applied, notices), for tests and operators.
    pub async fn counts(&self) -> Result<(i64, i64, i64, i64), NationalError> {
        let row = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM national.students) AS "students!",
                      (SELECT count(*) FROM national.id_claims) AS "claims!",
                      (SELECT count(*) FROM national.inbox)
                      + (SELECT count(*) FROM national.students WHERE introduced_by IS NOT NULL)
                          AS "messages!",
                      (SELECT count(*) FROM national.notices) AS "notices!""#
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.students, row.claims, row.messages, row.notices))
    }
}
