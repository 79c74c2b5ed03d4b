//! The relay of transfer messages between provinces: taken once (message id), forwarded in the
//! order taken, per destination province.

use uuid::Uuid;

use super::Store;
use crate::NationalError;

/// A message as the relay takes it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub message_id: Uuid,
    pub transfer_id: Uuid,
    /// '' until the owner of the student is found.
    pub to_province: String,
    pub body: Vec<u8>,
    /// For a message to the student's owner: how the family identified the student.
    pub owner_of: Option<OwnerKey>,
    /// For a record that moved: its registry number (the index's owner changes).
    pub moved_number: Option<String>,
}

/// How the family identified the student, for finding the province that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerKey {
    RegistryNumber(String),
    IdNumber(String),
}

/// What to do with a message addressed to the student's owner, once the owner is known (or
/// not): the body as forwarded, or an answer to send back instead.
pub type Readdress<'a> = &'a (dyn Fn(&Relayed, Option<&str>) -> Addressed + Sync);

/// The message to store for forwarding, addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub message_id: Uuid,
    pub to_province: String,
    pub body: Vec<u8>,
}

/// A batch waiting for one province.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seqs: Vec<i64>,
    pub bodies: Vec<Vec<u8>>,
    pub address: Option<String>,
}

impl Store {
    /// Takes messages from `from`; a message id taken before is skipped. A message to the
    /// student's owner is readdressed (or answered) by `readdress` with the owner the index
    /// knows; a record that moved moves the index's entry to the message's province. Answers
    /// how many were new.
    pub async fn take_relayed(
        &self,
        from: &str,
        messages: &[Relayed],
        readdress: Readdress<'_>,
    ) -> Result<u32, NationalError> {
        let mut tx = self.pool.begin().await?;
        let mut accepted = 0;
        for message in messages {
            let seen = sqlx::query_scalar!(
                "SELECT 1 AS \"one!\" FROM national.relay WHERE message_id = $1",
                message.message_id
            )
            .fetch_optional(&mut *tx)
            .await?;
            if seen.is_some() {
                continue;
            }
            accepted += 1;
            let addressed = match &message.owner_of {
                None => Addressed {
                    message_id: message.message_id,
                    to_province: message.to_province.clone(),
                    body: message.body.clone(),
                },
                Some(key) => {
                    let owner = match key {
                        OwnerKey::RegistryNumber(number) => {
                            sqlx::query_scalar!(
                                "SELECT s.province FROM national.numbers n
                                 JOIN national.students s ON s.id = n.student_id
                                 WHERE n.number = $1 AND s.status <> 'ended'",
                                number
                            )
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                        OwnerKey::IdNumber(id) => {
                            sqlx::query_scalar!(
                                "SELECT s.province FROM national.id_claims c
                                 JOIN national.students s ON s.id = c.student_id
                                 WHERE c.id_number = $1 AND s.status <> 'ended'",
                                id
                            )
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                    };
                    let owner = owner.filter(|owner| owner != from);
                    readdress(message, owner.as_deref())
                }
            };
            if addressed.message_id != message.message_id {
                // Answered here: the original is kept (taken, nothing to forward).
                sqlx::query!(
                    "INSERT INTO national.relay
                         (message_id, transfer_id, from_province, to_province, body, forwarded_at)
                     VALUES ($1, $2, $3, '', $4, now())",
                    message.message_id,
                    message.transfer_id,
                    from,
                    message.body
                )
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query!(
                "INSERT INTO national.relay (message_id, transfer_id, from_province, to_province, body)
                 VALUES ($1, $2, $3, $4, $5)",
                addressed.message_id,
                message.transfer_id,
                from,
                addressed.to_province,
                addressed.body
            )
            .execute(&mut *tx)
            .await?;
            if let Some(number) = &message.moved_number {
                // The record left `from` for the message's province: the index follows, once
                // and only from the province that owned it.
                let moved = sqlx::query_scalar!(
                    "UPDATE national.students s SET province = $3, updated_at = now()
                     FROM national.numbers n
                     WHERE n.number = $1 AND s.id = n.student_id AND s.province = $2
                     RETURNING s.registry_number",
                    number,
                    from,
                    message.to_province
                )
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(registry_number) = moved {
                    xueji_audit::record(
                        &mut tx,
                        &xueji_audit::Entry {
                            actor: &format!("service:transfers-{from}"),
                            jurisdiction: &format!("{from}0000"),
                            action: "national.transfer_owner",
                            object: &format!("student:{registry_number}"),
                            before: Some(serde_json::json!({ "province": from })),
                            after: Some(serde_json::json!({
                                "province": message.to_province, "transfer": message.transfer_id,
                            })),
                            request_id: "",
                        },
                    )
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(accepted)
    }

    /// Provinces with messages waiting.
    pub async fn relay_destinations(&self) -> Result<Vec<String>, NationalError> {
        Ok(sqlx::query_scalar!(
            "SELECT DISTINCT to_province FROM national.relay WHERE forwarded_at IS NULL"
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forwards what waits for `province` through `forward` (oldest first, up to `limit`), one
    /// forwarder per province at a time; marked forwarded once `forward` succeeded. Answers
    /// how many were forwarded (`None`: another forwarder holds the province).
    pub async fn forward_relayed<F, Fut>(
        &self,
        province: &str,
        limit: i64,
        forward: F,
    ) -> Result<Option<usize>, NationalError>
    where
        F: FnOnce(Pending) -> Fut,
        Fut: std::future::Future<Output = Result<(), NationalError>>,
    {
        let mut tx = self.pool.begin().await?;
        let turn = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_xact_lock(hashtextextended('national.relay:' || $1, 0)) AS "taken!""#,
            province
        )
        .fetch_one(&mut *tx)
        .await?;
        if !turn {
            return Ok(None);
        }
        let rows = sqlx::query!(
            "SELECT seq, body FROM national.relay
             WHERE to_province = $1 AND forwarded_at IS NULL ORDER BY seq LIMIT $2",
            province,
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(Some(0));
        }
        let address = sqlx::query_scalar!(
            "SELECT address FROM national.provinces WHERE code = $1",
            province
        )
        .fetch_optional(&mut *tx)
        .await?;
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let count = seqs.len();
        forward(Pending {
            seqs: seqs.clone(),
            bodies: rows.into_iter().map(|r| r.body).collect(),
            address,
        })
        .await?;
        sqlx::query!(
            "UPDATE national.relay SET forwarded_at = now() WHERE seq = ANY($1)",
            &seqs
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(count))
    }

    /// Messages not forwarded yet (for metrics and tests).
    pub async fn relay_backlog(&self) -> Result<i64, NationalError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM national.relay WHERE forwarded_at IS NULL"#
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
