//! The transfer service: the four-party approval saga that moves a student's enrollment record
//! from the sending school to the receiving school (DESIGN §5).
//!
//! - [`domain`]: the rules, pure (start checks, province rules, parties, who may decide);
//! - [`store`]: all SQL (schema `transfers`): transfers, their steps, the effects owed to
//!   identity (a transactional outbox), the deadline sweep;
//! - [`saga`]: the use cases (start, decide, cancel, expire deadlines, run effects), on the
//!   approval workflow of `xueji-workflow`;
//! - [`links`]: what the saga needs of other services (identity's ledger, the school list);
//! - [`api`]: the gRPC handlers;
//! - [`adapters`]: the links wired to gRPC;
//! - [`wiring`]: the one function the node calls to mount the service and its loops.

pub mod adapters;
pub mod api;
pub mod domain;
mod error;
pub mod links;
pub mod policy;
pub mod saga;
pub mod store;
pub mod wiring;

pub use error::TransferError;
