use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{BoxFuture, FutureExt};
use tokio::sync::Semaphore;
use tower::{Layer, Service};

/// Caps the requests in flight across all connections of a server. A request over the cap is
/// answered at once with `RESOURCE_EXHAUSTED` instead of queueing, so a client can back off
/// while the node keeps its latency for the requests it accepted.
#[derive(Debug, Clone)]
pub struct GlobalConcurrencyLimitLayer {
    permits: Arc<Semaphore>,
}

impl GlobalConcurrencyLimitLayer {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
        }
    }
}

impl<S> Layer<S> for GlobalConcurrencyLimitLayer {
    type Service = GlobalConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GlobalConcurrencyLimit {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GlobalConcurrencyLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GlobalConcurrencyLimit<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let status = tonic::Status::resource_exhausted(
                "the node is at its limit of concurrent requests; retry with backoff",
            );
            return futures::future::ready(Ok(status.into_http())).boxed();
        };
        // Call the instance that was polled ready, keep a fresh clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        async move {
            let response = inner.call(request).await;
            drop(permit);
            response
        }
        .boxed()
    }
}
