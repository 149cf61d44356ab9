//! REST: couplings of apps to pipelines.

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
use super::{
    inputs::{PromotionPolicyInput, ReferenceInput},
    shapes::RequiredStatusChecks,
};
use crate::{
    domain::stage::Stage,
    service::{CouplingChange, NewCoupling},
};

/// `/pipeline-couplings`, and the couplings of one pipeline or app.
pub(super) fn routes() -> Router<GatewayState> {
    Router::new()
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
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct CreateCouplingBody {
    #[serde(default)]
    app: Option<ReferenceInput>,
    #[serde(default)]
    pipeline: Option<ReferenceInput>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    required_status_checks: Option<RequiredStatusChecks>,
    #[serde(default)]
    promotion_policy: Option<PromotionPolicyInput>,
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
                policy: body.promotion_policy.unwrap_or_default().into_change()?,
            },
            &caller,
        )
        .await?;
    Ok(created(shapes::Coupling::from(view)))
}

async fn list_couplings(
    State(state): State<GatewayState>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state.services.couplings.list(&page.request()?).await?;
    Ok(paged::<_, shapes::Coupling>(page))
}

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

/// PATCH may change only `required_status_checks` and `promotion_policy`; any other field
/// is refused by name.
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
#[serde(deny_unknown_fields)]
struct UpdateCouplingBody {
    #[serde(default)]
    required_status_checks: Option<RequiredStatusChecks>,
    #[serde(default)]
    promotion_policy: Option<PromotionPolicyInput>,
}

async fn update_coupling(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<UpdateCouplingBody>,
) -> ApiResult<Json<shapes::Coupling>> {
    let change = CouplingChange {
        required_contexts: body.required_status_checks.map(|checks| checks.contexts),
        policy: body.promotion_policy.unwrap_or_default().into_change()?,
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

async fn delete_coupling(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<shapes::Coupling>> {
    Ok(Json(
        state.services.couplings.delete(&id, &caller).await?.into(),
    ))
}
