//! The school-code registry, in its two roles.
//!
//! - National (the authority): [`api::authority`] over [`store::national`] — receives endorsed
//!   applications, issues codes, applies the lifecycle rules, publishes versions.
//! - Provincial (intake and replica): [`api::intake`] over [`store::provincial`] — applications
//!   from county to province, the replica of the publications, local lookups; [`replica`]
//!   pulls from the national authority.
//!
//! [`domain`] holds the rules (no transport, no storage); `registry` the national role's use
//! cases (checked domain values in, records out) the handlers call; [`links`] the clients to the other
//! services the registry asks (the national authority, provinces' identity services);
//! [`wiring`] the functions the node calls to mount either role.

pub mod api;
pub mod domain;
mod error;
pub mod links;
mod registry;
pub mod replica;
pub mod store;
pub mod wiring;

pub use error::SchoolsError;
