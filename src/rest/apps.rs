//! REST: apps and their config vars.

use std::collections::BTreeMap;

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
    paged, shapes, ApiResult, GatewayState, PageQuery,
};
use crate::service::ConfigVarChange;

/// `/apps` and an app's config vars.
pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, delete_app))
        .routes(routes!(get_config_vars, patch_config_vars))
        .routes(routes!(filter_apps))
}

#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
struct CreateAppBody {
    /// Unique among live apps.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9-]{2,62}$")]
    name: String,
}

#[utoipa::path(post, path = "/apps", tag = "apps", request_body = CreateAppBody,
    responses((status = 201, description = "The new app", body = shapes::App)))]
async fn create_app(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    JsonBody(body): JsonBody<CreateAppBody>,
) -> ApiResult<impl IntoResponse> {
    let view = state.services.apps.create(&body.name, &caller).await?;
    Ok(created(shapes::App::from(view)))
}

#[utoipa::path(get, path = "/apps", tag = "apps", params(PageQuery),
    responses((status = 200, description = "Live apps by name", body = [shapes::App])))]
async fn list_apps(
    State(state): State<GatewayState>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state.services.apps.list(&page.request()?).await?;
    Ok(paged::<_, shapes::App>(page))
}

#[utoipa::path(get, path = "/apps/{app}", tag = "apps",
    params(("app" = String, Path, description = "The app's id or name")),
    responses((status = 200, description = "The app", body = shapes::App)))]
async fn get_app(
    State(state): State<GatewayState>,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<shapes::App>> {
    Ok(Json(state.services.apps.get(&app).await?.into()))
}

#[utoipa::path(delete, path = "/apps/{app}", tag = "apps",
    params(("app" = String, Path, description = "The app's id or name")),
    responses((status = 200, description = "The deleted app; its coupling and config vars are removed and its unfinished targets canceled", body = shapes::App)))]
async fn delete_app(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<shapes::App>> {
    Ok(Json(
        state.services.apps.delete(&app, &caller).await?.into(),
    ))
}

#[utoipa::path(get, path = "/apps/{app}/config-vars", tag = "apps",
    params(("app" = String, Path, description = "The app's id or name")),
    responses((status = 200, description = "`{KEY: value}`; a value a read token may not see is null", body = shapes::ConfigVars)))]
async fn get_config_vars(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<shapes::ConfigVars>> {
    Ok(Json(state.services.apps.config_vars(&app, &caller).await?))
}

#[utoipa::path(patch, path = "/apps/{app}/config-vars", tag = "apps",
    params(("app" = String, Path, description = "The app's id or name")),
    request_body(content = shapes::ConfigVars, description = "`{KEY: value}` sets a key; `{KEY: null}` deletes it"),
    responses((status = 200, description = "All the app's config vars after the change", body = shapes::ConfigVars)))]
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

/// `{"in": {"id": [...]}}`, as Heroku clients send it.
#[derive(Deserialize, ToSchema)]
#[serde(
    expecting = "a JSON object such as {\"in\": {\"id\": [\"shop-dev\"]}}",
    deny_unknown_fields
)]
struct FilterAppsBody {
    #[serde(rename = "in")]
    within: FilterAppsIn,
}

#[derive(Deserialize, ToSchema)]
#[serde(
    expecting = "a JSON object such as {\"id\": [\"shop-dev\"]}",
    deny_unknown_fields
)]
struct FilterAppsIn {
    /// App ids or names, at most 1,000.
    id: Vec<String>,
}

/// The apps among the given ids or names that exist, in the order asked, each once; the
/// others are left out.
#[utoipa::path(post, path = "/filters/apps", tag = "apps", request_body = FilterAppsBody,
    responses((status = 200, description = "The apps that exist among those asked for", body = [shapes::App])))]
async fn filter_apps(
    State(state): State<GatewayState>,
    JsonBody(body): JsonBody<FilterAppsBody>,
) -> ApiResult<Json<Vec<shapes::App>>> {
    let apps = state.services.apps.filter("in.id", &body.within.id).await?;
    Ok(Json(apps.into_iter().map(shapes::App::from).collect()))
}
