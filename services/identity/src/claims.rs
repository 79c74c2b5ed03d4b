//! The national duplicate check of approval. Before an `L` becomes a `G`, the resident ID number
//! must be claimed for this province; the federation answers that from the national index. A
//! node without a national link uses [`ProvinceOnly`], where the province's own uniqueness
//! (one live record per ID number) is the whole check.

use std::future::Future;

use xueji_codes::ResidentId;

use crate::IdentityError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Granted,
    /// Another province holds a live record with this ID number.
    Refused {
        owner: String,
    },
}

pub trait IdNumberClaims: Send + Sync + 'static {
    fn claim(
        &self,
        resident_id: &ResidentId,
        registry_number: &str,
    ) -> impl Future<Output = Result<ClaimOutcome, IdentityError>> + Send;
}

/// Grants every claim: uniqueness inside the province is enforced by the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProvinceOnly;

impl IdNumberClaims for ProvinceOnly {
    async fn claim(&self, _: &ResidentId, _: &str) -> Result<ClaimOutcome, IdentityError> {
        Ok(ClaimOutcome::Granted)
    }
}
