//! REST: pipelines, the stage graph and the status contexts a pipeline knows.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Deserialize;

use super::{
    created,
    extract::{AuthenticatedCaller, JsonBody, PathParams, QueryParams},
    paged, shapes, ApiResult, GatewayState, PageQuery,
};

/// `/pipelines`, `/pipeline-stages` and a pipeline's statuses.
pub(super) fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/pipelines", get(list_pipelines).post(create_pipeline))
        .route(
            "/pipelines/{pipeline}",
            get(get_pipeline).delete(delete_pipeline),
        )
        .route("/pipeline-stages", get(list_stages))
        .route(
            "/pipelines/{pipeline}/statuses",
            get(list_pipeline_statuses),
        )
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct CreatePipelineBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
}

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

async fn list_pipelines(
    State(state): State<GatewayState>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state.services.pipelines.list(&page.request()?).await?;
    Ok(paged::<_, shapes::Pipeline>(page))
}

async fn get_pipeline(
    State(state): State<GatewayState>,
    PathParams(pipeline): PathParams<String>,
) -> ApiResult<Json<shapes::Pipeline>> {
    Ok(Json(state.services.pipelines.get(&pipeline).await?.into()))
}

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

async fn list_stages(State(state): State<GatewayState>) -> Json<shapes::StageGraph> {
    let graph = state
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
    Json(graph)
}

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
