//! The layers every request passes: authentication, which attaches the caller or answers
//! UNAUTHENTICATED in the request's own protocol, and the access log.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    auth::{Authenticator, Transport},
    rest::{self, error::ApiError},
};

/// Health checks, reflection and the OpenAPI document are open to all, so that load
/// balancers, grpcurl and API tools can reach them without a token.
fn needs_no_token(path: &str) -> bool {
    path == "/healthz"
        || path == "/openapi.json"
        || path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.")
}

/// Attaches the authenticated caller to each request, or answers UNAUTHENTICATED in the
/// request's own protocol.
pub(super) async fn authenticate(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    if needs_no_token(request.uri().path()) {
        return next.run(request).await;
    }
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|value| value.as_bytes().to_vec());
    let transport = if rest::is_grpc(request.headers()) {
        Transport::Grpc
    } else {
        Transport::Rest
    };
    match authenticator
        .authenticate(header.as_deref(), transport)
        .await
    {
        Ok(caller) => {
            // Every line logged for the request names the token that made it.
            tracing::Span::current().record("caller", caller.name.as_str());
            tracing::debug!(role = %caller.role, "authenticated");
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) if transport == Transport::Grpc => tonic::Status::from(error).into_http(),
        Err(error) => ApiError::Service(error).into_response(),
    }
}

/// The header that carries a request's id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const REQUEST_ID_MAX_CHARS: usize = 128;

/// The client's request id when it sent a usable one (visible ASCII, at most 128
/// characters), else a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= REQUEST_ID_MAX_CHARS
                && id.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// Runs each request in a span carrying its id, so that every log line written while
/// serving it names the request; returns the id in `x-request-id`. Then one structured
/// log line per request, with its outcome and latency, and its metrics. Headers are never
/// logged, so tokens stay out of the logs.
pub(super) async fn log_request(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let grpc = rest::is_grpc(request.headers());
    let id = request_id(&request);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        caller = tracing::field::Empty
    );
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let _entered = span.enter();
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if grpc {
        // A status in the headers is a trailers-only answer, an error; a call that
        // succeeds sends its status in the trailers, after this point.
        crate::metrics::record_grpc(
            &path,
            grpc_status.as_deref().unwrap_or("0"),
            started.elapsed(),
        );
    } else {
        let route = response
            .extensions()
            .get::<rest::RouteTemplate>()
            .map_or("unmatched", |template| template.0.as_str());
        crate::metrics::record_http(
            route,
            method.as_str(),
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        grpc_status = grpc_status.as_deref().unwrap_or(""),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
