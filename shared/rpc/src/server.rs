use std::{collections::HashMap, future::Future, net::IpAddr, sync::Arc, time::Duration};

use opentelemetry::propagation::Extractor;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{service::Routes, transport::Server};
use tonic_health::ServingStatus;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{GlobalConcurrencyLimitLayer, TlsSource};

/// How a node serves gRPC.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub tls: TlsSource,
    /// Longest a handler may run before the call fails.
    pub request_timeout: Duration,
    /// Requests in flight across all connections; more are refused with `RESOURCE_EXHAUSTED`.
    pub concurrency_limit: usize,
    /// HTTP/2 streams one connection may open at once.
    pub max_concurrent_streams: u32,
}

impl ServerConfig {
    pub fn new(tls: TlsSource) -> Self {
        Self {
            tls,
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 1024,
            max_concurrent_streams: 256,
        }
    }
}

/// Serves `routes` plus health and reflection on `listener` with mutual TLS until `shutdown`
/// completes. `serving` names the services health reports as SERVING.
pub async fn serve(
    config: ServerConfig,
    listener: TcpListener,
    routes: Routes,
    serving: Vec<&'static str>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in serving {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    health.set_service_status("", ServingStatus::Serving).await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(xueji_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("bundled descriptors are valid");
    // Older tools (grpcurl, some grpcio versions) still ask the v1alpha service.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("bundled descriptors are valid");

    let incoming = ReceiverStream::new(accept_tls(listener, config.tls.clone()));
    Server::builder()
        .timeout(config.request_timeout)
        .max_concurrent_streams(config.max_concurrent_streams)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .http2_max_header_list_size(64 * 1024)
        .tcp_nodelay(true)
        .trace_fn(request_span)
        .layer(GlobalConcurrencyLimitLayer::new(config.concurrency_limit))
        // The Authenticator checks the RPC against the authorization matrix.
        .layer(tower::util::MapRequestLayer::new(
            crate::matrix::tag_method::<tonic::body::Body>,
        ))
        .add_routes(routes)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Handshakes one peer address may have in progress at once; its further connections are
/// closed at once. There is no node-wide gate: a client holding silent connections open fills
/// only its own share, and every other peer still gets through.
const HANDSHAKES_PER_PEER: usize = 32;

/// The longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Handshakes in progress per peer address.
#[derive(Debug, Default)]
struct PendingHandshakes(std::sync::Mutex<HashMap<IpAddr, usize>>);

/// One handshake's place in [`PendingHandshakes`], given back when it ends.
struct HandshakeSlot {
    pending: Arc<PendingHandshakes>,
    peer: IpAddr,
}

impl PendingHandshakes {
    fn take(self: &Arc<Self>, peer: IpAddr) -> Option<HandshakeSlot> {
        let mut pending = self.0.lock().expect("not poisoned");
        let count = pending.entry(peer).or_default();
        if *count >= HANDSHAKES_PER_PEER {
            return None;
        }
        *count += 1;
        Some(HandshakeSlot {
            pending: self.clone(),
            peer,
        })
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut pending = self.pending.0.lock().expect("not poisoned");
        if let Some(count) = pending.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                pending.remove(&self.peer);
            }
        }
    }
}

/// Accepts connections and completes their TLS handshakes with the material current at accept
/// time (so replaced certificates apply to new connections without a restart). Handshakes run
/// concurrently, each under its own timeout, at most [`HANDSHAKES_PER_PEER`] per peer address;
/// failed ones are logged and dropped.
fn accept_tls(
    listener: TcpListener,
    tls: TlsSource,
) -> tokio::sync::mpsc::Receiver<std::io::Result<TlsStream<TcpStream>>> {
    let (ready, incoming) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let pending = Arc::new(PendingHandshakes::default());
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = ready.closed() => return,
            };
            let Some(slot) = pending.take(peer.ip()) else {
                tracing::debug!(%peer, "too many handshakes in progress from this address");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.server_config());
            let ready = ready.clone();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                drop(slot);
                match handshake {
                    Ok(Ok(stream)) => {
                        let _ = ready.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => tracing::info!(%peer, %error, "TLS handshake refused"),
                    Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    incoming
}

/// One span per request, continuing the caller's trace when its metadata carries one.
fn request_span(request: &http::Request<()>) -> tracing::Span {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let span = tracing::info_span!(
        "grpc",
        method = %request.uri().path(),
        user = tracing::field::Empty,
    );
    let _ = span.set_parent(parent);
    span
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}
