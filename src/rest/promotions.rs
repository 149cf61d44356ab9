//! The promotion paths of the gateway: create (or plan), read, cancel, and the progress
//! stream as Server-Sent Events.

use axum::{
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;
use tokio_stream::StreamExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    created,
    error::ApiError,
    extract::{AuthenticatedCaller, JsonBody, PathParams, QueryParams, Vocabulary},
    inputs::ReferenceInput,
    shapes, with_next_page_token, ApiResult, GatewayState, PageQuery,
};
use crate::{
    domain::range::ListRange,
    service::{CreatedPromotion, NewPromotion, Safety},
};

#[derive(Deserialize, Default, ToSchema)]
#[serde(expecting = "an object such as {\"id\": \"...\"}", deny_unknown_fields)]
pub(super) struct IdObject {
    #[serde(default)]
    id: Option<String>,
}

/// The source app: a name or id, or an object, in which Akkeris clients also send the
/// release.
#[derive(Deserialize, ToSchema)]
#[serde(
    untagged,
    expecting = "must be an app name or an object such as {\"id\": \"...\"}",
    deny_unknown_fields
)]
pub(super) enum SourceAppInput {
    Plain(String),
    Object {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        release: Option<IdObject>,
    },
}

impl SourceAppInput {
    /// The app reference, and the release named inside the app object, if any.
    fn into_parts(self) -> (String, Option<String>) {
        match self {
            SourceAppInput::Plain(reference) => (reference, None),
            SourceAppInput::Object { id, name, release } => (
                id.or(name).unwrap_or_default(),
                release.and_then(|release| release.id),
            ),
        }
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(
    expecting = "an object such as {\"app\": {\"id\": \"...\"}}",
    deny_unknown_fields
)]
pub(super) struct SourceObject {
    #[serde(default)]
    app: Option<SourceAppInput>,
    #[serde(default)]
    release: Option<IdObject>,
}

/// `/pipeline-promotions`: create, list, read, targets, progress and cancel.
pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(list_promotions, create_promotion))
        .routes(routes!(get_promotion))
        .routes(routes!(list_promotion_targets))
        .routes(routes!(watch_promotion))
        .routes(routes!(cancel_promotion))
        .routes(routes!(approve_promotion))
        .routes(routes!(reject_promotion))
}

#[derive(Deserialize, ToSchema)]
#[serde(
    expecting = "an object such as {\"app\": {\"id\": \"...\"}}",
    deny_unknown_fields
)]
pub(super) struct TargetObject {
    #[serde(default)]
    app: Option<ReferenceInput>,
}

#[derive(Deserialize, ToSchema)]
#[serde(expecting = "a JSON object", deny_unknown_fields)]
pub(super) struct CreatePromotionBody {
    #[serde(default)]
    pipeline: Option<ReferenceInput>,
    #[serde(default)]
    source: Option<SourceObject>,
    #[serde(default)]
    targets: Option<Vec<TargetObject>>,
    #[serde(default)]
    safe: Option<bool>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    request_id: Option<String>,
}

#[utoipa::path(post, path = "/pipeline-promotions", tag = "promotions",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the create safe to retry; the same as `request_id`")),
    request_body = CreatePromotionBody,
    responses(
        (status = 201, description = "The stored promotion (`pending`, or `awaiting_approval`)", body = shapes::Promotion),
        (status = 200, description = "A dry run's plan, or the promotion an earlier request with the same idempotency key created", body = PromotionOrPlan)))]
pub(super) async fn create_promotion(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    headers: HeaderMap,
    vocabulary: Vocabulary,
    JsonBody(body): JsonBody<CreatePromotionBody>,
) -> ApiResult<Response> {
    let source = body.source.unwrap_or_default();
    let (source_app, release_in_app) = source
        .app
        .map(SourceAppInput::into_parts)
        .unwrap_or_default();
    let release = source
        .release
        .and_then(|release| release.id)
        .or(release_in_app);
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                ApiError::Service(crate::error::Error::invalid(
                    "Idempotency-Key",
                    "must be visible ASCII",
                ))
            })
        })
        .transpose()?;
    let request = NewPromotion {
        pipeline: body
            .pipeline
            .map(ReferenceInput::into_reference)
            .unwrap_or_default(),
        source_app,
        source_release: release,
        targets: body
            .targets
            .unwrap_or_default()
            .into_iter()
            .map(|target| {
                target
                    .app
                    .map(ReferenceInput::into_reference)
                    .unwrap_or_default()
            })
            .collect(),
        safety: Safety::from_flag(body.safe),
        dry_run: body.dry_run.unwrap_or(false),
        request_id: idempotency_key.or(body.request_id),
    };
    let outcome = state.services.promotions.create(request, &caller).await?;
    Ok(match outcome {
        CreatedPromotion::Created(view) | CreatedPromotion::Replayed(view) => {
            created(shapes::Promotion::worded(view, vocabulary)).into_response()
        }
        CreatedPromotion::Planned(plan) => Json(shapes::PromotionPlan::from(plan)).into_response(),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListPromotionsQuery {
    /// Only promotions of this pipeline (id or name).
    #[serde(default)]
    pipeline: Option<String>,
    /// At most this many (100 by default, at most 1,000).
    #[serde(default)]
    page_size: Option<u64>,
    /// The `Next-Page-Token` of the previous page.
    #[serde(default)]
    page_token: Option<String>,
}

/// A promotion, or a dry run's plan.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) enum PromotionOrPlan {
    Promotion(shapes::Promotion),
    Plan(shapes::PromotionPlan),
}

/// Newest first. When more remain, the `Next-Page-Token` header carries the token for
/// `?page_token=`.
#[utoipa::path(get, path = "/pipeline-promotions", tag = "promotions", params(ListPromotionsQuery),
    responses((status = 200, description = "Promotions, newest first", body = [shapes::Promotion],
        headers(("Next-Page-Token" = String, description = "Present when more remain: pass as `page_token`")))))]
pub(super) async fn list_promotions(
    State(state): State<GatewayState>,
    vocabulary: Vocabulary,
    QueryParams(query): QueryParams<ListPromotionsQuery>,
    range: Option<Extension<ListRange>>,
) -> ApiResult<Response> {
    // A range by id is read from the database from where it starts; the list answers
    // 100 by default, so it cannot be cut from one of its pages.
    if let Some(Extension(range)) = range.filter(|range| range.field == "id") {
        let ids = range
            .typed(|text| uuid::Uuid::parse_str(text).ok(), "a promotion id")
            .map_err(ApiError::UnusableRange)?;
        let (page, more) = state
            .services
            .promotions
            .in_id_range(query.pipeline.as_deref(), ids)
            .await?;
        let page: Vec<shapes::Promotion> = page
            .into_iter()
            .map(|view| shapes::Promotion::worded(view, vocabulary))
            .collect();
        return Ok(super::range::ranged_page(&range, page, more, |promotion| {
            promotion.id.to_string()
        }));
    }
    let page = state
        .services
        .promotions
        .list(
            query.pipeline.as_deref(),
            query.page_size,
            query.page_token.as_deref(),
        )
        .await?;
    let body: Vec<shapes::Promotion> = page
        .promotions
        .into_iter()
        .map(|view| shapes::Promotion::worded(view, vocabulary))
        .collect();
    Ok(with_next_page_token(
        Json(body).into_response(),
        page.next_page_token,
    ))
}

#[utoipa::path(get, path = "/pipeline-promotions/{id}", tag = "promotions",
    params(("id" = String, Path, description = "The promotion's id")),
    responses((status = 200, description = "The promotion", body = shapes::Promotion)))]
pub(super) async fn get_promotion(
    State(state): State<GatewayState>,
    vocabulary: Vocabulary,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<shapes::Promotion>> {
    let view = state.services.promotions.get(&id).await?;
    Ok(Json(shapes::Promotion::worded(view, vocabulary)))
}

#[utoipa::path(get, path = "/pipeline-promotions/{id}/promotion-targets", tag = "promotions",
    params(("id" = String, Path, description = "The promotion's id"), PageQuery),
    responses((status = 200, description = "The promotion's targets, in order", body = [shapes::PromotionTarget])))]
pub(super) async fn list_promotion_targets(
    State(state): State<GatewayState>,
    vocabulary: Vocabulary,
    PathParams(id): PathParams<String>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<Response> {
    let page = state
        .services
        .promotions
        .targets(&id, &page.request()?)
        .await?;
    let body: Vec<shapes::PromotionTarget> = page
        .items
        .into_iter()
        .map(|view| shapes::PromotionTarget::worded(view, vocabulary))
        .collect();
    Ok(with_next_page_token(
        Json(body).into_response(),
        page.next_page_token,
    ))
}

#[utoipa::path(post, path = "/pipeline-promotions/{id}/cancel", tag = "promotions",
    params(("id" = String, Path, description = "The promotion's id")),
    responses((status = 200, description = "The promotion; pending targets are canceled and running ones finish", body = shapes::Promotion)))]
pub(super) async fn cancel_promotion(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    vocabulary: Vocabulary,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<shapes::Promotion>> {
    Ok(Json(shapes::Promotion::worded(
        state.services.promotions.cancel(&id, &caller).await?,
        vocabulary,
    )))
}

/// The body of a vote. It may be left out when it would be empty.
#[derive(Deserialize, Default, ToSchema)]
#[serde(expecting = "a JSON object such as {\"comment\": \"...\"}")]
#[serde(deny_unknown_fields)]
struct VoteBody {
    #[serde(default)]
    comment: Option<String>,
}

fn vote_body(bytes: &[u8]) -> Result<VoteBody, super::ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(VoteBody::default());
    }
    super::extract::parse_json(bytes)
}

#[utoipa::path(post, path = "/pipeline-promotions/{id}/approvals", tag = "promotions",
    params(("id" = String, Path, description = "The promotion's id")),
    request_body(content = Option<VoteBody>, description = "`{comment?}`; the body may be left out"),
    responses((status = 200, description = "The promotion after the vote", body = shapes::Promotion)))]
async fn approve_promotion(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(id): PathParams<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<shapes::Promotion>> {
    let body = vote_body(&body)?;
    let view = state
        .services
        .promotions
        .approve(&id, body.comment.as_deref(), &caller)
        .await?;
    Ok(Json(view.into()))
}

#[utoipa::path(post, path = "/pipeline-promotions/{id}/rejections", tag = "promotions",
    params(("id" = String, Path, description = "The promotion's id")),
    request_body(content = VoteBody, description = "`{comment}`: a rejection says why"),
    responses((status = 200, description = "The promotion, `rejected`", body = shapes::Promotion)))]
async fn reject_promotion(
    State(state): State<GatewayState>,
    AuthenticatedCaller(caller): AuthenticatedCaller,
    PathParams(id): PathParams<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<shapes::Promotion>> {
    let body = vote_body(&body)?;
    let view = state
        .services
        .promotions
        .reject(&id, body.comment.as_deref(), &caller)
        .await?;
    Ok(Json(view.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct WatchQuery {
    /// Send only events after this sequence number (as `Last-Event-ID` does).
    #[serde(default)]
    after_sequence: Option<i64>,
}

/// Server-Sent Events: `id` is the sequence number, `event` the event name, `data` the
/// event as JSON. Resumes after `Last-Event-ID` (or `?after_sequence=`).
#[utoipa::path(get, path = "/pipeline-promotions/{id}/events", tag = "promotions",
    params(("id" = String, Path, description = "The promotion's id"), WatchQuery,
           ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence number")),
    responses(
        (status = 200, description = "Server-Sent Events: `id` the sequence, `event` the event name, `data` the event as JSON", content_type = "text/event-stream", body = String),
        (status = 204, description = "Nothing is left to send: the promotion finished and the watcher has its last event")))]
pub(super) async fn watch_promotion(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<WatchQuery>,
) -> ApiResult<Response> {
    let last_event_id = super::extract::last_event_id(&headers)?;
    let after = last_event_id.or(query.after_sequence).unwrap_or(0);
    let Some(events) = state.services.promotions.watch(&id, after).await? else {
        // Nothing is left to send; 204 tells a browser's EventSource not to reconnect.
        return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    };
    let stream = tokio_stream::wrappers::ReceiverStream::new(events).map(|event| {
        let sse = match event {
            Ok(event) => {
                let sequence = event.sequence;
                let name = event.kind.as_str();
                axum::response::sse::Event::default()
                    .id(sequence.to_string())
                    .event(name)
                    .json_data(shapes::PromotionEvent::from(event))
                    .unwrap_or_else(|_| axum::response::sse::Event::default().event("error"))
            }
            Err(error) => {
                error.log_cause();
                axum::response::sse::Event::default()
                    .event("error")
                    .data(error.client_message())
            }
        };
        Ok::<_, std::convert::Infallible>(sse)
    });
    Ok(axum::response::sse::Sse::new(stream)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}
