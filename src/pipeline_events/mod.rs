//! The pipeline event stream: every change in a pipeline (its couplings, releases,
//! statuses, config vars, promotions, targets, approvals and freezes), numbered per
//! pipeline in the order the changes committed, so that a watcher on any process sees the
//! same sequence and resumes exactly.
//!
//! A change queues its events in its own transaction: the audit log's entries name their
//! pipeline and action ([`kind_of_audit_action`]), and a promotion's progress events name
//! their promotion ([`kinds_of_promotion_event`]). The [`sequencer`] numbers committed
//! ones per pipeline. Each event stores only which resource changed; watchers receive the
//! resource as it stands when the event is sent ([`render`]). [`hub`] fans numbered events
//! out to this process's watchers.

pub mod hub;
pub mod render;
pub mod sequencer;

use std::collections::{BTreeMap, HashMap};

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    domain::promotion::EventKind,
    error::Result,
    store::{self, pipeline_events::NewPipelineEvent},
};

/// The events of the audit log's `action` in a pipeline's stream: `None` for actions whose
/// change the promotion's own events report, or that are not about a pipeline.
pub fn kind_of_audit_action(action: &str) -> Option<&'static str> {
    Some(match action {
        "pipeline.create" => "pipeline.created",
        "pipeline.update" => "pipeline.updated",
        "pipeline.delete" => "pipeline.deleted",
        "coupling.create" => "coupling.created",
        "coupling.update" => "coupling.updated",
        "coupling.delete" => "coupling.deleted",
        "app.delete" => "app.deleted",
        "config_vars.update" => "config_vars.updated",
        "release.create" | "release.rollback" => "release.created",
        "status.create" => "status.created",
        "status.update" => "status.updated",
        "freeze.create" => "freeze.created",
        "freeze.delete" => "freeze.deleted",
        _ => return None,
    })
}

/// The events of a promotion's progress event in its pipeline's stream: the promotion or
/// target it changed, and the release a target created.
pub fn kinds_of_promotion_event(kind: EventKind) -> &'static [&'static str] {
    match kind {
        EventKind::PromotionCreated => &["promotion.created"],
        EventKind::PromotionAwaitingApproval | EventKind::PromotionFinished => {
            &["promotion.updated"]
        }
        EventKind::ApprovalGranted => &["approval.granted"],
        EventKind::ApprovalRejected => &["approval.rejected"],
        EventKind::TargetReleaseCreated => &["target.updated", "release.created"],
        EventKind::TargetQueued
        | EventKind::TargetRunning
        | EventKind::TargetSucceeded
        | EventKind::TargetFailed
        | EventKind::TargetCanceled
        | EventKind::TargetVerifying
        | EventKind::TargetVerified
        | EventKind::TargetVerificationFailed
        | EventKind::TargetRolledBack => &["target.updated"],
    }
}

/// The resource an event's `kind` (`<resource>.<verb>`) is about.
pub fn resource_of_kind(kind: &str) -> &str {
    kind.split('.').next().unwrap_or(kind)
}

/// Which pipeline's stream an event belongs to, as the change knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Pipeline(Uuid),
    /// The pipeline of this promotion.
    Promotion(Uuid),
    /// The pipeline this app is coupled to when the change commits, if any.
    App(Uuid),
}

/// An event not queued yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineEventDraft {
    pub scope: Scope,
    pub event: NewPipelineEvent,
}

impl PipelineEventDraft {
    pub fn new(scope: Scope, kind: &str, subject_id: Uuid, app: Option<(Uuid, &str)>) -> Self {
        Self {
            scope,
            event: NewPipelineEvent {
                kind: kind.to_owned(),
                subject_id,
                app_id: app.map(|(id, _)| id),
                app_name: app.map(|(_, name)| name.to_owned()).unwrap_or_default(),
            },
        }
    }
}

/// Remembers the pipeline of each promotion seen, which never changes, so that appending a
/// promotion's events does not look it up again. Bounded: it starts over past its limit.
#[derive(Default)]
pub struct PromotionPipelines {
    known: std::sync::Mutex<HashMap<Uuid, Uuid>>,
}

const REMEMBERED_PROMOTIONS: usize = 10_000;

impl PromotionPipelines {
    fn get(&self, promotion_id: Uuid) -> Option<Uuid> {
        self.known.lock().ok()?.get(&promotion_id).copied()
    }

    fn remember(&self, promotion_id: Uuid, pipeline_id: Uuid) {
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= REMEMBERED_PROMOTIONS {
                known.clear();
            }
            known.insert(promotion_id, pipeline_id);
        }
    }
}

/// Queues `drafts` for their pipelines' streams, on the connection of the transaction that
/// made the changes, so that they exist exactly when the changes do; the sequencer numbers
/// them once committed. Repeats of one event (same kind and resource) are queued once.
/// Answers the pipelines queued for.
pub async fn queue(
    db: &impl ConnectionTrait,
    drafts: Vec<PipelineEventDraft>,
    promotions: &PromotionPipelines,
) -> Result<Vec<Uuid>> {
    let mut by_pipeline: BTreeMap<Uuid, Vec<NewPipelineEvent>> = BTreeMap::new();
    let mut resolved: HashMap<Scope, Option<Uuid>> = HashMap::new();
    for draft in drafts {
        let pipeline = match resolved.get(&draft.scope) {
            Some(pipeline) => *pipeline,
            None => {
                let pipeline = match draft.scope {
                    Scope::Pipeline(id) => Some(id),
                    Scope::Promotion(id) => match promotions.get(id) {
                        Some(pipeline) => Some(pipeline),
                        None => {
                            let found = store::promotions::pipeline_of_promotion(db, id).await?;
                            if let Some(pipeline) = found {
                                promotions.remember(id, pipeline);
                            }
                            found
                        }
                    },
                    Scope::App(id) => store::couplings::pipeline_of_app(db, id)
                        .await?
                        .map(|(pipeline, _)| pipeline),
                };
                resolved.insert(draft.scope, pipeline);
                pipeline
            }
        };
        let Some(pipeline) = pipeline else { continue };
        let events = by_pipeline.entry(pipeline).or_default();
        if !events.contains(&draft.event) {
            events.push(draft.event);
        }
    }
    for (pipeline, events) in &by_pipeline {
        store::pipeline_events::enqueue(db, *pipeline, events).await?;
    }
    Ok(by_pipeline.into_keys().collect())
}

/// Events kept per pipeline, at least: a watcher resuming from further back is told to
/// reload.
pub const KEPT_PER_PIPELINE: i64 = 1_000;
/// How often older events are deleted.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(600);
/// The most events one statement deletes.
const TRIM_BATCH: u64 = 1_000;

/// Deletes events older than the newest [`KEPT_PER_PIPELINE`] of their pipeline, and those
/// of deleted pipelines, at start-up and then every few minutes, until `stopped`.
pub async fn keep_trimmed(
    db: sea_orm::DatabaseConnection,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let mut deleted = 0;
        loop {
            match store::pipeline_events::trim(&db, KEPT_PER_PIPELINE, TRIM_BATCH).await {
                Ok(batch) => {
                    deleted += batch;
                    if batch < TRIM_BATCH {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot trim pipeline events; trying again later");
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::debug!(deleted, "deleted old pipeline events");
        }
        tokio::select! {
            () = tokio::time::sleep(TRIM_EVERY) => {}
            _ = stopped.wait_for(|stopped| *stopped) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pipeline_scoped_audit_action_has_an_event_and_promotion_actions_have_none() {
        assert_eq!(
            kind_of_audit_action("status.update"),
            Some("status.updated")
        );
        assert_eq!(
            kind_of_audit_action("release.rollback"),
            Some("release.created")
        );
        assert_eq!(
            kind_of_audit_action("freeze.delete"),
            Some("freeze.deleted")
        );
        for reported_by_promotion_events in [
            "promotion.create",
            "promotion.cancel",
            "promotion.override",
            "approval.grant",
            "approval.reject",
            "token.create",
            "app.create",
        ] {
            assert_eq!(kind_of_audit_action(reported_by_promotion_events), None);
        }
    }

    #[test]
    fn every_promotion_event_changes_its_promotion_or_target() {
        for kind in EventKind::ALL {
            let kinds = kinds_of_promotion_event(kind);
            let resource = resource_of_kind(kinds[0]);
            assert!(
                ["promotion", "approval", "target"].contains(&resource),
                "{kind:?} maps to {kinds:?}"
            );
        }
        assert_eq!(
            kinds_of_promotion_event(EventKind::TargetReleaseCreated),
            &["target.updated", "release.created"]
        );
    }
}
