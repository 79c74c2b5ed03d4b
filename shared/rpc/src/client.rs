use std::{sync::Arc, time::Duration};

use hyper_util::rt::TokioIo;
use opentelemetry::propagation::Injector;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::{
    Request, Status,
    metadata::{MetadataKey, MetadataMap, MetadataValue},
    service::Interceptor,
    transport::{Channel, Endpoint, Uri},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use xueji_auth::RenewingToken;

use crate::{ExpectedServer, TlsSource};

/// How a client reaches a node.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub tls: TlsSource,
    /// The identity the server's certificate must carry (its SPIFFE id, checked along with the
    /// issuer allowed to grant it; DNS names play no part).
    pub server: ExpectedServer,
    pub request_timeout: Duration,
}

/// A mutual-TLS channel to `address` (`host:port`), connected now.
pub async fn connect(
    address: &str,
    config: &ClientConfig,
) -> Result<Channel, tonic::transport::Error> {
    endpoint(address, config)?
        .connect_with_connector(tls_connector(config))
        .await
}

/// A mutual-TLS channel to `address` that connects on first use (and reconnects after a
/// failure): a node links to its peers at start without waiting for them to be up.
pub fn connect_lazy(
    address: &str,
    config: &ClientConfig,
) -> Result<Channel, tonic::transport::Error> {
    Ok(endpoint(address, config)?.connect_with_connector_lazy(tls_connector(config)))
}

fn endpoint(address: &str, config: &ClientConfig) -> Result<Endpoint, tonic::transport::Error> {
    // TLS is done by our connector (with material that may be reloaded), so the channel
    // itself speaks plain HTTP/2 over it.
    Ok(Endpoint::from_shared(format!("http://{address}"))?
        .timeout(config.request_timeout)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true))
}

type TlsIo = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

/// Opens TCP, then TLS with the client material current at connect time, checking that the
/// server is `config.server`.
fn tls_connector(
    config: &ClientConfig,
) -> impl tower::Service<
    Uri,
    Response = TlsIo,
    Error = std::io::Error,
    Future = futures::future::BoxFuture<'static, std::io::Result<TlsIo>>,
> + Send
+ Clone
+ 'static {
    let tls = config.tls.clone();
    let expected = config.server.clone();
    tower::service_fn(move |uri: Uri| {
        let tls = tls.clone();
        let expected = expected.clone();
        let connect: futures::future::BoxFuture<'static, std::io::Result<TlsIo>> =
            Box::pin(async move {
                let invalid =
                    |detail: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, detail);
                let host = uri
                    .host()
                    .ok_or_else(|| invalid(format!("{uri} has no host")))?;
                let port = uri.port_u16().unwrap_or(443);
                let stream = TcpStream::connect((host, port)).await?;
                stream.set_nodelay(true)?;
                // The name only fills the handshake's SNI; the server is checked by identity.
                let name =
                    rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap_or_else(|_| {
                        rustls::pki_types::ServerName::from(std::net::Ipv4Addr::LOCALHOST)
                    });
                let config = tls
                    .client_config(&expected)
                    .map_err(|e| invalid(e.to_string()))?;
                let stream = TlsConnector::from(config).connect(name, stream).await?;
                Ok(TokioIo::new(stream))
            });
        connect
    })
}

/// Adds a bearer token and the current trace context to every call: an operator's token as
/// given, or a service's own, renewed before it expires.
#[derive(Debug, Clone)]
pub struct BearerToken {
    source: TokenSource,
}

#[derive(Debug, Clone)]
enum TokenSource {
    Fixed(MetadataValue<tonic::metadata::Ascii>),
    Renewing(Arc<RenewingToken>),
}

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, Status> {
        Ok(Self {
            source: TokenSource::Fixed(header(token)?),
        })
    }

    /// The current token of `token` on every call.
    pub fn renewing(token: Arc<RenewingToken>) -> Self {
        Self {
            source: TokenSource::Renewing(token),
        }
    }
}

fn header(token: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, Status> {
    format!("Bearer {}", token.trim())
        .parse()
        .map_err(|_| Status::invalid_argument("the token contains invalid characters"))
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = match &self.source {
            TokenSource::Fixed(header) => header.clone(),
            TokenSource::Renewing(token) => header(&token.current())?,
        };
        request.metadata_mut().insert("authorization", header);
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()))
        });
        Ok(request)
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), value.parse()) {
            self.0.insert(key, value);
        }
    }
}
