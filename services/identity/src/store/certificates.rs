//! Certificates (学籍证明, 在读证明): issued with the record's statement and a verification code,
//! read back by the code.

use chrono::{DateTime, Utc};
use xueji_audit::Entry;

use super::{Actor, Store};
use crate::IdentityError;

/// A certificate as stored.
#[derive(Debug, Clone)]
pub struct CertificateRecord {
    pub code: String,
    pub student_id: i64,
    pub kind: String,
    pub statement: serde_json::Value,
    pub issued_at: DateTime<Utc>,
    pub issued_by: String,
}

impl Store {
    /// Keeps a certificate and audits its issue, in one transaction.
    pub async fn issue_certificate(
        &self,
        certificate: &CertificateRecord,
        registry_number: &str,
        actor: Actor<'_>,
    ) -> Result<CertificateRecord, IdentityError> {
        let mut tx = self.pool.begin().await?;
        let issued_at = sqlx::query_scalar!(
            "INSERT INTO identity.certificates (code, student_id, kind, statement, issued_by)
             VALUES ($1, $2, $3, $4, $5) RETURNING issued_at",
            certificate.code,
            certificate.student_id,
            certificate.kind,
            certificate.statement,
            certificate.issued_by
        )
        .fetch_one(&mut *tx)
        .await?;
        xueji_audit::record(
            &mut tx,
            &Entry {
                actor: &actor.caller.describe(),
                jurisdiction: &actor.caller.jurisdiction.as_string(),
                action: "identity.issue_certificate",
                object: &format!("student:{registry_number}"),
                before: None,
                after: Some(serde_json::json!({
                    "code": certificate.code, "kind": certificate.kind,
                })),
                request_id: actor.request_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(CertificateRecord {
            issued_at,
            ..certificate.clone()
        })
    }

    pub async fn certificate(
        &self,
        code: &str,
    ) -> Result<Option<CertificateRecord>, IdentityError> {
        Ok(sqlx::query_as!(
            CertificateRecord,
            "SELECT code, student_id, kind, statement, issued_at, issued_by
             FROM identity.certificates WHERE code = $1",
            code
        )
        .fetch_optional(&self.pool)
        .await?)
    }
}
