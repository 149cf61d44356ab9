//! The REST gateway: the Akkeris-compatible paths and JSON shapes, served on the gRPC port.
//! Handlers translate JSON to use-case calls and views to JSON; they decide nothing.

pub mod error;
mod extract;
mod promotions;
mod shapes;

use std::collections::BTreeMap;

use axum::{
    extract::{DefaultBodyLimit, State},
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, patch},
    Json, Router,
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use self::{
    error::ApiError,
    extract::{AuthenticatedCaller, JsonBody, PathParams, MAX_BODY_BYTES},
    shapes::{ReferenceInput, RequiredStatusChecks},
};
use crate::{
    domain::{stage::Stage, status::StatusState},
    service::{ConfigVarChange, NewCoupling, NewReleaseStatus, ReleaseStatusChanges, Services},
    store,
};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Clone)]
struct GatewayState {
    services: Services,
    db: DatabaseConnection,
}

/// The gateway's routes. Unknown paths and methods answer in the gateway's error shape.
pub fn router(services: Services, db: DatabaseConnection) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
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
        .route(
            "/pipelines/{pipeline}/pipeline-couplings",
            get(list_pipeline_couplings),
        )
        .route(
            "/pipeline-couplings",
            get(list_couplings).post(create_coupling),
        )
        .route(
            "/pipeline-couplings/{id}",
            get(get_coupling)
                .patch(update_coupling)
                .delete(delete_coupling),
        )
        .route("/apps/{app}/pipeline-couplings", get(get_app_coupling))
        .route("/apps", get(list_apps).post(create_app))
        .route("/apps/{app}", get(get_app).delete(delete_app))
        .route(
            "/apps/{app}/config-vars",
            get(get_config_vars).patch(patch_config_vars),
        )
        .route(
            "/apps/{app}/releases",
            get(list_releases).post(create_release),
        )
        .route("/apps/{app}/releases/{release}", get(get_release))
        .route(
            "/apps/{app}/releases/{release}/statuses",
            get(list_release_statuses).post(create_release_status),
        )
        .route(
            "/apps/{app}/releases/{release}/statuses/{status}",
            patch(update_release_status),
        )
        .route(
            "/pipeline-promotions",
            get(promotions::list_promotions).post(promotions::create_promotion),
        )
        .route("/pipeline-promotions/{id}", get(promotions::get_promotion))
        .route(
            "/pipeline-promotions/{id}/promotion-targets",
            get(promotions::list_promotion_targets),
        )
        .route(
            "/pipeline-promotions/{id}/events",
            get(promotions::watch_promotion),
        )
        .route(
            "/pipeline-promotions/{id}/cancel",
            axum::routing::post(promotions::cancel_promotion),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(GatewayState { services, db })
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

async fn healthz(State(state): State<GatewayState>) -> Response {
    if store::is_reachable(&state.db).await {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "database unreachable"})),
        )
            .into_response()
    }
}

fn created<T: serde::Serialize>(body: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(body))
}

fn list<V, S: From<V>>(views: Vec<V>) -> Json<Vec<S>> {
    Json(views.into_iter().map(S::from).collect())
}

// ---- pipelines ----

#[derive(Deserialize)]
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

// ---- couplings ----

#[derive(Deserialize)]
struct CreateCouplingBody {
    #[serde(default)]
    app: Option<ReferenceInput>,
    #[serde(default)]
    pipeline: Option<ReferenceInput>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    required_status_checks: Option<RequiredStatusChecks>,
}

async fn create_coupling(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    JsonBody(body): JsonBody<CreateCouplingBody>,
) -> ApiResult<impl IntoResponse> {
    let stage = body
        .stage
        .map(|stage| Stage::parse("stage", &stage))
        .transpose()
        .map_err(crate::error::Error::from)?;
    let view = state
        .services
        .couplings
        .create(
            NewCoupling {
                app: body
                    .app
                    .map(ReferenceInput::into_reference)
                    .unwrap_or_default(),
                pipeline: body
                    .pipeline
                    .map(ReferenceInput::into_reference)
                    .unwrap_or_default(),
                stage,
                required_contexts: body.required_status_checks.unwrap_or_default().contexts,
            },
            &caller,
        )
        .await?;
    Ok(created(shapes::Coupling::from(view)))
}

async fn list_couplings(
    State(state): State<GatewayState>,
) -> ApiResult<Json<Vec<shapes::Coupling>>> {
    Ok(list(state.services.couplings.list().await?))
}

async fn list_pipeline_couplings(
    State(state): State<GatewayState>,
    PathParams(pipeline): PathParams<String>,
) -> ApiResult<Json<Vec<shapes::Coupling>>> {
    Ok(list(
        state
            .services
            .couplings
            .list_for_pipeline(&pipeline)
            .await?,
    ))
}

async fn get_coupling(
    State(state): State<GatewayState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<shapes::Coupling>> {
    Ok(Json(state.services.couplings.get(&id).await?.into()))
}

async fn get_app_coupling(
    State(state): State<GatewayState>,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<shapes::Coupling>> {
    Ok(Json(
        state.services.couplings.get_for_app(&app).await?.into(),
    ))
}

/// PATCH may change only `required_status_checks`; any other field is refused by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateCouplingBody {
    #[serde(default)]
    required_status_checks: Option<RequiredStatusChecks>,
}

async fn update_coupling(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<UpdateCouplingBody>,
) -> ApiResult<Json<shapes::Coupling>> {
    let checks = body
        .required_status_checks
        .ok_or_else(|| crate::error::Error::invalid("required_status_checks", "is required"))?;
    Ok(Json(
        state
            .services
            .couplings
            .update_required_contexts(&id, checks.contexts, &caller)
            .await?
            .into(),
    ))
}

async fn delete_coupling(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<shapes::Coupling>> {
    Ok(Json(
        state.services.couplings.delete(&id, &caller).await?.into(),
    ))
}

// ---- apps and config vars ----

#[derive(Deserialize)]
struct CreateAppBody {
    #[serde(default)]
    name: String,
}

async fn create_app(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    JsonBody(body): JsonBody<CreateAppBody>,
) -> ApiResult<impl IntoResponse> {
    let view = state.services.apps.create(&body.name, &caller).await?;
    Ok(created(shapes::App::from(view)))
}

async fn list_apps(State(state): State<GatewayState>) -> ApiResult<Json<Vec<shapes::App>>> {
    Ok(list(state.services.apps.list().await?))
}

async fn get_app(
    State(state): State<GatewayState>,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<shapes::App>> {
    Ok(Json(state.services.apps.get(&app).await?.into()))
}

async fn delete_app(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<shapes::App>> {
    Ok(Json(
        state.services.apps.delete(&app, &caller).await?.into(),
    ))
}

async fn get_config_vars(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<shapes::ConfigVars>> {
    Ok(Json(state.services.apps.config_vars(&app, &caller).await?))
}

async fn patch_config_vars(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(app): PathParams<String>,
    JsonBody(body): JsonBody<BTreeMap<String, Option<String>>>,
) -> ApiResult<Json<shapes::ConfigVars>> {
    let changes = body
        .into_iter()
        .map(|(key, value)| ConfigVarChange { key, value })
        .collect();
    let vars = state
        .services
        .apps
        .patch_config_vars(&app, changes, &caller)
        .await?;
    Ok(Json(vars.into_iter().map(|(k, v)| (k, Some(v))).collect()))
}

// ---- releases and release statuses ----

#[derive(Deserialize)]
struct CreateReleaseBody {
    #[serde(default)]
    image: String,
    #[serde(default)]
    description: Option<String>,
}

async fn create_release(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(app): PathParams<String>,
    JsonBody(body): JsonBody<CreateReleaseBody>,
) -> ApiResult<impl IntoResponse> {
    let view = state
        .services
        .releases
        .create(
            &app,
            &body.image,
            body.description.as_deref().unwrap_or(""),
            &caller,
        )
        .await?;
    Ok(created(shapes::Release::from(view)))
}

async fn list_releases(
    State(state): State<GatewayState>,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<Vec<shapes::Release>>> {
    Ok(list(state.services.releases.list(&app).await?))
}

async fn get_release(
    State(state): State<GatewayState>,
    PathParams((app, release)): PathParams<(String, String)>,
) -> ApiResult<Json<shapes::Release>> {
    Ok(Json(
        state.services.releases.get(&app, &release).await?.into(),
    ))
}

fn parse_state(state: Option<String>) -> Result<Option<StatusState>, ApiError> {
    state
        .map(|state| StatusState::parse("state", &state))
        .transpose()
        .map_err(|error| ApiError::Service(error.into()))
}

#[derive(Deserialize)]
struct CreateReleaseStatusBody {
    #[serde(default)]
    context: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
}

async fn create_release_status(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams((app, release)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<CreateReleaseStatusBody>,
) -> ApiResult<impl IntoResponse> {
    let status = NewReleaseStatus {
        context: body.context,
        name: body.name,
        state: parse_state(body.state)?,
        description: body.description.unwrap_or_default(),
        target_url: body.target_url.unwrap_or_default(),
        image_url: body.image_url.unwrap_or_default(),
    };
    let view = state
        .services
        .releases
        .create_status(&app, &release, status, &caller)
        .await?;
    Ok(created(shapes::ReleaseStatus::from(view)))
}

async fn list_release_statuses(
    State(state): State<GatewayState>,
    PathParams((app, release)): PathParams<(String, String)>,
) -> ApiResult<Json<Vec<shapes::ReleaseStatus>>> {
    Ok(list(
        state
            .services
            .releases
            .list_statuses(&app, &release)
            .await?,
    ))
}

#[derive(Deserialize)]
struct UpdateReleaseStatusBody {
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
}

async fn update_release_status(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams((app, release, status)): PathParams<(String, String, String)>,
    JsonBody(body): JsonBody<UpdateReleaseStatusBody>,
) -> ApiResult<Json<shapes::ReleaseStatus>> {
    let changes = ReleaseStatusChanges {
        context: body.context,
        name: body.name,
        state: parse_state(body.state)?,
        description: body.description,
        target_url: body.target_url,
        image_url: body.image_url,
    };
    Ok(Json(
        state
            .services
            .releases
            .update_status(&app, &release, &status, changes, &caller)
            .await?
            .into(),
    ))
}
