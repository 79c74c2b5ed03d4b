//! The demo federation and the benchmarks: everything `xueji-demo` runs that a production node
//! never does. It drives nodes of `xueji-node` through `xueji-client`, as any operator would.
//!
//! - [`demo`]: the demo federation (national node, Fujian, Anhui on one embedded PostgreSQL)
//!   and the story it runs;
//! - [`bench`]: benchmarks that print figures against a baseline measured in the same run;
//! - [`sample`]: the bundled sample (schools, students);
//! - [`seed`]: the sample school list issued and published on a national node.

pub mod bench;
pub mod demo;
pub mod sample;
pub mod seed;
