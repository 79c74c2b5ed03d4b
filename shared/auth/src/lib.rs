//! Operator authentication and scope.
//!
//! An operator carries a token signed by the node's Ed25519 key that names the user, the level
//! (ministry, province, city, county, school), the jurisdiction (a division code or a school
//! code), the role (operator or approver) and an expiry. [`TokenVerifier::verify`] turns a token
//! into a [`Caller`]; [`Caller::may_access`] answers "may this caller touch this object".
//!
//! Token format: `xj1.<base64url(JSON claims)>.<base64url(signature)>`, the signature covering
//! everything before the second dot.

mod scope;
mod token;

pub use scope::{Caller, Jurisdiction, Level, ObjectScope, Role};
pub use token::{AuthError, Claims, TokenSigner, TokenVerifier};
