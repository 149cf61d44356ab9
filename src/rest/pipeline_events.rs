//! REST: a pipeline's event stream, as Server-Sent Events.

use axum::{
    extract::State,
    http::HeaderMap,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use tokio_stream::StreamExt;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{last_event_id, PathParams},
    shapes, ApiResult, GatewayState,
};
use crate::pipeline_events::hub::StreamItem;

pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new().routes(routes!(watch_pipeline))
}

/// Server-Sent Events of every change in the pipeline: `id` is the pipeline's sequence
/// number, `event` the kind (`release.created`, `status.updated`, `target.updated`, ...),
/// and `data` `{sequence, kind, at}` with the changed resource's REST shape. Without
/// `Last-Event-ID` the stream starts at the present; with it, it sends what came after,
/// or `event: reset` when that is no longer kept.
#[utoipa::path(get, path = "/pipelines/{pipeline}/events", tag = "pipelines",
    params(("pipeline" = String, Path, description = "The pipeline's id or name"),
           ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence number")),
    responses(
        (status = 200, description = "Server-Sent Events: `id` the sequence, `event` the kind, `data` the event as JSON", content_type = "text/event-stream", body = String)))]
pub(super) async fn watch_pipeline(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    PathParams(pipeline): PathParams<String>,
) -> ApiResult<Response> {
    let after = last_event_id(&headers)?;
    let items = state.services.watch_pipeline(&pipeline, after).await?;
    let stream = tokio_stream::wrappers::ReceiverStream::new(items).map(|item| {
        let sse = match item {
            Ok(StreamItem::Event(event)) => Event::default()
                .id(event.sequence.to_string())
                .event(event.kind.as_str())
                .json_data(shapes::pipeline_event_json(&event))
                .unwrap_or_else(|_| Event::default().event("error")),
            Ok(StreamItem::Reset { last }) => Event::default()
                .id(last.to_string())
                .event("reset")
                .data(serde_json::json!({ "sequence": last }).to_string()),
            Err(error) => {
                error.log_cause();
                Event::default().event("error").data(error.client_message())
            }
        };
        Ok::<_, std::convert::Infallible>(sse)
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
