//! Authentication and scope of callers.
//!
//! A caller carries a token signed by an authority's Ed25519 key (the national node's, or its
//! province's) that names the user, the level (ministry, province, city, county, school), the
//! jurisdiction (a division code or a school code), the role (operator or approver), the issuer
//! and audience, and its validity window. [`TokenVerifier::verify`] turns a token into a
//! [`Caller`]; [`Caller::may_access`] answers "may this caller touch this object".
//! [`RenewingToken`] is how a service calls its peers on its own behalf without ever expiring.
//!
//! Token format: `xj2.<base64url(JSON claims)>.<base64url(signature)>`, the signature covering
//! everything before the second dot.

mod clock;
mod renew;
mod scope;
mod token;

pub use clock::Clock;
pub use renew::RenewingToken;
pub use scope::{Caller, Jurisdiction, Level, ObjectScope, Role};
pub use token::{
    AuthError, Authority, CLOCK_SKEW, Claims, Grant, MAX_LIFETIME, PublicKey, TokenSigner,
    TokenVerifier, default_audience,
};
