//! The node `xueji`: its configuration, and the running node (database, each service mounted
//! through its crate's `wiring`, the node's own background tasks). The binary adds the PKI and
//! audit commands; the demo and the benchmarks live in `xueji-demo`.
//!
//! - [`config`]: the TOML configuration and its `XUEJI_*` overrides, checked whole;
//! - [`node`]: [`node::RunningNode`], started from a configuration and a database;
//! - [`database`]: the database a node uses (given or embedded), migrated for its tier;
//! - `services`: each service's settings read from the configuration;
//! - [`pki`]: the development PKI and the token keys;
//! - [`witness`]: the audit chain's heads witnessed by the national node.

pub mod config;
pub mod database;
pub mod node;
pub mod pki;
pub mod policy;
mod services;
pub mod witness;
