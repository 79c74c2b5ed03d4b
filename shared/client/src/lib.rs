//! What an operator's tool needs to reach a node, shared by `xuejictl`, the demo, the
//! benchmarks and the tests, so that no client depends on a server crate.
//!
//! - [`channel`]: a mutual-TLS channel with a bearer token, and a typed client per service.
//! - [`tokens`]: tokens minted from a node's signing key.
//! - [`imports`]: a spreadsheet streamed up as an import (with progress), a file streamed down.
//! - [`replica`]: a school of the province's replica, as the services that consult it read it.
//! - [`export`]: the statistics service's figures as CSV or XLSX.

pub mod channel;
pub mod export;
pub mod imports;
pub mod print;
pub mod replica;
pub mod tokens;

pub use channel::*;
pub use imports::{ImportClient, ImportKind, download, import_client, upload, upload_pieces};
pub use tokens::{mint, mint_at, mint_for};
