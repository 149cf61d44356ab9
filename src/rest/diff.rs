//! REST: what promoting would change (the stage diff), and where an image runs and ran
//! (release lineage).

use axum::{extract::State, Json};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{AuthenticatedCaller, PathParams, QueryParams},
    shapes, ApiResult, GatewayState,
};
use crate::service::DiffRequest;

/// `/pipelines/{pipeline}/diff` and `/releases`.
pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(diff_stages))
        .routes(routes!(find_releases))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DiffQuery {
    /// The stage promoted from.
    #[serde(default)]
    from: Option<String>,
    /// The stage promoted into: the one after `from`, which is also the default.
    #[serde(default)]
    to: Option<String>,
    /// The app promoted from (id or name); required when `from` has several apps.
    #[serde(default)]
    source: Option<String>,
}

/// What promoting `from` a stage would change in each app of the next: images, config
/// keys missing on each side (names only), each required check's state on the source
/// release, verification, freeze, and whether the promotion (with `safe` unset) would be
/// accepted, by the same code as a dry run.
#[utoipa::path(get, path = "/pipelines/{pipeline}/diff", tag = "pipelines",
    params(("pipeline" = String, Path, description = "The pipeline's id or name"), DiffQuery),
    responses((status = 200, description = "The diff", body = shapes::StageDiff)))]
async fn diff_stages(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(pipeline): PathParams<String>,
    QueryParams(query): QueryParams<DiffQuery>,
) -> ApiResult<Json<shapes::StageDiff>> {
    let request = DiffRequest {
        pipeline,
        from: query.from.unwrap_or_default(),
        to: query.to,
        source: query.source,
    };
    let diff = state.services.diff_stages(request, &caller).await?;
    Ok(Json(diff.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FindReleasesQuery {
    /// The exact image reference.
    #[serde(default)]
    image: Option<String>,
}

/// Every release of a live app whose image is exactly `image`, current or not, newest
/// first (at most 1,000): where this build runs, and where it ran.
#[utoipa::path(get, path = "/releases", tag = "releases", params(FindReleasesQuery),
    responses((status = 200, description = "Releases, newest first", body = [shapes::LineageRelease])))]
async fn find_releases(
    State(state): State<GatewayState>,
    QueryParams(query): QueryParams<FindReleasesQuery>,
) -> ApiResult<Json<Vec<shapes::LineageRelease>>> {
    let image = query.image.unwrap_or_default();
    let releases = state.services.releases.with_image(&image).await?;
    Ok(Json(
        releases
            .into_iter()
            .map(|(view, current)| shapes::LineageRelease::of(view, current))
            .collect(),
    ))
}
