use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};

use tonic::{Request, Status, service::Interceptor};
use xueji_auth::{Caller, Clock, TokenVerifier};
use xueji_pki::SpiffeId;

use crate::{AuthorizationMatrix, RequestBudget, RpcMethod};

/// The SPIFFE id of the client certificate a request came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity(pub SpiffeId);

/// The id that ties a request to its log lines, trace and audit entries: the caller's
/// `x-request-id` when it sent a sensible one, otherwise a new UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Authenticates every request of a service: the peer certificate must carry one SPIFFE id, the
/// metadata a valid bearer token. Puts [`PeerIdentity`], [`Caller`] and [`RequestId`] into the
/// request's extensions for the handler.
#[derive(Debug, Clone)]
pub struct Authenticator {
    verifier: Arc<TokenVerifier>,
    /// The time tokens are checked at (moved by hand in tests that live through weeks).
    clock: Clock,
    /// Requests per operator, when limited; services calling on their own behalf are not.
    budget: Option<Arc<RequestBudget>>,
    /// Tokens already verified → the caller each names and when it expires: an operator's tool
    /// sends the same token on every call, and a signature check costs more than the rest of a
    /// small request.
    verified: Arc<Remembered<String, (Caller, DateTime<Utc>)>>,
    /// Client certificates already read, by their DER bytes: a connection presents the same
    /// certificate on every call, and parsing it costs more than the rest of the check.
    peers: Arc<Remembered<Vec<u8>, SpiffeId>>,
}

/// Distinct tokens, and distinct client certificates, remembered at most.
const REMEMBERED: usize = 10_000;

/// A map of results worth keeping between requests, bounded: it starts over when full.
#[derive(Debug)]
struct Remembered<K, V> {
    entries: RwLock<HashMap<K, V>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Remembered<K, V> {
    fn new() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.entries.read().expect("not poisoned").get(key).cloned()
    }

    fn remember(&self, key: K, value: V) {
        let mut entries = self.entries.write().expect("not poisoned");
        if entries.len() >= REMEMBERED {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

impl Authenticator {
    pub fn new(verifier: TokenVerifier, clock: Clock) -> Self {
        Self {
            verifier: Arc::new(verifier),
            clock,
            budget: None,
            verified: Arc::new(Remembered::new()),
            peers: Arc::new(Remembered::new()),
        }
    }

    /// Limits each operator (an operator certificate and the user its token names) to
    /// `budget`; past it, calls answer RESOURCE_EXHAUSTED until the budget refills.
    pub fn with_budget(mut self, budget: RequestBudget) -> Self {
        self.budget = Some(Arc::new(budget));
        self
    }

    /// The SPIFFE id of a client certificate the TLS handshake already verified.
    fn peer_for(&self, der: &[u8]) -> Result<SpiffeId, Status> {
        if let Some(peer) = self.peers.get(der) {
            return Ok(peer);
        }
        let peer = xueji_pki::spiffe_id_of(der)
            .map_err(|e| Status::unauthenticated(format!("client certificate refused: {e}")))?;
        self.peers.remember(der.to_vec(), peer.clone());
        Ok(peer)
    }

    fn caller_for(&self, token: &str) -> Result<Caller, Status> {
        let now = self.clock.now();
        if let Some((caller, expiry)) = self.verified.get(token)
            && expiry > now
        {
            return Ok(caller);
        }
        let (caller, expiry) = self
            .verifier
            .verify_until(token, now)
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        self.verified
            .remember(token.to_owned(), (caller.clone(), expiry));
        Ok(caller)
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let certificates = request
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let peer = self.peer_for(
            certificates
                .first()
                .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?,
        )?;

        let token = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated(xueji_auth::AuthError::Missing.to_string()))?;
        // Before the token: a service calling an RPC outside its row learns nothing more.
        let method = request
            .extensions()
            .get::<RpcMethod>()
            .ok_or_else(|| crate::internal_status("the request was not tagged with its RPC"))?;
        AuthorizationMatrix::bundled()
            .admits(&peer, method.path())
            .map_err(Status::permission_denied)?;
        let caller = self.caller_for(token.trim())?;
        may_speak_for(&peer, &caller)?;
        if let Some(budget) = &self.budget
            && peer.is_operator()
        {
            let who = format!("{peer} {}", caller.describe());
            budget
                .spend(&who, std::time::Instant::now())
                .map_err(|wait| {
                    Status::resource_exhausted(format!(
                        "{} is over its budget of {} requests a second; retry in {} ms",
                        caller.user,
                        budget.per_second(),
                        wait.as_millis().max(1)
                    ))
                })?;
        }

        let request_id = request
            .metadata()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|id| {
                !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(str::to_owned)
            .unwrap_or_else(|| {
                // From the thread's generator: `new_v4` would ask the kernel on every call.
                uuid::Builder::from_random_bytes(rand::random())
                    .into_uuid()
                    .to_string()
            });
        let span = tracing::Span::current();
        if !span.is_disabled() {
            span.record("user", caller.describe());
        }
        let extensions = request.extensions_mut();
        extensions.insert(PeerIdentity(peer));
        extensions.insert(caller);
        extensions.insert(RequestId(request_id));
        Ok(request)
    }
}

/// A province's certificate acts only for that province: the token it carries must name a
/// jurisdiction inside it. The whole nation (ministry tokens) needs a national certificate.
fn may_speak_for(peer: &SpiffeId, caller: &Caller) -> Result<(), Status> {
    let Some(province) = peer.province() else {
        return Ok(());
    };
    match caller.jurisdiction.province_digits() {
        Some(digits) if digits == province => Ok(()),
        Some(digits) => Err(Status::permission_denied(format!(
            "the certificate {peer} acts for province {province} only, not for province {digits}"
        ))),
        None => Err(Status::permission_denied(format!(
            "the certificate {peer} acts for province {province} only, not for the whole nation"
        ))),
    }
}

/// The SPIFFE id of the peer certificate of a request that passed [`Authenticator`].
pub fn peer<T>(request: &Request<T>) -> Result<&SpiffeId, Status> {
    request
        .extensions()
        .get::<PeerIdentity>()
        .map(|peer| &peer.0)
        .ok_or_else(|| Status::unauthenticated("request was not authenticated"))
}

/// The authenticated caller and request id of a request that passed [`Authenticator`].
pub fn caller<T>(request: &Request<T>) -> Result<(&Caller, &str), Status> {
    let caller = request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("request was not authenticated"))?;
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.as_str())
        .unwrap_or_default();
    Ok((caller, request_id))
}
