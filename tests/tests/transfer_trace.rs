//! One OpenTelemetry trace follows a transfer between provinces across the three nodes: the
//! test is the OTLP collector the nodes export to (its own binary, as the exporter is
//! process-wide).

// Test code: a panic is the failure message, and a test's own SQL reads the tables it checks.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use tonic::{Request, Response, Status};
use xueji_auth::{Level, Role};
use xueji_proto::transfers::v1 as tpb;
use xueji_tests::{
    federation::Federation,
    transfers::{active_student, approve_step_across, eventually, start_request, state_in},
};

/// A span as received: name, trace id, string attributes.
type Received = (String, Vec<u8>, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            Value::StringValue(text) => Some((kv.key.clone(), text.clone())),
                            _ => None,
                        })
                        .collect();
                    spans.push((span.name, span.trace_id, attributes));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_transfer_across_the_three_nodes() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let telemetry = xueji_telemetry::init_exporting(
        "xueji-trace-test",
        "info",
        Some(format!("http://{address}")),
    )
    .expect("telemetry");

    let federation = Federation::start().await;
    let receiving = federation.primary_schools("35").await[0].clone();
    let sending = federation.primary_schools("34").await[0].clone();
    let (number, name, birth) = active_student(&federation, "34", &sending).await;
    federation.delivered("34").await;
    let started = federation
        .transfers("35", Level::School, &receiving, Role::Operator)
        .await
        .start_transfer(start_request(&receiving, &number, &name, &birth))
        .await
        .expect("started")
        .into_inner()
        .transfer
        .expect("transfer");
    let id = started.id.clone();
    for position in 0..3 {
        approve_step_across(&federation, "35", &id, position).await;
    }
    eventually("the transfer completes", async || {
        state_in(&federation, "35", &id).await.as_deref() == Some("completed")
    })
    .await;
    let _: tpb::Transfer = started;

    // Flushes every span to the collector.
    drop(telemetry);
    let spans = collector.spans.lock().unwrap().clone();
    let trace = spans
        .iter()
        .find(|(name, _, attributes)| {
            name == "transfer_message"
                && attributes.iter().any(|(k, v)| k == "transfer" && *v == id)
        })
        .map(|(_, trace, _)| trace.clone())
        .expect("a span of the transfer's messages");
    let in_trace = |name: &str, key: &str, value: &str| {
        spans.iter().any(|(n, t, attributes)| {
            n == name && *t == trace && attributes.iter().any(|(k, v)| k == key && v == value)
        })
    };
    // The receiving province's start, …
    assert!(
        in_trace(
            "grpc",
            "method",
            "/xueji.transfers.v1.TransferService/StartTransfer"
        ),
        "the start's request span is the trace's root"
    );
    // … the national node relaying each way, …
    assert!(
        in_trace("relay_message", "from", "35"),
        "the relay of Fujian's messages"
    );
    assert!(
        in_trace("relay_message", "from", "34"),
        "the relay of Anhui's messages"
    );
    // … Anhui applying Fujian's messages and Fujian applying Anhui's.
    assert!(in_trace("transfer_message", "from", "35"), "Anhui's side");
    assert!(in_trace("transfer_message", "from", "34"), "Fujian's side");
}
