//! The rules of the school-code registry, free of transport and storage: what a valid school
//! profile is, how codes are made, which lifecycle step keeps or voids a code, and who endorses
//! an application at each stage.

mod applications;
mod lifecycle;
mod profile;

pub use applications::*;
pub use lifecycle::*;
pub use profile::*;

#[cfg(test)]
mod tests;
