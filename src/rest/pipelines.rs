//! REST: pipelines, the stage graph and the status contexts a pipeline knows.

use std::sync::OnceLock;

use axum::{
    body::Bytes,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    created,
    extract::{AuthenticatedCaller, JsonBody, PathParams, QueryParams},
    paged, shapes, ApiResult, GatewayState, PageQuery,
};

/// `/pipelines`, `/pipeline-stages` and a pipeline's statuses.
pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(list_pipelines, create_pipeline))
        .routes(routes!(get_pipeline, update_pipeline, delete_pipeline))
        .routes(routes!(list_stages))
        .routes(routes!(list_pipeline_statuses))
}

#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
struct CreatePipelineBody {
    /// Unique among live pipelines.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9-]{2,29}$")]
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// Sent by Heroku clients: checked for its shape, never stored.
    #[serde(default, rename = "owner")]
    _owner: Option<HerokuOwner>,
    /// Sent by Heroku clients: checked for its shape, never stored.
    #[serde(default, rename = "generation")]
    _generation: Option<HerokuGeneration>,
}

/// Heroku's pipeline owner, `{id: string or null, type: string}`.
#[derive(Deserialize, ToSchema)]
#[serde(
    expecting = "an object such as {\"id\": null, \"type\": \"user\"}",
    deny_unknown_fields
)]
struct HerokuOwner {
    #[serde(default, rename = "id")]
    _id: Option<String>,
    #[serde(rename = "type")]
    _kind: String,
}

/// Heroku's pipeline generation, `{name: string}`.
#[derive(Deserialize, ToSchema)]
#[serde(
    expecting = "an object such as {\"name\": \"cedar\"}",
    deny_unknown_fields
)]
struct HerokuGeneration {
    #[serde(rename = "name")]
    _name: String,
}

#[utoipa::path(post, path = "/pipelines", tag = "pipelines",
    request_body = CreatePipelineBody,
    responses((status = 201, description = "The new pipeline", body = shapes::Pipeline)))]
async fn create_pipeline(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    JsonBody(body): JsonBody<CreatePipelineBody>,
) -> ApiResult<impl IntoResponse> {
    let view = state
        .services
        .pipelines
        .create(
            &body.name,
            body.description.as_deref().unwrap_or(""),
            &caller,
        )
        .await?;
    Ok(created(shapes::Pipeline::from(view)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListPipelinesQuery {
    /// Only the live pipeline of this name: an array of it, or `[]` (Heroku's filter).
    #[serde(default, rename = "eq[name]")]
    #[param(rename = "eq[name]")]
    name: Option<String>,
    /// Return a page of at most this many (up to 1,000), with `Next-Page-Token` when more
    /// remain; absent: the whole list.
    #[serde(default)]
    page_size: Option<u64>,
    /// The `Next-Page-Token` of the previous page.
    #[serde(default)]
    page_token: Option<String>,
}

#[utoipa::path(get, path = "/pipelines", tag = "pipelines", params(ListPipelinesQuery),
    responses((status = 200, description = "Pipelines by name; whole unless `page_size` is given", body = [shapes::Pipeline])))]
async fn list_pipelines(
    State(state): State<GatewayState>,
    QueryParams(query): QueryParams<ListPipelinesQuery>,
) -> ApiResult<Response> {
    let page = PageQuery {
        page_size: query.page_size,
        page_token: query.page_token,
    }
    .request()?;
    let pipelines = &state.services.pipelines;
    let page = match query.name {
        Some(name) => pipelines.named(&name, &page).await?,
        None => pipelines.list(&page).await?,
    };
    Ok(paged::<_, shapes::Pipeline>(page))
}

#[utoipa::path(get, path = "/pipelines/{pipeline}", tag = "pipelines",
    params(("pipeline" = String, Path, description = "The pipeline's id or name")),
    responses((status = 200, description = "The pipeline", body = shapes::Pipeline)))]
async fn get_pipeline(
    State(state): State<GatewayState>,
    PathParams(pipeline): PathParams<String>,
) -> ApiResult<Json<shapes::Pipeline>> {
    Ok(Json(state.services.pipelines.get(&pipeline).await?.into()))
}

/// PATCH may change only `name` and `description`.
#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
struct UpdatePipelineBody {
    /// A new name, unique among live pipelines.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9-]{2,29}$")]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[utoipa::path(patch, path = "/pipelines/{pipeline}", tag = "pipelines",
    params(("pipeline" = String, Path, description = "The pipeline's id or name")),
    request_body = UpdatePipelineBody,
    responses((status = 200, description = "The pipeline after the change", body = shapes::Pipeline)))]
async fn update_pipeline(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(pipeline): PathParams<String>,
    JsonBody(body): JsonBody<UpdatePipelineBody>,
) -> ApiResult<Json<shapes::Pipeline>> {
    let view = state
        .services
        .pipelines
        .update(
            &pipeline,
            body.name.as_deref(),
            body.description.as_deref(),
            &caller,
        )
        .await?;
    Ok(Json(view.into()))
}

#[utoipa::path(delete, path = "/pipelines/{pipeline}", tag = "pipelines",
    params(("pipeline" = String, Path, description = "The pipeline's id or name")),
    responses((status = 200, description = "The deleted pipeline; its couplings are removed", body = shapes::Pipeline)))]
async fn delete_pipeline(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(pipeline): PathParams<String>,
) -> ApiResult<Json<shapes::Pipeline>> {
    Ok(Json(
        state
            .services
            .pipelines
            .delete(&pipeline, &caller)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/pipeline-stages", tag = "pipelines",
    responses((status = 200, description = "Each stage and the stage its releases are promoted to", body = shapes::StageGraphSchema)))]
async fn list_stages(State(state): State<GatewayState>) -> Response {
    // The graph never changes while the process runs: it is encoded once.
    static ENCODED: OnceLock<Bytes> = OnceLock::new();
    let encoded = ENCODED.get_or_init(|| {
        let graph: shapes::StageGraph = state
            .services
            .pipelines
            .stages()
            .into_iter()
            .map(|(stage, next)| {
                let next = next
                    .map(|next| serde_json::Value::from(next.as_str()))
                    .unwrap_or(serde_json::Value::Null);
                (stage.as_str().to_owned(), next)
            })
            .collect();
        Bytes::from(serde_json::Value::Object(graph).to_string())
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        encoded.clone(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/pipelines/{pipeline}/statuses", tag = "pipelines",
    params(("pipeline" = String, Path, description = "The pipeline's id or name"), PageQuery),
    responses((status = 200, description = "The distinct contexts of statuses on releases of the pipeline's apps, sorted", body = [shapes::StatusContext])))]
async fn list_pipeline_statuses(
    State(state): State<GatewayState>,
    PathParams(pipeline): PathParams<String>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state
        .services
        .pipelines
        .statuses(&pipeline, &page.request()?)
        .await?;
    Ok(paged::<_, shapes::StatusContext>(page))
}
