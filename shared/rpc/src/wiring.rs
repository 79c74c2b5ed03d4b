//! What a node hands each service so that the service can wire itself: the credentials it
//! calls its peers with, and a [`Mount`] where it adds its gRPC services and background loops.
//!
//! Each service crate has one composition function (`wiring::mount`) that takes these; the
//! node's start is a short list of those calls.

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tonic::{
    body::Body,
    server::NamedService,
    service::{Routes, RoutesBuilder, interceptor::InterceptedService},
    transport::Channel,
};
use xueji_auth::{Authority, Clock, Grant, Level, RenewingToken, Role, TokenSigner};
use xueji_pki::SpiffeId;

use crate::{Authenticator, BearerToken, ClientConfig, ExpectedServer, TlsError, TlsSource};

/// A channel to a peer service that sends a service token on every call.
pub type PeerChannel = InterceptedService<Channel, BearerToken>;

/// How long a service's own token lives; it is renewed when half of that has passed.
const SERVICE_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// How a service reaches a peer: its mTLS client identity and the token it presents (its own,
/// renewed before it expires).
#[derive(Debug, Clone)]
pub struct PeerCredentials {
    pub tls: TlsSource,
    pub request_timeout: Duration,
    pub token: BearerToken,
    /// Identities accepted besides the expected one: a standalone node serves every service,
    /// national and provincial, under its one national certificate.
    pub also_accept: Vec<SpiffeId>,
}

impl PeerCredentials {
    /// A lazily connected channel to `address` that sends this token on every call and talks
    /// only to a server that proves to be `expected` (or one of [`Self::also_accept`]).
    pub fn channel(
        &self,
        address: &str,
        expected: ExpectedServer,
    ) -> Result<PeerChannel, UnreachablePeer> {
        let expected = self
            .also_accept
            .iter()
            .cloned()
            .fold(expected, ExpectedServer::or);
        let client = ClientConfig {
            tls: self.tls.clone(),
            server: expected,
            request_timeout: self.request_timeout,
        };
        let channel = crate::connect_lazy(address, &client).map_err(|source| UnreachablePeer {
            address: address.to_owned(),
            source,
        })?;
        Ok(InterceptedService::new(channel, self.token.clone()))
    }
}

/// A peer's address that does not make a channel (a malformed `host:port`). Each service's
/// error converts it to its own UNAVAILABLE, so adapters simply use `?`.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {address}: {source}")]
pub struct UnreachablePeer {
    pub address: String,
    pub source: tonic::transport::Error,
}

/// Why a service's credentials could not be made at start.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("the {service} service's own token: {source}")]
    Token {
        service: String,
        source: xueji_auth::AuthError,
    },
    #[error("the {service} service's certificate: {source}")]
    Tls { service: String, source: TlsError },
}

/// Makes each service's [`PeerCredentials`] from the node's PKI folder and signing key.
#[derive(Debug, Clone)]
pub struct CredentialMint {
    pub pki_dir: PathBuf,
    pub signer: Arc<TokenSigner>,
    pub clock: Clock,
    pub request_timeout: Duration,
    pub also_accept: Vec<SpiffeId>,
}

impl CredentialMint {
    /// The credentials `service` calls peers with: its own certificate (the node's when the
    /// PKI has none for it) and a token of its own, named `user`, granting
    /// `level`/`jurisdiction` to `audience`.
    pub fn for_service(
        &self,
        service: &str,
        user: &str,
        level: Level,
        jurisdiction: &str,
        audience: Vec<Authority>,
    ) -> Result<PeerCredentials, WiringError> {
        let token = RenewingToken::new(
            self.signer.clone(),
            Grant {
                user: user.to_owned(),
                level,
                jurisdiction: jurisdiction.to_owned(),
                role: Role::Operator,
                audience,
            },
            self.clock.clone(),
            SERVICE_TOKEN_LIFETIME,
        )
        .map_err(|source| WiringError::Token {
            service: service.to_owned(),
            source,
        })?;
        let tls = TlsSource::from_dir(&self.pki_dir, &certificate_stem(&self.pki_dir, service))
            .map_err(|source| WiringError::Tls {
                service: service.to_owned(),
                source,
            })?;
        Ok(PeerCredentials {
            tls,
            request_timeout: self.request_timeout,
            token: BearerToken::renewing(Arc::new(token)),
            also_accept: self.also_accept.clone(),
        })
    }
}

/// The file stem of `service`'s certificate in `pki_dir`: its own, or the node's when the
/// folder has none for it (a standalone node's development PKI).
pub fn certificate_stem(pki_dir: &std::path::Path, service: &str) -> String {
    if pki_dir.join(format!("{service}.pem")).exists() {
        service.to_owned()
    } else {
        xueji_pki::files::NODE.to_owned()
    }
}

/// Where services mount themselves on a node: the gRPC routes (each behind the node's
/// authenticator), the names the health service reports as serving, and the background loops
/// the node stops with it.
pub struct Mount {
    authenticator: Authenticator,
    routes: RoutesBuilder,
    serving: Vec<&'static str>,
    background: Vec<JoinHandle<()>>,
    /// What a reload of the node's policy reads and puts in force, service by service.
    policy_hooks: Vec<Arc<dyn xueji_policy::PolicyHook>>,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("serving", &self.serving)
            .field("background", &self.background.len())
            .finish()
    }
}

impl Mount {
    pub fn new(authenticator: Authenticator) -> Self {
        Self {
            authenticator,
            routes: RoutesBuilder::default(),
            serving: Vec::new(),
            background: Vec::new(),
            policy_hooks: Vec::new(),
        }
    }

    /// A service's policy, for the node to reload without a restart.
    pub fn on_policy_reload(&mut self, hook: Arc<dyn xueji_policy::PolicyHook>) {
        self.policy_hooks.push(hook);
    }

    /// The policies of every service mounted so far.
    pub fn policy_hooks(&self) -> Vec<Arc<dyn xueji_policy::PolicyHook>> {
        self.policy_hooks.clone()
    }

    /// Serves `service` behind the node's authenticator, reported as serving under its name.
    pub fn serve<S>(&mut self, service: S)
    where
        S: tower::Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.serving.push(S::NAME);
        self.routes
            .add_service(InterceptedService::new(service, self.authenticator.clone()));
    }

    /// Runs `task` until the node stops.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.background.push(tokio::spawn(task));
    }

    /// Whether any service was mounted.
    pub fn is_empty(&self) -> bool {
        self.serving.is_empty()
    }

    /// The routes, the names serving, and the background loops.
    pub fn into_parts(self) -> (Routes, Vec<&'static str>, Vec<JoinHandle<()>>) {
        (self.routes.routes(), self.serving, self.background)
    }
}
