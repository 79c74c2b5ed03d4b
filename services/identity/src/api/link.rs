//! What the province's operators see of its link to the national node.

use xueji_auth::{Caller, Level};
use xueji_proto::identity::v1 as pb;

use super::IdentityApi;
use crate::{IdentityError, national::OutboxBody, store::outbox};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

impl IdentityApi {
    /// Messages the national node rejected for good: a province (or ministry) operator's
    /// concern, since they stand for records the national index does not know as written.
    pub(super) async fn rejected_messages(
        &self,
        caller: &Caller,
        request: pb::ListRejectedMessagesRequest,
    ) -> Result<pb::ListRejectedMessagesResponse, IdentityError> {
        if !matches!(caller.level, Level::Province | Level::Ministry) {
            return Err(IdentityError::PermissionDenied(
                "the province's link to the national node is a province operator's concern".into(),
            ));
        }
        let limit = match request.page_size {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            _ => {
                return Err(IdentityError::invalid(
                    "page_size",
                    format!("must be at most {MAX_PAGE}"),
                ));
            }
        };
        let after = match request.page_token.as_str() {
            "" => 0,
            token => token.parse::<i64>().map_err(|_| {
                IdentityError::invalid("page_token", "is not a token this service issued")
            })?,
        };
        let mut rejected =
            outbox::rejected_messages(self.store.pool(), after, i64::from(limit) + 1).await?;
        let next_page_token = if rejected.len() > limit as usize {
            rejected.truncate(limit as usize);
            rejected
                .last()
                .map(|message| message.sequence.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListRejectedMessagesResponse {
            messages: rejected
                .into_iter()
                .map(|message| {
                    let (kind, registry_number) = match message.body {
                        OutboxBody::IndexStudent {
                            registry_number, ..
                        } => ("index_student", registry_number),
                        OutboxBody::ClaimIdNumber {
                            registry_number, ..
                        } => ("claim_id_number", registry_number),
                        OutboxBody::ReleaseStudent { registry_number } => {
                            ("release_student", registry_number)
                        }
                        OutboxBody::ResolveProblem {
                            registry_number, ..
                        } => ("resolve_problem", registry_number),
                    };
                    pb::RejectedMessage {
                        sequence: u64::try_from(message.sequence).unwrap_or_default(),
                        message_id: message.message_id.to_string(),
                        kind: kind.into(),
                        registry_number,
                        reason: message.reason,
                        written_at: message
                            .written_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    }
                })
                .collect(),
            next_page_token,
        })
    }
}
