pub mod domain;
mod error;
pub mod store;
pub use error::SchoolsError;
