//! The audit log: who changed what, when, and through which request. Each change writes
//! its entry with [`AuditEntry::record`] on the connection of the change's own
//! transaction, so an entry exists exactly when its change does. Entries name config var
//! keys, never their values, and never a token or a secret.

pub mod retention;

use std::fmt::Display;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    domain::{access::Caller, policy::PromotionPolicy, stage::Stage, verification::Verification},
    error::Result,
    pipeline_events::{self, PipelineEventDraft, Scope},
    store::{
        self,
        entities::{app, audit_event, promotion, release, release_status},
    },
    views::CouplingView,
};

/// Who made a change: a token, the operator commands, or the engine itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    role: String,
    request_id: Option<String>,
}

impl Actor {
    /// The caller of a request, with the request's id. In protected mode its name is
    /// `protected-mode`.
    pub fn of(caller: &Caller) -> Self {
        Self {
            name: caller.name.clone(),
            role: caller.role.as_str().to_owned(),
            request_id: caller.request_id.clone(),
        }
    }

    /// The engine, acting on its own: auto-promotions, automatic rollbacks and the built-in
    /// verification checks.
    pub fn system() -> Self {
        Self::named("system")
    }

    /// The operator commands run against the database (`pipelines tokens ...`).
    pub fn operator() -> Self {
        Self::named("operator")
    }

    fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            role: name.to_owned(),
            request_id: None,
        }
    }
}

/// What the log records of a coupling.
#[derive(Debug, Clone, Copy)]
pub struct CouplingSettings<'a> {
    pub stage: Stage,
    pub required_contexts: &'a [String],
    pub policy: PromotionPolicy,
    pub verification: Option<&'a Verification>,
}

impl<'a> From<&'a CouplingView> for CouplingSettings<'a> {
    fn from(view: &'a CouplingView) -> Self {
        Self {
            stage: view.stage,
            required_contexts: &view.required_contexts,
            policy: view.policy,
            verification: view.verification.as_ref(),
        }
    }
}

/// One entry, built by the change it records.
#[derive(Debug, Clone)]
#[must_use = "an entry is written only by `record`"]
pub struct AuditEntry {
    action: &'static str,
    resource_kind: &'static str,
    resource_id: String,
    resource_name: String,
    pipeline: Option<(Uuid, String)>,
    app: Option<(Uuid, String)>,
    summary: String,
    changes: Map<String, Value>,
}

impl AuditEntry {
    /// An entry of `action` (`<kind>.<verb>`) on the resource of `kind` with this id and
    /// name, described to people by `summary`.
    pub fn new(
        action: &'static str,
        kind: &'static str,
        id: impl Display,
        name: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            action,
            resource_kind: kind,
            resource_id: id.to_string(),
            resource_name: name.into(),
            pipeline: None,
            app: None,
            summary: summary.into(),
            changes: Map::new(),
        }
    }

    /// An entry about release `version` (`id`) of an app, in the app's pipeline if it has
    /// one.
    pub async fn about_release(
        db: &impl ConnectionTrait,
        action: &'static str,
        release: (Uuid, i64),
        app: (Uuid, &str),
        summary: impl Into<String>,
    ) -> Result<Self> {
        let (id, version) = release;
        let (app_id, app_name) = app;
        let name = format!("{app_name} v{version}");
        Self::new(action, "release", id, name, summary)
            .about_app(db, app_id, app_name)
            .await
    }

    /// An entry about a status on a release of `owner`, in the app's pipeline.
    pub async fn about_status(
        db: &impl ConnectionTrait,
        action: &'static str,
        owner: &app::Model,
        release: &release::Model,
        status: &release_status::Model,
    ) -> Result<Self> {
        let summary = format!(
            "status {} is {} on {} v{}",
            status.context, status.state, owner.name, release.version
        );
        let on = serde_json::json!({"id": release.id, "version": release.version});
        Self::new(
            action,
            "release_status",
            status.id,
            &status.context,
            summary,
        )
        .with("release", on)
        .about_app(db, owner.id, &owner.name)
        .await
    }

    /// An entry about an existing promotion, in its pipeline and about its source app.
    pub async fn about_promotion(
        db: &impl ConnectionTrait,
        action: &'static str,
        promotion: &promotion::Model,
        summary: impl Into<String>,
    ) -> Result<Self> {
        let pipeline = store::pipelines::pipelines_by_id(db, vec![promotion.pipeline_id])
            .await?
            .into_iter()
            .next()
            .map(|pipeline| pipeline.name)
            .unwrap_or_default();
        let source = store::apps::app_by_id(db, promotion.source_app_id)
            .await?
            .map(|app| app.name)
            .unwrap_or_default();
        Ok(
            Self::new(action, "promotion", promotion.id, &source, summary)
                .in_pipeline(promotion.pipeline_id, &pipeline)
                .about_known_app(promotion.source_app_id, &source),
        )
    }

    /// The pipeline the change is about or happened in.
    pub fn in_pipeline(mut self, id: Uuid, name: &str) -> Self {
        self.pipeline = Some((id, name.to_owned()));
        self
    }

    /// The app the change is about, and the pipeline it is coupled to now, if any.
    pub async fn about_app(
        mut self,
        db: &impl ConnectionTrait,
        id: Uuid,
        name: &str,
    ) -> Result<Self> {
        self.app = Some((id, name.to_owned()));
        if self.pipeline.is_none() {
            self.pipeline = store::couplings::pipeline_of_app(db, id).await?;
        }
        Ok(self)
    }

    /// The app the change is about, in a pipeline the caller already knows (or none).
    pub fn about_known_app(mut self, id: Uuid, name: &str) -> Self {
        self.app = Some((id, name.to_owned()));
        self
    }

    /// Records a field's value before and after the change; a field that did not change is
    /// left out.
    pub fn change<T: Serialize + PartialEq>(mut self, field: &str, before: &T, after: &T) -> Self {
        if before != after {
            let pair = serde_json::json!({ "before": before, "after": after });
            self.changes.insert(field.to_owned(), pair);
        }
        self
    }

    /// Records a fact about the change under `field`.
    pub fn with(mut self, field: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.changes.insert(field.to_owned(), value);
        self
    }

    /// Records the settings of a coupling that changed, before and after; `None` for the
    /// side on which it did not exist.
    pub fn coupling_change(
        self,
        before: Option<CouplingSettings<'_>>,
        after: Option<CouplingSettings<'_>>,
    ) -> Self {
        self.change("stage", &before.map(|s| s.stage), &after.map(|s| s.stage))
            .change(
                "required_status_checks",
                &before.map(|s| s.required_contexts),
                &after.map(|s| s.required_contexts),
            )
            .change(
                "promotion_policy",
                &before.map(|s| s.policy),
                &after.map(|s| s.policy),
            )
            // No verification, and no coupling, are the same `null`.
            .change(
                "verification",
                &before.and_then(|s| s.verification),
                &after.and_then(|s| s.verification),
            )
    }

    /// Writes the entry, and queues its event for its pipeline's stream, on the connection
    /// of the transaction that makes the change.
    pub async fn record(self, db: &impl ConnectionTrait, actor: &Actor) -> Result<()> {
        Self::record_all(vec![self], db, actor).await
    }

    /// Writes the entry in a lifecycle transaction, whose commit queues its pipeline event.
    pub async fn record_in(
        self,
        tx: &mut crate::lifecycle::Transaction,
        actor: &Actor,
    ) -> Result<()> {
        tx.record_audit(self, actor).await
    }

    /// Writes several entries of one change, in one statement, and their events in their
    /// pipelines' streams.
    pub async fn record_all(
        entries: Vec<Self>,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<()> {
        let drafts = entries.iter().filter_map(Self::pipeline_event).collect();
        Self::record_leaving_stream(entries, db, actor).await?;
        pipeline_events::queue(db, drafts, &Default::default()).await?;
        Ok(())
    }

    /// Writes entries without their pipeline events, which the caller queues with the rest
    /// of its transaction's (see [`crate::lifecycle::Transaction`]).
    pub async fn record_leaving_stream(
        entries: Vec<Self>,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<()> {
        let rows = entries
            .into_iter()
            .map(|entry| entry.into_row(actor))
            .collect();
        store::audit::insert_audit_events(db, rows).await?;
        Ok(())
    }

    /// The entry's event in its pipeline's stream, if its action has one.
    pub fn pipeline_event(&self) -> Option<PipelineEventDraft> {
        let kind = pipeline_events::kind_of_audit_action(self.action)?;
        let (pipeline_id, _) = self.pipeline.as_ref()?;
        let subject = Uuid::parse_str(&self.resource_id).ok()?;
        let app = self.app.as_ref().map(|(id, name)| (*id, name.as_str()));
        Some(PipelineEventDraft::new(
            Scope::Pipeline(*pipeline_id),
            kind,
            subject,
            app,
        ))
    }

    fn into_row(self, actor: &Actor) -> audit_event::Model {
        let (pipeline_id, pipeline_name) = self.pipeline.unzip();
        let (app_id, app_name) = self.app.unzip();
        audit_event::Model {
            id: Uuid::new_v4(),
            at: store::now(),
            actor: actor.name.clone(),
            role: actor.role.clone(),
            action: self.action.to_owned(),
            resource_kind: self.resource_kind.to_owned(),
            resource_id: self.resource_id,
            resource_name: self.resource_name,
            pipeline_id,
            pipeline_name,
            app_id,
            app_name,
            request_id: actor.request_id.clone(),
            summary: self.summary,
            changes: Value::Object(self.changes).to_string(),
        }
    }
}

/// An id with the name it had when the entry was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedAt {
    pub id: Uuid,
    pub name: String,
}

/// The resource an entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditResource {
    pub kind: String,
    pub id: String,
    pub name: String,
}

/// One entry, as the list answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEventView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub resource: AuditResource,
    pub pipeline: Option<NamedAt>,
    pub app: Option<NamedAt>,
    pub request_id: Option<String>,
    pub summary: String,
    /// A JSON object.
    pub changes: Value,
}

impl From<audit_event::Model> for AuditEventView {
    fn from(row: audit_event::Model) -> Self {
        let named = |id: Option<Uuid>, name: Option<String>| {
            id.map(|id| NamedAt {
                id,
                name: name.unwrap_or_default(),
            })
        };
        Self {
            id: row.id,
            at: row.at,
            actor: row.actor,
            role: row.role,
            action: row.action,
            resource: AuditResource {
                kind: row.resource_kind,
                id: row.resource_id,
                name: row.resource_name,
            },
            pipeline: named(row.pipeline_id, row.pipeline_name),
            app: named(row.app_id, row.app_name),
            request_id: row.request_id,
            summary: row.summary,
            changes: serde_json::from_str(&row.changes)
                .unwrap_or_else(|_| Value::Object(Map::new())),
        }
    }
}
