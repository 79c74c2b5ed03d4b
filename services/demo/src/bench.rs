//! Benchmarks: each prints its figures against a baseline measured in the same run.
//!
//! - [`register`]: a bare INSERT against RegisterStudent over mTLS gRPC;
//! - [`import`]: a bulk import against the registration it is made of;
//! - [`promote`]: the school year's promotion over millions of students;
//! - [`stats`]: the change feed and the monthly report over millions of students;
//! - [`transfer`]: transfers through their four approvals, concurrently.

// A benchmark's baseline is the bare SQL its service is measured against.
#![allow(clippy::disallowed_methods)]

pub mod import;
pub mod promote;
pub mod register;
pub mod stats;
pub mod transfer;
