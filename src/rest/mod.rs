//! The REST gateway: the Akkeris-compatible paths and JSON shapes, served on the gRPC port.
//! Handlers translate JSON to use-case calls and views to JSON; they decide nothing.

mod account;
mod apps;
mod audit;
pub mod board;
mod couplings;
mod diff;
pub mod error;
mod extract;
mod freezes;
mod inputs;
pub(crate) mod openapi;
mod pipeline_events;
mod pipelines;
mod promotions;
mod query;
mod range;
mod releases;
mod shapes;

use axum::{
    extract::{DefaultBodyLimit, State},
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use std::sync::{atomic::AtomicBool, Arc};
use utoipa_axum::{router::OpenApiRouter, routes};

use self::{error::ApiError, extract::MAX_BODY_BYTES};
use crate::{
    service::{Page, PageRequest, Services},
    store::Pools,
};

type ApiResult<T> = Result<T, ApiError>;

/// What every handler reaches. Handlers receive a clone per request, so it is one shared
/// allocation: a clone is a reference count, not a copy of each service's connection pool.
#[derive(Clone)]
pub(crate) struct GatewayState(Arc<Gateway>);

pub(crate) struct Gateway {
    services: Services,
    database_up: Arc<AtomicBool>,
    pools: Pools,
}

impl std::ops::Deref for GatewayState {
    type Target = Gateway;

    fn deref(&self) -> &Gateway {
        &self.0
    }
}

/// The gateway's routes, and the OpenAPI document generated from their annotations, served
/// at `/openapi.json`. Unknown paths and methods answer in the gateway's error shape.
pub fn router(services: Services, database_up: Arc<AtomicBool>, pools: Pools) -> Router {
    let (routes, api) = OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .merge(account::routes())
        .merge(pipelines::routes())
        .merge(pipeline_events::routes())
        .merge(diff::routes())
        .merge(freezes::routes())
        .merge(couplings::routes())
        .merge(apps::routes())
        .merge(releases::routes())
        .merge(promotions::routes())
        .merge(audit::routes())
        .split_for_parts();
    let api = openapi::document(api);
    let query_rules = Arc::new(query::QueryRules::from_document(&api));
    // The document never changes while the process runs: it is encoded once.
    let document = match serde_json::to_value(&api) {
        Ok(document) => document,
        Err(error) => {
            tracing::error!(%error, "the OpenAPI document cannot be encoded; it is served empty");
            serde_json::Value::Null
        }
    };
    let range_rules = Arc::new(range::RangeRules::from_document(&document));
    let document = axum::body::Bytes::from(document.to_string());
    routes
        .route_layer(range::HonourRangesLayer(range_rules))
        .route_layer(query::RefuseUnknownQueryLayer(query_rules))
        .merge(board::routes())
        .route(
            openapi::PATH,
            get(move || {
                let document = document.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document) }
            }),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(GatewayState(Arc::new(Gateway {
            services,
            database_up,
            pools,
        })))
}

/// Whether a request is a gRPC call rather than a REST one.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// Answers requests that match no route: UNIMPLEMENTED for gRPC, a JSON 404 otherwise.
pub async fn unknown_path(headers: HeaderMap, uri: Uri) -> Response {
    if is_grpc(&headers) {
        return tonic::Status::unimplemented(format!(
            "unknown method {}",
            crate::domain::quoted(uri.path())
        ))
        .into_http();
    }
    ApiError::UnknownPath(uri.path().to_owned()).into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Answers from the database monitor's last check, so that it answers at once even while
/// the database is down.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses(
        (status = 200, description = "The database answers", body = HealthBody),
        (status = 503, description = "The database does not answer", body = HealthBody)))]
async fn healthz(State(state): State<GatewayState>) -> Response {
    if state.database_up.load(std::sync::atomic::Ordering::Relaxed) {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "database unreachable"})),
        )
            .into_response()
    }
}

/// `/healthz`'s answer.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct HealthBody {
    /// `ok`, or why not.
    status: String,
}

/// Prometheus text exposition (version 0.0.4) of this process's series.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<GatewayState>) -> Response {
    match crate::metrics::render(&state.pools).await {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => ApiError::Service(crate::error::Error::Unavailable(
            "metrics are not collected by this process".into(),
        ))
        .into_response(),
    }
}

fn created<T: serde::Serialize>(body: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(body))
}

/// `?page_size=` and `?page_token=` on a list. Without a size the whole list is returned,
/// as Akkeris clients expect.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Return a page of at most this many (up to 1,000), with `Next-Page-Token` when more
    /// remain; absent: the whole list.
    #[serde(default)]
    page_size: Option<u64>,
    /// The `Next-Page-Token` of the previous page.
    #[serde(default)]
    page_token: Option<String>,
}

impl PageQuery {
    fn request(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::whole_unless_sized(
            self.page_size,
            self.page_token.as_deref(),
        )?)
    }
}

/// Sets the `Next-Page-Token` header when another page follows.
fn with_next_page_token(mut response: Response, token: Option<String>) -> Response {
    if let Some(value) = token.and_then(|token| token.parse().ok()) {
        response.headers_mut().insert("next-page-token", value);
    }
    response
}

/// A page as a JSON array, with `Next-Page-Token` when another page follows.
fn paged<V: Send + 'static, S: From<V> + serde::Serialize>(page: Page<V>) -> Response {
    if page.next_page_token.is_none() && page.items.len() > ENCODED_AT_A_TIME {
        // A whole long list (Akkeris clients read them so) is encoded as it is sent.
        let mut items = page.items.into_iter();
        let chunks = std::iter::from_fn(move || {
            let chunk: Vec<V> = items.by_ref().take(ENCODED_AT_A_TIME).collect();
            (!chunk.is_empty()).then_some(Ok(chunk))
        });
        return streamed_list::<V, S>(futures_util::stream::iter(chunks));
    }
    let body: Vec<S> = page.items.into_iter().map(S::from).collect();
    with_next_page_token(Json(body).into_response(), page.next_page_token)
}

/// Items of a whole list encoded at a time when it is sent as it is encoded.
const ENCODED_AT_A_TIME: usize = 256;

/// A JSON array whose items come a batch at a time, sent as each batch is encoded: the
/// encoded list is never held whole. A batch that fails ends the response early, which
/// the client sees as a cut-off body.
fn streamed_list<V: Send + 'static, S: From<V> + serde::Serialize>(
    batches: impl futures_util::Stream<Item = crate::error::Result<Vec<V>>> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let mut first = true;
    let encoded = batches.map(move |batch| {
        let batch = batch.inspect_err(|error| {
            tracing::warn!(%error, "a list failed while it was sent");
        })?;
        let mut chunk = Vec::with_capacity(batch.len() * 256);
        for item in batch {
            if !std::mem::take(&mut first) {
                chunk.push(b',');
            }
            serde_json::to_writer(&mut chunk, &S::from(item))
                .map_err(|error| crate::error::Error::Internal(error.to_string()))?;
        }
        Ok::<_, crate::error::Error>(axum::body::Bytes::from(chunk))
    });
    let opened = futures_util::stream::once(async { Ok(axum::body::Bytes::from_static(b"[")) });
    let closed = futures_util::stream::once(async { Ok(axum::body::Bytes::from_static(b"]")) });
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(opened.chain(encoded).chain(closed)),
    )
        .into_response()
}

/// A whole list read a batch at a time: one buffer when it fits in one batch, else sent
/// as it is read and encoded.
async fn whole_list<V: Send + 'static, S: From<V> + serde::Serialize>(
    batches: impl futures_util::Stream<Item = crate::error::Result<Vec<V>>> + Send + 'static,
) -> Result<Response, ApiError> {
    use futures_util::StreamExt;
    let mut batches = Box::pin(batches);
    let first = batches.next().await.transpose()?.unwrap_or_default();
    let Some(second) = batches.next().await.transpose()? else {
        let body: Vec<S> = first.into_iter().map(S::from).collect();
        return Ok(Json(body).into_response());
    };
    let ahead = futures_util::stream::iter([Ok(first), Ok(second)]);
    Ok(streamed_list::<V, S>(ahead.chain(batches)))
}
