//! REST: couplings of apps to pipelines.

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
use super::{
    inputs::{present, verification_change, PromotionPolicyInput, ReferenceInput},
    shapes::RequiredStatusChecks,
};
use crate::{
    domain::stage::Stage,
    service::{CouplingChange, NewCoupling},
};

/// `/pipeline-couplings`, and the couplings of one pipeline or app.
pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(list_pipeline_couplings))
        .routes(routes!(list_couplings, create_coupling))
        .routes(routes!(get_coupling, update_coupling, delete_coupling))
        .routes(routes!(get_app_coupling))
}

#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
struct CreateCouplingBody {
    #[serde(default)]
    app: Option<ReferenceInput>,
    #[serde(default)]
    pipeline: Option<ReferenceInput>,
    #[serde(default)]
    #[schema(value_type = Option<crate::rest::openapi::StageName>)]
    stage: Option<String>,
    #[serde(default)]
    required_status_checks: Option<RequiredStatusChecks>,
    #[serde(default)]
    promotion_policy: Option<PromotionPolicyInput>,
    /// Read as any JSON value, so that a wrong one is refused by its path.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<shapes::Verification>)]
    verification: Option<serde_json::Value>,
}

#[utoipa::path(post, path = "/pipeline-couplings", tag = "couplings",
    request_body = CreateCouplingBody,
    responses((status = 201, description = "The new coupling", body = shapes::Coupling)))]
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
                policy: body.promotion_policy.unwrap_or_default().into_change()?,
                verification: verification_change(body.verification)?,
            },
            &caller,
        )
        .await?;
    Ok(created(shapes::Coupling::from(view)))
}

#[utoipa::path(get, path = "/pipeline-couplings", tag = "couplings", params(PageQuery),
    responses((status = 200, description = "Every coupling, by pipeline name, stage and app name", body = [shapes::Coupling])))]
async fn list_couplings(
    State(state): State<GatewayState>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state.services.couplings.list(&page.request()?).await?;
    Ok(paged::<_, shapes::Coupling>(page))
}

#[utoipa::path(get, path = "/pipelines/{pipeline}/pipeline-couplings", tag = "couplings",
    params(("pipeline" = String, Path, description = "The pipeline's id or name"), PageQuery),
    responses((status = 200, description = "The pipeline's couplings, by stage and app name", body = [shapes::Coupling])))]
async fn list_pipeline_couplings(
    State(state): State<GatewayState>,
    PathParams(pipeline): PathParams<String>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state
        .services
        .couplings
        .list_for_pipeline(&pipeline, &page.request()?)
        .await?;
    Ok(paged::<_, shapes::Coupling>(page))
}

#[utoipa::path(get, path = "/pipeline-couplings/{id}", tag = "couplings",
    params(("id" = String, Path, description = "The coupling's id")),
    responses((status = 200, description = "The coupling", body = shapes::Coupling)))]
async fn get_coupling(
    State(state): State<GatewayState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<shapes::Coupling>> {
    Ok(Json(state.services.couplings.get(&id).await?.into()))
}

#[utoipa::path(get, path = "/apps/{app}/pipeline-couplings", tag = "couplings",
    params(("app" = String, Path, description = "The app's id or name")),
    responses((status = 200, description = "The app's coupling (404 when the app is in no pipeline)", body = shapes::Coupling)))]
async fn get_app_coupling(
    State(state): State<GatewayState>,
    PathParams(app): PathParams<String>,
) -> ApiResult<Json<shapes::Coupling>> {
    Ok(Json(
        state.services.couplings.get_for_app(&app).await?.into(),
    ))
}

/// PATCH may change only `stage`, `required_status_checks`, `promotion_policy` and
/// `verification`; any other field is refused by name.
#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object")]
#[serde(deny_unknown_fields)]
struct UpdateCouplingBody {
    /// Moves the app to another stage of its pipeline (elevated access).
    #[serde(default)]
    #[schema(value_type = Option<crate::rest::openapi::StageName>)]
    stage: Option<String>,
    #[serde(default)]
    required_status_checks: Option<RequiredStatusChecks>,
    #[serde(default)]
    promotion_policy: Option<PromotionPolicyInput>,
    /// An object replaces the verification whole; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<shapes::Verification>)]
    verification: Option<serde_json::Value>,
}

#[utoipa::path(patch, path = "/pipeline-couplings/{id}", tag = "couplings",
    params(("id" = String, Path, description = "The coupling's id")),
    request_body = UpdateCouplingBody,
    responses((status = 200, description = "The coupling after the change", body = shapes::Coupling)))]
async fn update_coupling(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<UpdateCouplingBody>,
) -> ApiResult<Json<shapes::Coupling>> {
    let change = CouplingChange {
        stage: body
            .stage
            .map(|stage| Stage::parse("stage", &stage))
            .transpose()
            .map_err(crate::error::Error::from)?,
        required_contexts: body.required_status_checks.map(|checks| checks.contexts),
        policy: body.promotion_policy.unwrap_or_default().into_change()?,
        verification: verification_change(body.verification)?,
    };
    Ok(Json(
        state
            .services
            .couplings
            .update(&id, change, &caller)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/pipeline-couplings/{id}", tag = "couplings",
    params(("id" = String, Path, description = "The coupling's id")),
    responses((status = 200, description = "The deleted coupling", body = shapes::Coupling)))]
async fn delete_coupling(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<shapes::Coupling>> {
    Ok(Json(
        state.services.couplings.delete(&id, &caller).await?.into(),
    ))
}
