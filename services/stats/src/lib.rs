//! The statistics service: figures built from the enrollment events identity and transfers
//! produce, never by asking schools to re-type numbers (DESIGN §6).
//!
//! - [`domain`]: the rules, pure: what an event does to each level's count, the monthly change
//!   report and its identity (opening + additions − removals = closing), the ledger that keeps
//!   figures incrementally, and the brute-force recount the ledger is checked against.

pub mod domain;
