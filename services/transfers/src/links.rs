//! What the saga needs of other services, as traits the node implements over mutual-TLS gRPC
//! (and tests may implement over the same API).

use chrono::NaiveDate;
use futures::future::BoxFuture;
use uuid::Uuid;
use xueji_codes::SchoolCode;

use crate::{
    TransferError,
    domain::{SchoolFacts, StudentKey},
};

/// The enrollment a transfer holds, as identity answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub registry_number: String,
    pub school_code: String,
    pub grade: u32,
}

/// The identity service's side of transfers (`TransferLedger`). Every call is idempotent on the
/// task id.
pub trait EnrollmentLedger: Send + Sync + std::fmt::Debug {
    /// Locks the enrollment the family's data describe. A refusal is
    /// [`TransferError::Refused`].
    fn hold<'a>(
        &'a self,
        task: Uuid,
        student: &'a StudentKey,
        name: &'a str,
        birth_date: NaiveDate,
    ) -> BoxFuture<'a, Result<Held, TransferError>>;

    /// Releases the lock (no error when it is gone).
    fn release(&self, task: Uuid) -> BoxFuture<'_, Result<(), TransferError>>;

    /// Moves the record to the receiving school.
    fn complete<'a>(
        &'a self,
        task: Uuid,
        receiving_school: &'a str,
        grade: u32,
        entry_date: NaiveDate,
    ) -> BoxFuture<'a, Result<(), TransferError>>;
}

/// The published school list.
pub trait SchoolList: Send + Sync + std::fmt::Debug {
    /// The school under `code`, `None` when the list does not hold it (or it is closed).
    fn school<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Option<SchoolFacts>, TransferError>>;
}
