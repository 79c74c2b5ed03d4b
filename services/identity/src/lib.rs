//! The identity service: students, registry numbers, the enrollment record and its approval,
//! duplicate checks and problem records.
//!
//! - [`domain`]: the rules, pure (no transport, no storage);
//! - [`store`]: all SQL;
//! - [`api`]: the gRPC handlers (decode, authorize, call the domain and the store, map errors);
//! - [`batcher`]: group commit of concurrent registrations;
//! - [`national`]: the outbox to the national node and its notices, and their deliverer;
//! - [`adapters`]: the ports wired to gRPC (the school replica, the national index);
//! - [`wiring`]: the one function the node calls to mount the service and its loops.

mod adapters;
mod api;
mod batcher;
pub mod cycle;
mod directory;
pub mod domain;
mod error;
pub mod fixed_schools;
pub mod imports;
pub mod national;
pub mod policy;
mod registrar;
mod scans;
mod status_changes;
pub mod store;
mod successions;
pub mod wiring;

pub use error::IdentityError;
