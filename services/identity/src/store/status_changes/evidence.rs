//! Evidence files attached to a status change: kept by content hash, listed, read back.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use xueji_audit::Entry;

use crate::IdentityError;
use crate::store::{Actor, Store};

use super::*;

impl Store {
    /// Stores an evidence file (already checked) for a student; audited.
    pub async fn add_evidence(
        &self,
        file: &EvidenceFile,
        content: &[u8],
        registry_number: &str,
        actor: Actor<'_>,
    ) -> Result<(), IdentityError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "INSERT INTO identity.evidence
                 (id, student_id, file_name, media_type, size, sha256, content, uploaded_by,
                  uploaded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            file.id,
            file.student_id,
            file.file_name,
            file.media_type,
            file.size,
            file.sha256,
            content,
            file.uploaded_by,
            file.uploaded_at
        )
        .execute(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.upload_evidence",
                object: &format!("student:{registry_number}"),
                before: None,
                after: Some(serde_json::json!({
                    "evidence": file.id, "file_name": file.file_name,
                    "media_type": file.media_type, "size": file.size,
                    "sha256": hex(&file.sha256),
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An evidence file and its content.
    pub async fn evidence(
        &self,
        id: Uuid,
    ) -> Result<Option<(EvidenceFile, Vec<u8>)>, IdentityError> {
        let row = sqlx::query!(
            "SELECT id, student_id, file_name, media_type, size, sha256, content, uploaded_by,
                    uploaded_at
             FROM identity.evidence WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| {
            (
                EvidenceFile {
                    id: row.id,
                    student_id: row.student_id,
                    file_name: row.file_name,
                    media_type: row.media_type,
                    size: row.size,
                    sha256: row.sha256,
                    uploaded_by: row.uploaded_by,
                    uploaded_at: row.uploaded_at,
                },
                row.content,
            )
        }))
    }
}

/// An evidence file's description (the content is read on its own).
#[derive(Debug, Clone)]
pub struct EvidenceFile {
    pub id: Uuid,
    pub student_id: i64,
    pub file_name: String,
    pub media_type: String,
    pub size: i32,
    pub sha256: Vec<u8>,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
}
