//! Who a delivery's audit entries name, and the one way the index's stores write them.

use sqlx::PgConnection;

use crate::NationalError;

/// Who a delivery's audit entries name: the delivering province's service and its request.
#[derive(Debug, Clone)]
pub struct DeliveryActor {
    pub describe: String,
    pub jurisdiction: String,
    pub request_id: String,
}

impl DeliveryActor {
    /// A province's delivery with no request behind it (tests, tools).
    pub fn province(province: &str) -> Self {
        Self {
            describe: format!("service:identity-{province}"),
            jurisdiction: format!("{province}0000"),
            request_id: String::new(),
        }
    }
}

/// Writes one audit entry in the delivery's transaction.
pub(super) async fn audit(
    conn: &mut PgConnection,
    actor: &DeliveryActor,
    action: &str,
    object: &str,
    after: serde_json::Value,
) -> Result<(), NationalError> {
    xueji_audit::record(
        conn,
        &xueji_audit::Entry {
            actor: &actor.describe,
            jurisdiction: &actor.jurisdiction,
            action,
            object,
            before: None,
            after: Some(after),
            request_id: &actor.request_id,
        },
    )
    .await?;
    Ok(())
}
