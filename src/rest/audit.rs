//! REST: the audit log.

use axum::{extract::State, Json};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{extract::QueryParams, inputs::time_field, shapes, ApiResult, GatewayState};
use crate::service::{AuditQuery, PageRequest};

/// `/audit-events`.
pub(super) fn routes() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new().routes(routes!(list_audit_events))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListAuditEventsQuery {
    /// Entries about this pipeline (id or name) or anything in it.
    #[serde(default)]
    pipeline: Option<String>,
    /// Entries about this app (id or name), its config vars and releases.
    #[serde(default)]
    app: Option<String>,
    /// Entries made by this actor: a token's name, `system`, `operator` or
    /// `protected-mode`.
    #[serde(default)]
    actor: Option<String>,
    /// Entries of this action (`promotion.create`), or of every action of a kind
    /// (`promotion`).
    #[serde(default)]
    action: Option<String>,
    /// Entries made at or after this RFC 3339 time.
    #[serde(default)]
    since: Option<String>,
    /// At most this many (100 by default, at most 1,000).
    #[serde(default)]
    page_size: Option<u64>,
    /// The `next_page_token` of the previous page.
    #[serde(default)]
    page_token: Option<String>,
}

/// Who changed what, newest first, paged.
#[utoipa::path(get, path = "/audit-events", tag = "audit", params(ListAuditEventsQuery),
    responses((status = 200, description = "Entries, newest first", body = shapes::AuditEventPage)))]
async fn list_audit_events(
    State(state): State<GatewayState>,
    QueryParams(query): QueryParams<ListAuditEventsQuery>,
) -> ApiResult<Json<shapes::AuditEventPage>> {
    let page = PageRequest::bounded(
        query.page_size.unwrap_or_default(),
        query.page_token.as_deref().unwrap_or_default(),
    )?;
    let filters = AuditQuery {
        pipeline: query.pipeline,
        app: query.app,
        actor: query.actor,
        action: query.action,
        since: time_field("since", query.since)?,
    };
    let page = state.services.audit.list(filters, &page).await?;
    Ok(Json(shapes::AuditEventPage {
        audit_events: page.items.into_iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
    }))
}
