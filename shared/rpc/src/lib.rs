//! The gRPC stack every Xueji service runs on, server and client side:
//!
//! - mutual TLS (rustls): a server accepts only clients whose certificate chains to the node's
//!   CA and names its holder in exactly one SPIFFE URI SAN ([`PeerIdentity`]);
//! - operator authentication: a bearer token verified into a [`xueji_auth::Caller`] placed in
//!   the request's extensions ([`Authenticator`]);
//! - tracing: one span per request, parented on the W3C trace context of the request's metadata,
//!   and a request id for audit entries ([`RequestId`]);
//! - limits: per-request timeout, node-wide concurrency limit answering `RESOURCE_EXHAUSTED`,
//!   message-size and HTTP/2 stream limits;
//! - gRPC health and reflection;
//! - wiring: the credentials a service calls its peers with and the [`Mount`] it adds its
//!   services and background loops to.

mod budget;
mod client;
mod describe;
mod evidence;
mod fields;
mod interceptor;
mod limit;
mod matrix;
mod server;
mod tls;
mod verify;
mod wiring;

pub use budget::RequestBudget;
pub use client::{BearerToken, ClientConfig, connect, connect_lazy};
pub use describe::{code_name, describe_status};
pub use evidence::{Evidence, EvidenceError};
pub use fields::{
    ERROR_DOMAIN, field_status, internal_status, invalid_argument, national_code, refusal,
    refusal_with,
};
pub use interceptor::{Authenticator, PeerIdentity, RequestId, caller, peer};
pub use limit::GlobalConcurrencyLimitLayer;
pub use matrix::{AuthorizationMatrix, Row, RpcMethod, SERVICE_PRINCIPALS};
pub use server::{ServerConfig, serve};
pub use tls::{TlsError, TlsFiles, TlsSource};
pub use verify::ExpectedServer;
pub use wiring::{
    CredentialMint, Mount, PeerChannel, PeerCredentials, UnreachablePeer, WiringError,
    certificate_stem,
};

/// Largest message a service decodes or encodes (4 MiB), applied per service.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
