//! REST: releases and release statuses.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    created,
    error::ApiError,
    extract::{AuthenticatedCaller, JsonBody, PathParams, QueryParams},
    shapes, with_next_page_token, ApiResult, GatewayState, PageQuery,
};
use crate::{
    domain::{range::ListRange, status::StatusState},
    service::{NewReleaseStatus, ReleaseStatusChanges},
};

/// How a path names a release.
const RELEASE_PARAMETER: &str = "The release's id, or its version as `7` or `v7`";

/// An app's releases and their statuses.
pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(list_releases, create_release))
        .routes(routes!(get_release))
        .routes(routes!(get_release_config_vars))
        .routes(routes!(list_release_statuses, create_release_status))
        .routes(routes!(update_release_status))
}

/// A new release: `{image, description?}` records one built elsewhere; `{release}` rolls
/// back to an earlier release, as Akkeris clients send it (their `description` is ignored:
/// a rollback is described as `Rollback to v<N>`).
#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
struct CreateReleaseBody {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    release: Option<ReleaseReference>,
}

/// An earlier release: its id, or its version as a number or `v7`.
#[derive(Deserialize, ToSchema)]
#[serde(
    untagged,
    expecting = "must be a release id, or a version such as 7 or \"v7\""
)]
enum ReleaseReference {
    Text(String),
    Version(i64),
}

#[utoipa::path(post, path = "/apps/{app}/releases", tag = "releases",
    params(("app" = String, Path, description = "The app's id or name")),
    request_body(content = CreateReleaseBody, description = "`{image, description?}` records a release built elsewhere, `succeeded` at once; `{release}` rolls back to an earlier release (`pending` until deployed)"),
    responses((status = 201, description = "The new release", body = shapes::Release)))]
async fn create_release(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(app): PathParams<String>,
    JsonBody(body): JsonBody<CreateReleaseBody>,
) -> ApiResult<impl IntoResponse> {
    let releases = &state.services.releases;
    let view = match (body.release, body.image) {
        (Some(_), Some(_)) => {
            return Err(crate::error::Error::invalid(
                "release",
                "give either `image` (a new release) or `release` (a rollback), not both",
            )
            .into())
        }
        (Some(ReleaseReference::Text(reference)), None) => {
            releases.rollback(&app, &reference, &caller).await?
        }
        (Some(ReleaseReference::Version(version)), None) => {
            releases
                .rollback(&app, &version.to_string(), &caller)
                .await?
        }
        (None, image) => {
            releases
                .create(
                    &app,
                    image.as_deref().unwrap_or_default(),
                    body.description.as_deref().unwrap_or(""),
                    &caller,
                )
                .await?
        }
    };
    Ok(created(shapes::Release::from(view)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListReleasesQuery {
    /// Only the N newest releases, still oldest first; 0 or absent: all.
    #[serde(default)]
    page_size: Option<u64>,
    /// Accepted for the Heroku CLI's `releases -x`; the answer is the same either way.
    #[serde(default)]
    #[allow(dead_code)]
    extended: Option<bool>,
}

/// Oldest first, as Akkeris clients expect: the last element is the newest release.
#[utoipa::path(get, path = "/apps/{app}/releases", tag = "releases",
    params(("app" = String, Path, description = "The app's id or name"), ListReleasesQuery),
    responses((status = 200, description = "The app's releases, oldest first (the last is the newest)", body = [shapes::Release])))]
async fn list_releases(
    State(state): State<GatewayState>,
    PathParams(app): PathParams<String>,
    QueryParams(query): QueryParams<ListReleasesQuery>,
    range: Option<Extension<ListRange>>,
) -> ApiResult<Response> {
    if let Some(Extension(range)) = range.filter(|range| range.field == "version") {
        let versions = range
            .typed(|text| text.parse::<i64>().ok(), "a version")
            .map_err(ApiError::UnusableRange)?;
        let (page, more) = state
            .services
            .releases
            .in_version_range(&app, versions)
            .await?;
        let page: Vec<shapes::Release> = page.into_iter().map(shapes::Release::from).collect();
        return Ok(super::range::ranged_page(&range, page, more, |release| {
            release.version.to_string()
        }));
    }
    let batches = state
        .services
        .releases
        .oldest_first(&app, query.page_size)
        .await?;
    super::whole_list::<_, shapes::Release>(batches).await
}

#[utoipa::path(get, path = "/apps/{app}/releases/{release}", tag = "releases",
    params(("app" = String, Path, description = "The app's id or name"),
           ("release" = String, Path, description = RELEASE_PARAMETER)),
    responses((status = 200, description = "The release", body = shapes::Release)))]
async fn get_release(
    State(state): State<GatewayState>,
    PathParams((app, release)): PathParams<(String, String)>,
) -> ApiResult<Json<shapes::Release>> {
    Ok(Json(
        state.services.releases.get(&app, &release).await?.into(),
    ))
}

#[utoipa::path(get, path = "/apps/{app}/releases/{release}/config-vars", tag = "releases",
    params(("app" = String, Path, description = "The app's id or name"),
           ("release" = String, Path, description = RELEASE_PARAMETER)),
    responses((status = 200, description = "`{KEY: value}` as they were when the release was made; a value a read token may not see is null", body = shapes::ConfigVars)))]
async fn get_release_config_vars(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams((app, release)): PathParams<(String, String)>,
) -> ApiResult<Json<shapes::ConfigVars>> {
    Ok(Json(
        state
            .services
            .releases
            .config_vars(&app, &release, &caller)
            .await?,
    ))
}

fn parse_state(state: Option<String>) -> Result<Option<StatusState>, ApiError> {
    state
        .map(|state| StatusState::parse("state", &state))
        .transpose()
        .map_err(|error| ApiError::Service(error.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
struct CreateReleaseStatusBody {
    #[serde(default)]
    context: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    #[schema(value_type = Option<crate::rest::openapi::StatusStateName>)]
    state: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
}

#[utoipa::path(post, path = "/apps/{app}/releases/{release}/statuses", tag = "releases",
    params(("app" = String, Path, description = "The app's id or name"),
           ("release" = String, Path, description = RELEASE_PARAMETER)),
    request_body = CreateReleaseStatusBody,
    responses((status = 201, description = "The new status", body = shapes::ReleaseStatus)))]
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

#[utoipa::path(get, path = "/apps/{app}/releases/{release}/statuses", tag = "releases",
    params(("app" = String, Path, description = "The app's id or name"),
           ("release" = String, Path, description = RELEASE_PARAMETER), PageQuery),
    responses((status = 200, description = "The release, its statuses, and their combined state", body = shapes::ReleaseStatuses)))]
async fn list_release_statuses(
    State(state): State<GatewayState>,
    PathParams((app, release)): PathParams<(String, String)>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let view = state
        .services
        .releases
        .list_statuses(&app, &release, &page.request()?)
        .await?;
    let next_page_token = view.next_page_token.clone();
    let body = Json(shapes::ReleaseStatuses::from(view)).into_response();
    Ok(with_next_page_token(body, next_page_token))
}

#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
struct UpdateReleaseStatusBody {
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::rest::openapi::StatusStateName>)]
    state: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
}

#[utoipa::path(patch, path = "/apps/{app}/releases/{release}/statuses/{status}", tag = "releases",
    params(("app" = String, Path, description = "The app's id or name"),
           ("release" = String, Path, description = RELEASE_PARAMETER),
           ("status" = String, Path, description = "The status's id")),
    request_body = UpdateReleaseStatusBody,
    responses((status = 200, description = "The status after the change", body = shapes::ReleaseStatus)))]
async fn update_release_status(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams((app, release, status)): PathParams<(String, String, String)>,
    JsonBody(body): JsonBody<UpdateReleaseStatusBody>,
) -> ApiResult<Json<shapes::ReleaseStatus>> {
    let changes = ReleaseStatusChanges {
        context: body.context,
        name: body.name,
        state: parse_state(body.state)?.map(Some),
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
