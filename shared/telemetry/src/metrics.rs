//! Prometheus metrics of a node: counters the services bump, served as text at
//! `GET /metrics` on the node's `metrics_listen` address (plain HTTP/1.1, for a scraper on the
//! node's own network).

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};
use tokio::net::TcpListener;

/// The counters of one node. Cheap to clone: clones count together.
#[derive(Debug, Clone, Default)]
pub struct NodeMetrics {
    /// Outbox messages the national node took (applied, granted, refused or rejected).
    pub outbox_delivered: Counter,
    /// Outbox messages the national node rejected for good (kept with the reason, skipped).
    pub outbox_rejected: Counter,
    /// Audit chain heads this node had witnessed, and attempts that failed.
    pub audit_heads_witnessed: Counter,
    pub audit_witness_failures: Counter,
    /// On the national node: heads that contradicted one witnessed before (a rewritten or
    /// shortened chain). Anything but zero needs an operator.
    pub audit_witness_alarms: Counter,
    /// Open transfer steps whose deadline reaches a year whose calendar is not loaded
    /// (counted on weekends and the statutory holidays): anything but zero means the next
    /// year's calendar is due.
    pub transfer_deadlines_estimated: Gauge,
    /// Open transfer steps past their deadline (the sweeper acts on them each round).
    pub transfer_steps_overdue: Gauge,
    /// Effects the transfer service owes identity (record moves, releases) not yet done.
    pub transfer_effects_pending: Gauge,
    /// Messages from other provinces set aside for good: anything but zero needs an operator
    /// (`xuejictl transfer set-aside`).
    pub transfer_messages_set_aside: Gauge,
}

impl NodeMetrics {
    /// The counters, registered for exposition.
    pub fn registered() -> (Self, Registry) {
        let metrics = Self::default();
        let mut registry = Registry::with_prefix("xueji");
        registry.register(
            "outbox_delivered",
            "Outbox messages the national node took",
            metrics.outbox_delivered.clone(),
        );
        registry.register(
            "outbox_rejected",
            "Outbox messages the national node rejected for good (see ListRejectedMessages)",
            metrics.outbox_rejected.clone(),
        );
        registry.register(
            "audit_heads_witnessed",
            "Audit chain heads the national node witnessed for this node",
            metrics.audit_heads_witnessed.clone(),
        );
        registry.register(
            "audit_witness_failures",
            "Attempts to have the audit chain head witnessed that failed",
            metrics.audit_witness_failures.clone(),
        );
        registry.register(
            "audit_witness_alarms",
            "Audit heads refused for contradicting one witnessed before (rewritten chains)",
            metrics.audit_witness_alarms.clone(),
        );
        registry.register(
            "transfer_deadlines_estimated",
            "Open transfer steps whose deadline reaches a year whose calendar is not loaded",
            metrics.transfer_deadlines_estimated.clone(),
        );
        registry.register(
            "transfer_steps_overdue",
            "Open transfer steps past their deadline",
            metrics.transfer_steps_overdue.clone(),
        );
        registry.register(
            "transfer_effects_pending",
            "Record moves and releases the transfer service still owes identity",
            metrics.transfer_effects_pending.clone(),
        );
        registry.register(
            "transfer_messages_set_aside",
            "Messages from other provinces the transfer service set aside for good",
            metrics.transfer_messages_set_aside.clone(),
        );
        (metrics, registry)
    }
}

/// Serves `registry` at `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, registry: Registry, shutdown: impl Future<Output = ()>) {
    let registry = Arc::new(registry);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a metrics connection failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let registry = registry.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&registry, &request)) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics connection ended");
            }
        });
    }
}

fn answer<B>(registry: &Registry, request: &Request<B>) -> Response<Full<Bytes>> {
    let respond = |status, content_type, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if request.uri().path() != "/metrics" {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".into(),
        );
    }
    let mut text = String::new();
    match encode(&mut text, registry) {
        Ok(()) => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        ),
        Err(error) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("metrics could not be encoded: {error}\n"),
        ),
    }
}
