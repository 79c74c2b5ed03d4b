use std::time::Duration;

use opentelemetry::propagation::Injector;
use tonic::{
    Request, Status,
    metadata::{MetadataKey, MetadataMap, MetadataValue},
    service::Interceptor,
    transport::{Channel, ClientTlsConfig, Endpoint},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::TlsFiles;

/// How a client reaches a node.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub tls: TlsFiles,
    /// The name the server's certificate must carry (a DNS SAN), e.g. `localhost`.
    pub server_name: String,
    pub request_timeout: Duration,
}

/// A mutual-TLS channel to `address` (`host:port`).
pub async fn connect(
    address: &str,
    config: &ClientConfig,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(config.tls.ca())
        .identity(config.tls.identity())
        .domain_name(config.server_name.clone());
    Endpoint::from_shared(format!("https://{address}"))?
        .tls_config(tls)?
        .timeout(config.request_timeout)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
}

/// A mutual-TLS channel to `address` that connects on first use (and reconnects after a
/// failure): a node links to its peers at start without waiting for them to be up.
pub fn connect_lazy(
    address: &str,
    config: &ClientConfig,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(config.tls.ca())
        .identity(config.tls.identity())
        .domain_name(config.server_name.clone());
    Ok(Endpoint::from_shared(format!("https://{address}"))?
        .tls_config(tls)?
        .timeout(config.request_timeout)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Adds the operator's token and the current trace context to every call.
#[derive(Debug, Clone)]
pub struct BearerToken {
    header: MetadataValue<tonic::metadata::Ascii>,
}

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, Status> {
        let header = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| Status::invalid_argument("the token contains invalid characters"))?;
        Ok(Self { header })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.header.clone());
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
