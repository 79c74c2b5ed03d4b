//! The provincial node `xueji`: configuration, the running node (database, services, background
//! tasks), and the commands built on it (demo, benchmark, PKI, audit verification).

pub mod bench;
pub mod bench_import;
pub mod bench_promote;
pub mod bench_stats;
pub mod bench_transfer;
pub mod client;
pub mod config;
pub mod demo;
pub mod links;
pub mod node;
pub mod pki;
pub mod sample;
pub mod seed;
pub mod stats_links;
pub mod transfer_links;
pub mod witness;
