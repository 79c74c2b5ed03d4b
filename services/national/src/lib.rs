//! The national node's own service: the national index of registry numbers and resident ID
//! numbers, the national duplicate check, the province directory, and lookups that route a
//! ministry operator to the province owning a student.
//!
//! - [`domain`]: the messages provinces deliver, their checks and outcomes (pure);
//! - [`store`]: all SQL (schema `national`), each delivered message applied once;
//! - [`api`]: the gRPC handlers (`NationalIndex` for provinces, `NationalDirectory` for
//!   operators);
//! - [`provinces`]: the clients the national node asks provinces with;
//! - [`relay`]: the relay of transfer messages between provinces;
//! - [`calendar`]: the official working-day calendar the ministry loads and provinces pull;
//! - [`wiring`]: the one function the node calls to mount the service and its loop.

pub mod api;
pub mod calendar;
pub mod domain;
mod error;
pub mod index_key;
pub mod provinces;
pub mod relay;
pub mod store;
pub mod wiring;
pub mod witness;

pub use error::NationalError;
