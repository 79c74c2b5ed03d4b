//! The relay of transfer messages between provinces: taken once (message id), forwarded in the
//! order taken, per destination province.

use uuid::Uuid;

use super::Store;
use crate::NationalError;

/// A message as the relay takes it, checked for its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub message_id: Uuid,
    pub transfer_id: Uuid,
    /// '' until the owner of the student is found.
    pub to_province: String,
    pub body: Vec<u8>,
    pub kind: RelayedKind,
}

/// What a message is, as far as the relay's rules go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayedKind {
    /// To the student's owner: how the family identified the student.
    HoldRequest(OwnerKey),
    /// The sending province's answer; the registry number it held, if it held.
    HoldAnswer {
        held_number: Option<String>,
    },
    /// A copy of the task; `approved_by`: the provinces whose own signatures approve every
    /// step of theirs in an approved copy.
    TaskUpdate {
        approved_by: Vec<String>,
    },
    CancelRequest,
    /// A record that moved: its registry number (the index's owner changes).
    RecordMoved(String),
}

impl RelayedKind {
    fn name(&self) -> &'static str {
        match self {
            Self::HoldRequest(_) => "hold_request",
            Self::HoldAnswer { .. } => "hold_answer",
            Self::TaskUpdate { .. } => "task_update",
            Self::CancelRequest => "cancel_request",
            Self::RecordMoved(_) => "record_moved",
        }
    }
}

/// What a call to the relay did: how many messages were new, and which it refused, why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    pub accepted: u32,
    pub refused: Vec<(Uuid, String)>,
}

/// The two provinces a transfer is bound to, as the relay recorded them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    receiving: String,
    sending: String,
    registry_number: Option<String>,
    /// The receiving province's approved copy was relayed.
    receiver_approved: bool,
}

/// Whether `kind` may go from `from` to `to` on a transfer bound as `binding`: hold answers
/// and moved records from the sending province to the receiving one, cancellations the other
/// way, task updates either way; never to a third province.
fn direction_refusal(
    binding: &Binding,
    kind: &RelayedKind,
    from: &str,
    to: &str,
) -> Option<String> {
    let (r, s) = (binding.receiving.as_str(), binding.sending.as_str());
    let pair = (from == r && to == s) || (from == s && to == r);
    if !pair {
        return Some(format!(
            "the transfer is between provinces {r} and {s}: province {from} may not send to {to} about it"
        ));
    }
    let allowed = match kind {
        RelayedKind::HoldRequest(_) => false,
        RelayedKind::HoldAnswer { .. } | RelayedKind::RecordMoved(_) => from == s,
        RelayedKind::CancelRequest => from == r,
        RelayedKind::TaskUpdate { .. } => true,
    };
    (!allowed).then(|| {
        format!(
            "a {} goes {} on this transfer",
            kind.name(),
            match kind {
                RelayedKind::CancelRequest => "from the receiving province only",
                RelayedKind::HoldRequest(_) => "once, to the province the index names",
                _ => "from the sending province only",
            }
        )
    })
}

/// How the family identified the student, for finding the province that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerKey {
    RegistryNumber(String),
    IdDigest(crate::index_key::IdDigest),
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
    /// Takes messages from `from`; a message id `from` sent before is skipped. A hold
    /// request is readdressed (or answered) by `readdress` with the owner the index knows, and
    /// binds the transfer to `from` and that owner; every later message must keep to the
    /// binding (see [`direction_refusal`]), and a record that moved must be the number the
    /// hold answered and owned by `from` in the index, whose entry then moves to the message's
    /// province. A message that breaks a rule is not stored: it is answered in
    /// [`Taken::refused`] and audited.
    pub async fn take_relayed(
        &self,
        from: &str,
        messages: &[Relayed],
        readdress: Readdress<'_>,
    ) -> Result<Taken, NationalError> {
        let mut tx = self.pool.begin().await?;
        let mut taken = Taken::default();
        // The provinces a message may be addressed to, read once for the call.
        let directory: Vec<String> = sqlx::query_scalar!("SELECT code FROM national.provinces")
            .fetch_all(&mut *tx)
            .await?;
        for message in messages {
            let seen = sqlx::query_scalar!(
                "SELECT 1 AS \"one!\" FROM national.relay
                 WHERE from_province = $1 AND message_id = $2",
                from,
                message.message_id
            )
            .fetch_optional(&mut *tx)
            .await?;
            if seen.is_some() {
                continue;
            }
            let binding = sqlx::query_as!(
                Binding,
                r#"SELECT receiving, sending, registry_number,
                          receiver_approved_at IS NOT NULL AS "receiver_approved!"
                   FROM national.relay_bindings WHERE transfer_id = $1"#,
                message.transfer_id
            )
            .fetch_optional(&mut *tx)
            .await?;
            let listed = message.to_province.is_empty() || directory.contains(&message.to_province);
            let refusal = match (&message.kind, &binding) {
                _ if !listed => Some(format!(
                    "province {} is not in the national directory",
                    message.to_province
                )),
                (RelayedKind::HoldRequest(_), Some(_)) => {
                    Some("the transfer is bound to its provinces already".to_owned())
                }
                (RelayedKind::HoldRequest(_), None) => None,
                (_, None) => Some(
                    "the relay routed no hold for this transfer: it binds no provinces".to_owned(),
                ),
                (kind, Some(binding)) => {
                    direction_refusal(binding, kind, from, &message.to_province).or_else(|| match (
                        kind,
                        &binding.registry_number,
                    ) {
                        (RelayedKind::RecordMoved(number), Some(held)) if number != held => {
                            Some("the record moved is not the student the hold answered".into())
                        }
                        (RelayedKind::RecordMoved(_), None) => {
                            Some("the sending province's hold held no student".into())
                        }
                        (RelayedKind::RecordMoved(_), _) if !binding.receiver_approved => Some(
                            "the receiving province has not approved this transfer: no record \
                             moves before it does"
                                .into(),
                        ),
                        _ => None,
                    })
                }
            };
            if let Some(reason) = refusal {
                refuse(&mut tx, from, message, &reason).await?;
                taken.refused.push((message.message_id, reason));
                continue;
            }
            if let RelayedKind::RecordMoved(number) = &message.kind {
                // The record left `from` for the message's province: the index follows, once,
                // and only from the province that owns it; otherwise nothing is forwarded.
                let moved = sqlx::query_scalar!(
                    "UPDATE national.students s SET province = $3, updated_at = now()
                     FROM national.numbers n
                     WHERE n.number = $1 AND s.id = n.student_id AND s.province = $2
                       AND s.status <> 'ended'
                     RETURNING s.registry_number",
                    number,
                    from,
                    message.to_province
                )
                .fetch_optional(&mut *tx)
                .await?;
                let Some(registry_number) = moved else {
                    let reason = format!(
                        "the national index does not show province {from} owning the record"
                    );
                    refuse(&mut tx, from, message, &reason).await?;
                    taken.refused.push((message.message_id, reason));
                    continue;
                };
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
            if let (RelayedKind::TaskUpdate { approved_by }, Some(binding)) =
                (&message.kind, &binding)
                && approved_by.contains(&binding.receiving)
            {
                sqlx::query!(
                    "UPDATE national.relay_bindings SET receiver_approved_at = now()
                     WHERE transfer_id = $1 AND receiver_approved_at IS NULL",
                    message.transfer_id
                )
                .execute(&mut *tx)
                .await?;
            }
            if let RelayedKind::HoldAnswer {
                held_number: Some(number),
            } = &message.kind
            {
                sqlx::query!(
                    "UPDATE national.relay_bindings SET registry_number = $2
                     WHERE transfer_id = $1 AND registry_number IS NULL",
                    message.transfer_id,
                    number
                )
                .execute(&mut *tx)
                .await?;
            }
            taken.accepted += 1;
            let addressed = match &message.kind {
                RelayedKind::HoldRequest(key) => {
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
                        OwnerKey::IdDigest(id) => {
                            sqlx::query_scalar!(
                                "SELECT s.province FROM national.id_claims c
                                 JOIN national.students s ON s.id = c.student_id
                                 WHERE c.id_digest = $1 AND s.status <> 'ended'",
                                id.as_str()
                            )
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                    };
                    let owner = owner.filter(|owner| owner != from);
                    if let Some(owner) = &owner {
                        sqlx::query!(
                            "INSERT INTO national.relay_bindings (transfer_id, receiving, sending)
                             VALUES ($1, $2, $3)",
                            message.transfer_id,
                            from,
                            owner
                        )
                        .execute(&mut *tx)
                        .await?;
                    }
                    readdress(message, owner.as_deref())
                }
                _ => Addressed {
                    message_id: message.message_id,
                    to_province: message.to_province.clone(),
                    body: message.body.clone(),
                },
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
        }
        tx.commit().await?;
        Ok(taken)
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

/// Audits a refused message (who sent what about which transfer, and why); nothing of it is
/// stored for forwarding.
async fn refuse(
    conn: &mut sqlx::PgConnection,
    from: &str,
    message: &Relayed,
    reason: &str,
) -> Result<(), NationalError> {
    xueji_audit::record(
        conn,
        &xueji_audit::Entry {
            actor: &format!("service:transfers-{from}"),
            jurisdiction: &format!("{from}0000"),
            action: "national.relay_refused",
            object: &format!("transfer:{}", message.transfer_id),
            before: None,
            after: Some(serde_json::json!({
                "message_id": message.message_id,
                "kind": message.kind.name(),
                "to_province": message.to_province,
                "reason": reason,
            })),
            request_id: "",
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> Binding {
        Binding {
            receiving: "35".into(),
            sending: "34".into(),
            registry_number: None,
            receiver_approved: false,
        }
    }

    #[test]
    fn each_kind_goes_only_its_way_between_the_two_provinces() {
        let b = bound();
        let number = RelayedKind::RecordMoved("G".into());
        let answer = RelayedKind::HoldAnswer { held_number: None };
        let update = RelayedKind::TaskUpdate {
            approved_by: Vec::new(),
        };
        assert!(direction_refusal(&b, &update, "35", "34").is_none());
        assert!(direction_refusal(&b, &update, "34", "35").is_none());
        assert!(direction_refusal(&b, &update, "36", "34").is_some());
        assert!(direction_refusal(&b, &update, "35", "36").is_some());
        assert!(direction_refusal(&b, &RelayedKind::CancelRequest, "35", "34").is_none());
        assert!(direction_refusal(&b, &RelayedKind::CancelRequest, "34", "35").is_some());
        assert!(direction_refusal(&b, &number, "34", "35").is_none());
        assert!(direction_refusal(&b, &number, "35", "34").is_some());
        assert!(direction_refusal(&b, &answer, "34", "35").is_none());
        assert!(direction_refusal(&b, &answer, "35", "34").is_some());
    }
}
