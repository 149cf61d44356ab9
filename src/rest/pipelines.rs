//! REST: pipelines, the stage graph and the status contexts a pipeline knows.

use axum::{extract::State, response::IntoResponse, routing::get, Json, Router};
use serde::Deserialize;

use super::{
    created,
    extract::{AuthenticatedCaller, JsonBody, PathParams},
    list, shapes, ApiResult, GatewayState,
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
) -> ApiResult<Json<Vec<shapes::Pipeline>>> {
    Ok(list(state.services.pipelines.list().await?))
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
) -> ApiResult<Json<Vec<shapes::StatusContext>>> {
    Ok(list(state.services.pipelines.statuses(&pipeline).await?))
}
