//! REST: releases and release statuses.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, patch},
    Json, Router,
};
use serde::Deserialize;

use super::{
    created,
    error::ApiError,
    extract::{AuthenticatedCaller, JsonBody, PathParams, QueryParams},
    list, shapes, with_next_page_token, ApiResult, GatewayState, PageQuery,
};
use crate::{
    domain::status::StatusState,
    service::{NewReleaseStatus, ReleaseStatusChanges},
};

/// An app's releases and their statuses.
pub(super) fn routes() -> Router<GatewayState> {
    Router::new()
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
}

/// A new release: `{image, description?}` records one built elsewhere; `{release}` rolls
/// back to an earlier release, as Akkeris clients send it (their `description` is ignored:
/// a rollback is described as `Rollback to v<N>`).
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct CreateReleaseBody {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    release: Option<ReleaseReference>,
}

/// An earlier release: its id, or its version as a number or `v7`.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "must be a release id, or a version such as 7 or \"v7\""
)]
enum ReleaseReference {
    Text(String),
    Version(i64),
}

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

#[derive(Deserialize)]
struct ListReleasesQuery {
    #[serde(default)]
    page_size: Option<u64>,
}

/// Oldest first, as Akkeris clients expect: the last element is the newest release.
async fn list_releases(
    State(state): State<GatewayState>,
    PathParams(app): PathParams<String>,
    QueryParams(query): QueryParams<ListReleasesQuery>,
) -> ApiResult<Json<Vec<shapes::Release>>> {
    Ok(list(
        state
            .services
            .releases
            .list_oldest_first(&app, query.page_size)
            .await?,
    ))
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
#[serde(expecting = "a JSON object")]
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

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
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
