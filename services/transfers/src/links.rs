//! What the saga needs of other services, as traits the node implements over mutual-TLS gRPC
//! (and tests may implement over the same API).

use chrono::NaiveDate;
use futures::future::BoxFuture;
use uuid::Uuid;
use xueji_codes::SchoolCode;
use xueji_proto::{identity::v1::MovedStudent, transfers::v1::SagaMessage};

use crate::{
    TransferError,
    domain::{PublishedYear, SchoolFacts, StudentKey},
};

/// The enrollment a transfer holds, as identity answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub registry_number: String,
    pub school_code: String,
    pub grade: u32,
}

/// Where a transferred record opens: the receiving school, the grade, the day, and who decided
/// the transfer's steps (kept in the record's history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub receiving_school: String,
    pub grade: u32,
    pub entry_date: NaiveDate,
    pub deciders: Vec<String>,
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
        arrival: &'a Arrival,
    ) -> BoxFuture<'a, Result<(), TransferError>>;

    /// The sending half of a transfer to another province: closes the held enrollment and
    /// answers the record, which the saga carries to the other province without reading it.
    fn transfer_out(&self, task: Uuid) -> BoxFuture<'_, Result<MovedStudent, TransferError>>;

    /// The receiving half of a transfer from another province: opens the record here.
    fn transfer_in<'a>(
        &'a self,
        task: Uuid,
        student: &'a MovedStudent,
        arrival: &'a Arrival,
    ) -> BoxFuture<'a, Result<(), TransferError>>;
}

/// The national node's relay: takes messages for other provinces. Delivery is at least once;
/// the national node keeps each message id once. Answers the messages it refused for good
/// (not this transfer's pair, a direction the kind does not allow, a record the sender does
/// not own), each with the relay's reason.
pub trait RelayLink: Send + Sync + std::fmt::Debug {
    fn relay(
        &self,
        messages: Vec<SagaMessage>,
    ) -> BoxFuture<'_, Result<Vec<(Uuid, String)>, TransferError>>;
}

/// The national node's calendar registry: the years the ministry loaded.
pub trait CalendarSource: Send + Sync + std::fmt::Debug {
    /// The years loaded or replaced after national version `version`, by version.
    fn years_after(&self, version: i64)
    -> BoxFuture<'_, Result<Vec<PublishedYear>, TransferError>>;
}

/// The published school list.
pub trait SchoolList: Send + Sync + std::fmt::Debug {
    /// The school under `code`, `None` when the list does not hold it (or it is closed).
    fn school<'a>(
        &'a self,
        code: &'a SchoolCode,
    ) -> BoxFuture<'a, Result<Option<SchoolFacts>, TransferError>>;
}
