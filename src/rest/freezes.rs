//! REST: a pipeline's freezes.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    created,
    extract::{AuthenticatedCaller, JsonBody, PathParams, QueryParams},
    inputs::time_field,
    paged, shapes, ApiResult, GatewayState, PageQuery,
};
use crate::service::NewFreeze;

/// `/pipelines/{pipeline}/freezes`.
pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(list_freezes, create_freeze))
        .routes(routes!(delete_freeze))
}

/// One of two forms: one-off (`ends_at`, optional `starts_at`), or recurring
/// (`freeze_start`, `freeze_end`, optional `cron_timezone`).
#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
struct CreateFreezeBody {
    /// The stages to freeze, each once.
    #[serde(default)]
    #[schema(value_type = Vec<crate::rest::openapi::StageName>)]
    stages: Vec<String>,
    /// Why the line stops; at most 200 characters.
    #[serde(default)]
    reason: String,
    /// One-off: an RFC 3339 time; default now.
    #[serde(default)]
    starts_at: Option<String>,
    /// One-off: an RFC 3339 time after `starts_at`.
    #[serde(default)]
    ends_at: Option<String>,
    /// Recurring: a five-field cron expression.
    #[serde(default)]
    freeze_start: Option<String>,
    /// Recurring: a five-field cron expression.
    #[serde(default)]
    freeze_end: Option<String>,
    /// Recurring: an IANA time zone; default UTC.
    #[serde(default)]
    cron_timezone: Option<String>,
}

#[utoipa::path(post, path = "/pipelines/{pipeline}/freezes", tag = "freezes",
    params(("pipeline" = String, Path, description = "The pipeline's id or name")),
    request_body = CreateFreezeBody,
    responses((status = 201, description = "The new freeze", body = shapes::Freeze)))]
async fn create_freeze(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(pipeline): PathParams<String>,
    JsonBody(body): JsonBody<CreateFreezeBody>,
) -> ApiResult<impl IntoResponse> {
    let request = NewFreeze {
        pipeline,
        stages: body.stages,
        reason: body.reason,
        starts_at: time_field("starts_at", body.starts_at)?,
        ends_at: time_field("ends_at", body.ends_at)?,
        freeze_start: body.freeze_start,
        freeze_end: body.freeze_end,
        cron_timezone: body.cron_timezone,
    };
    let view = state.services.freezes.create(request, &caller).await?;
    Ok(created(shapes::Freeze::from(view)))
}

#[utoipa::path(get, path = "/pipelines/{pipeline}/freezes", tag = "freezes",
    params(("pipeline" = String, Path, description = "The pipeline's id or name"), PageQuery),
    responses((status = 200, description = "The freezes that are active or still to come, oldest first", body = [shapes::Freeze])))]
async fn list_freezes(
    State(state): State<GatewayState>,
    PathParams(pipeline): PathParams<String>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state
        .services
        .freezes
        .list(&pipeline, &page.request()?)
        .await?;
    Ok(paged::<_, shapes::Freeze>(page))
}

#[utoipa::path(delete, path = "/pipelines/{pipeline}/freezes/{freeze}", tag = "freezes",
    params(("pipeline" = String, Path, description = "The pipeline's id or name"),
        ("freeze" = String, Path, description = "The freeze's id")),
    responses((status = 200, description = "The freeze, lifted", body = shapes::Freeze)))]
async fn delete_freeze(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams((pipeline, freeze)): PathParams<(String, String)>,
) -> ApiResult<Json<shapes::Freeze>> {
    let view = state
        .services
        .freezes
        .lift(&pipeline, &freeze, &caller)
        .await?;
    Ok(Json(view.into()))
}
