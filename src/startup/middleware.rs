//! The layer every request passes: it names the request, authenticates it (attaching the
//! caller, or answering UNAUTHENTICATED in the request's own protocol), runs it in a span
//! carrying its id and caller, and then writes its access-log line and its metrics.
//!
//! It is one layer rather than several because it runs on every request: each layer
//! costs a boxed future and a service clone, and recording the caller into a span after
//! the span was made costs a second formatting of its fields.

use std::sync::Arc;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tracing::Instrument;

use crate::{
    auth::{Authenticator, Transport},
    domain::{access::Caller, rate_limit::CallKind},
    error::Error,
    rate_limits::{Admission, Quota, RateLimiter},
    rest::{self, error::ApiError},
    telemetry::access::{self, AccessRecord},
};

/// What every request passes before it runs: who is calling, and whether the caller's
/// token may call again now.
pub(super) struct Gate {
    pub(super) authenticator: Authenticator,
    pub(super) limiter: RateLimiter,
}

/// The board's page and assets: the page asks for a token for the data it reads.
fn is_board(path: &str) -> bool {
    path == rest::board::PAGE || path == "/ui" || path.starts_with(rest::board::ASSETS)
}

/// Health checks, reflection, the OpenAPI document and the board's page are open to all,
/// so that load balancers, grpcurl, API tools and browsers can reach them without a token.
fn needs_no_token(path: &str) -> bool {
    is_board(path)
        || path == "/healthz"
        || path == "/openapi.json"
        || path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.")
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
        .map_or_else(new_request_id, str::to_owned)
}

/// A new request id: 32 hex digits, a random half drawn once per process and a counter.
/// Unique across processes and restarts without asking the kernel for randomness on
/// every request.
fn new_request_id() -> String {
    static PROCESS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let sequence = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&process.to_be_bytes());
    bytes[8..].copy_from_slice(&sequence.to_be_bytes());
    let mut hex = [0u8; 32];
    // Sixteen bytes always fit 32 hex digits, which are ASCII.
    let _ = hex::encode_to_slice(bytes, &mut hex);
    String::from_utf8_lossy(&hex).into_owned()
}

/// Who makes the request: `None` for the paths open to all.
async fn caller_of(
    authenticator: &Authenticator,
    path: &str,
    authorization: Option<HeaderValue>,
    transport: Transport,
) -> Result<Option<Caller>, Error> {
    if needs_no_token(path) {
        return Ok(None);
    }
    authenticator
        .authenticate(authorization.as_ref().map(HeaderValue::as_bytes), transport)
        .await
        .map(Some)
}

/// Serves one request: names it (its id comes back in `x-request-id`), authenticates it,
/// and runs it in a span that every log line written while serving it carries. Then one
/// structured access-log line, with its outcome and latency, and its metrics. Headers are
/// never logged, so tokens stay out of the logs.
pub(super) async fn serve_request(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    let authenticator = &gate.authenticator;
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let transport = if rest::is_grpc(request.headers()) {
        Transport::Grpc
    } else {
        Transport::Rest
    };
    let id = request_id(&request);
    // The middleware runs after routing, so a REST request carries the template it matched.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .cloned();
    if uri.path() == rest::board::PAGE {
        let needed = !authenticator.open_to_all().await;
        request
            .extensions_mut()
            .insert(rest::board::TokenNeeded(needed));
    }
    let caller = caller_of(authenticator, uri.path(), authorization, transport).await;
    let caller_name = match &caller {
        Ok(Some(caller)) => Some(caller.name.clone()),
        _ => None,
    };
    let span = access::request_span(&id, caller_name.as_deref());
    let admission = match &caller {
        Ok(Some(caller)) => admit(&gate.limiter, caller, &method, uri.path(), transport),
        _ => Admission::Unlimited,
    };
    let mut response = match (caller, admission) {
        (Ok(_), Admission::Refused(quota)) => refusal_of(&quota, caller_name.as_deref(), transport),
        (Ok(caller), _) => {
            if let Some(caller) = caller {
                // An explicit parent, not `in_scope`: entering the span costs even when the
                // line is filtered out.
                tracing::debug!(parent: &span, role = %caller.role, "authenticated");
                request.extensions_mut().insert(caller.making(&id));
            }
            next.run(request).instrument(span.clone()).await
        }
        (Err(error), _) if transport == Transport::Grpc => tonic::Status::from(error).into_http(),
        (Err(error), _) => ApiError::Service(error).into_response(),
    };
    if transport == Transport::Grpc {
        oversized_message_as_resource_exhausted(&mut response);
    } else if let Admission::Admitted(quota) | Admission::Refused(quota) = admission {
        add_rate_limit_headers(&mut response, &quota);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let elapsed = started.elapsed();
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    record_metrics(
        &method,
        uri.path(),
        route,
        transport,
        &response,
        grpc_status,
        elapsed,
    );
    let record = AccessRecord {
        request_id: &id,
        caller: caller_name.as_deref(),
        method: method.as_str(),
        path: uri.path(),
        status: response.status().as_u16(),
        grpc_status,
        elapsed,
    };
    access::log(&record, &span);
    response
}

/// Draws the call from its token's bucket. Protected mode (no token) and `/metrics` are
/// not limited.
fn admit(
    limiter: &RateLimiter,
    caller: &Caller,
    method: &Method,
    path: &str,
    transport: Transport,
) -> Admission {
    let Some(token_id) = caller.token_id else {
        return Admission::Unlimited;
    };
    if path == "/metrics" {
        return Admission::Unlimited;
    }
    let kind = match transport {
        Transport::Grpc => CallKind::of_grpc_path(path),
        Transport::Rest => CallKind::of_rest(method, path),
    };
    limiter.admit(token_id, caller.limits, kind)
}

/// A call refused for its rate limit: 429 or RESOURCE_EXHAUSTED, with when to retry.
fn refusal_of(quota: &Quota, token: Option<&str>, transport: Transport) -> Response {
    crate::metrics::record_rate_limited(quota.kind.as_str());
    let error = Error::RateLimited {
        message: format!(
            "rate limit exceeded: token {} may make {} {}s a second, in bursts of {}; retry in {} s",
            crate::domain::quoted(token.unwrap_or_default()),
            quota.per_second,
            quota.kind.as_str(),
            quota.burst,
            quota.retry_after_seconds()
        ),
        retry_after: quota.retry_after,
    };
    match transport {
        Transport::Grpc => tonic::Status::from(error).into_http(),
        Transport::Rest => {
            let mut response = ApiError::Service(error).into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(quota.retry_after_seconds()),
            );
            response
        }
    }
}

/// The IETF draft's headers for the bucket a REST call drew on.
fn add_rate_limit_headers(response: &mut Response, quota: &Quota) {
    static POLICY: axum::http::HeaderName = axum::http::HeaderName::from_static("ratelimit-policy");
    static STATE: axum::http::HeaderName = axum::http::HeaderName::from_static("ratelimit");
    let headers = response.headers_mut();
    headers.insert(POLICY.clone(), quota.policy_header_value());
    headers.insert(STATE.clone(), quota.state_header());
}

/// tonic refuses a request message over its decoding limit as OUT_OF_RANGE, before any
/// handler runs. A message too large is RESOURCE_EXHAUSTED, as with REST's 413, with a
/// message naming the limit.
fn oversized_message_as_resource_exhausted(response: &mut Response) {
    const TONIC_PREFIX: &str = "Error, decoded message length too large";
    let headers = response.headers();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|status| status == "11");
    if !out_of_range {
        return;
    }
    let Some(message) = headers
        .get("grpc-message")
        .and_then(|value| value.to_str().ok())
        .map(|text| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|text| text.starts_with(TONIC_PREFIX))
    else {
        return;
    };
    let found = message
        .split("found ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or("more");
    let refusal = Error::TooLarge(format!(
        "the request message is {found} bytes; the limit is {} bytes (4 MiB)",
        crate::grpc::MAX_REQUEST_MESSAGE_BYTES
    ));
    let rewritten = tonic::Status::from(refusal).into_http::<axum::body::Body>();
    let headers = response.headers_mut();
    for name in ["grpc-status", "grpc-message"] {
        headers.remove(name);
        if let Some(value) = rewritten.headers().get(name) {
            headers.insert(name, value.clone());
        }
    }
}

/// The request's metrics.
fn record_metrics(
    method: &Method,
    path: &str,
    route: &str,
    transport: Transport,
    response: &Response,
    grpc_status: &str,
    elapsed: std::time::Duration,
) {
    if transport == Transport::Grpc {
        // A status in the headers is a trailers-only answer, an error; a call that
        // succeeds sends its status in the trailers, after this point.
        let grpc_status = if grpc_status.is_empty() {
            "0"
        } else {
            grpc_status
        };
        crate::metrics::record_grpc(path, grpc_status, elapsed);
    } else {
        crate::metrics::record_http(route, method, response.status().as_u16(), elapsed);
    }
}
