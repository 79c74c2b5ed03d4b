//! The end-to-end suite: one binary, a module per area, each test on real nodes over real
//! mutual TLS and a real PostgreSQL. Two suites stay binaries of their own, since they read
//! process-wide state: `memory` (the process's peak memory) and `transfer_trace` (the
//! process's one trace exporter).

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod authorization;
mod calendar;
mod certificates;
mod classes;
mod corrections;
mod demo;
mod desk;
mod docs;
mod federation;
mod identity;
mod imports;
mod pick_up;
mod policy;
mod problems;
mod provincial_fields;
mod relay_trust;
mod scale;
mod school_year;
mod schools;
mod scope;
mod stats;
mod status_changes;
mod tidy;
mod transfers;
mod transfers_across;
mod transfers_chaos;
mod transport;
mod trust;
mod watch_lists;
