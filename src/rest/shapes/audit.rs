//! The audit log's entries.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::NamedRef;
use crate::audit::{AuditEventView, NamedAt};

/// What an entry is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditResource {
    /// `pipeline`, `coupling`, `app`, `release`, `release_status`, `promotion`, `freeze` or
    /// `token`.
    pub kind: String,
    pub id: String,
    pub name: String,
}

/// One recorded change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// The token's name; `system` for the engine, `operator` for the operator commands,
    /// `protected-mode` while the server runs without tokens.
    pub actor: String,
    /// The token's role, or `system` or `operator`.
    pub role: String,
    /// `<kind>.<verb>`, such as `promotion.create`.
    pub action: String,
    pub resource: AuditResource,
    /// The pipeline the change is about or happened in; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<NamedRef>,
    /// The app the change is about; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<NamedRef>,
    /// The `x-request-id` of the request; null for the engine and the operator commands.
    pub request_id: Option<String>,
    pub summary: String,
    /// `{field: {before, after}}` and facts about the change; key names only, never a
    /// config var value, a token or a secret.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

/// A page of entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventPage {
    pub audit_events: Vec<AuditEvent>,
    /// Pass as `page_token` for the next page; null on the last one.
    pub next_page_token: Option<String>,
}

impl From<NamedAt> for NamedRef {
    fn from(named: NamedAt) -> Self {
        Self {
            id: named.id,
            name: named.name,
        }
    }
}

impl From<AuditEventView> for AuditEvent {
    fn from(view: AuditEventView) -> Self {
        Self {
            id: view.id,
            at: view.at,
            actor: view.actor,
            role: view.role,
            action: view.action,
            resource: AuditResource {
                kind: view.resource.kind,
                id: view.resource.id,
                name: view.resource.name,
            },
            pipeline: view.pipeline.map(NamedRef::from),
            app: view.app.map(NamedRef::from),
            request_id: view.request_id,
            summary: view.summary,
            changes: view.changes,
        }
    }
}
