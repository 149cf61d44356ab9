//! REST: apps and their config vars.

use std::collections::BTreeMap;

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
use crate::service::ConfigVarChange;

/// `/apps` and an app's config vars.
pub(super) fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/apps", get(list_apps).post(create_app))
        .route("/apps/{app}", get(get_app).delete(delete_app))
        .route(
            "/apps/{app}/config-vars",
            get(get_config_vars).patch(patch_config_vars),
        )
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
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

async fn list_apps(
    State(state): State<GatewayState>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state.services.apps.list(&page.request()?).await?;
    Ok(paged::<_, shapes::App>(page))
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
