//! Creating a promotion: its row, one pending target per app, `promotion.created`, and
//! `target.queued` for each target that joins its app's queue behind earlier work.

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    events::{event_rows, record_stored, EventDraft},
    queue::queued_event,
    Transaction,
};
use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::Author,
        promotion::{EventKind, PromotionStatus, TargetStatus},
    },
    error::{Error, Result},
    store::{
        self,
        entities::{promotion, promotion_target},
        is_unique_violation,
        queue::{queued_behind_each, QueuePlace},
    },
    views::ResourceRef,
};

/// Everything a validated promotion is stored with.
#[derive(Debug, Clone)]
pub struct PromotionRecord {
    /// The new promotion's id.
    pub id: Uuid,
    pub pipeline: ResourceRef,
    pub source_app: ResourceRef,
    pub source_release_id: Uuid,
    /// The target apps, in the order their targets run.
    pub targets: Vec<ResourceRef>,
    pub safe: bool,
    pub created_by: String,
    /// Who the releases it makes are by: the caller, or the engine for an auto-promotion.
    pub author: Author,
    /// The bypassed checks, as stored JSON.
    pub overridden_checks: String,
    /// The idempotency key and the fingerprint of the request that carried it.
    pub idempotency: Option<(String, String)>,
    /// The text of `promotion.created`.
    pub message: String,
    /// The approvals it needs before it runs: the most any target's coupling requires.
    pub required_approvals: u32,
    /// For an auto-promotion: the token whose release or status triggered it.
    pub triggered_by: Option<String>,
    /// The freezes an elevated caller broke glass through, as stored JSON; its targets are
    /// then exempt from every freeze.
    pub overridden_freezes: String,
    pub freeze_exempt: bool,
    /// Who the audit log names: the caller, or the engine for an auto-promotion.
    pub actor: Actor,
}

impl PromotionRecord {
    /// What the audit log records of the new promotion: `promotion.create`, and
    /// `promotion.override` when it broke glass through checks or a freeze.
    fn audit_entries(&self, awaiting_approval: bool) -> Vec<AuditEntry> {
        let targets: Vec<&str> = self.targets.iter().map(|app| app.name.as_str()).collect();
        let entry = |action| {
            AuditEntry::new(
                action,
                "promotion",
                self.id,
                &self.source_app.name,
                self.message.as_str(),
            )
            .in_pipeline(self.pipeline.id, &self.pipeline.name)
            .about_known_app(self.source_app.id, &self.source_app.name)
        };
        let mut created = entry("promotion.create")
            .with("source_release", self.source_release_id)
            .with("targets", &targets)
            .with("safe", self.safe)
            .with("awaiting_approval", awaiting_approval);
        if let Some(triggered_by) = &self.triggered_by {
            created = created.with("triggered_by", triggered_by);
        }
        let mut entries = vec![created];
        let checks: serde_json::Value =
            serde_json::from_str(&self.overridden_checks).unwrap_or_default();
        let freezes: serde_json::Value =
            serde_json::from_str(&self.overridden_freezes).unwrap_or_default();
        let none = |value: &serde_json::Value| value.as_array().is_none_or(Vec::is_empty);
        if !none(&checks) || !none(&freezes) {
            entries.push(
                entry("promotion.override")
                    .with("overridden_checks", checks)
                    .with("overridden_freezes", freezes),
            );
        }
        entries
    }
}

/// Stores a promotion with its targets and first events: `pending`, its targets in their
/// apps' queues from now on (those behind earlier work say so at once), or
/// `awaiting_approval`, its targets in no queue yet. `None` when another request already
/// took the idempotency key; the transaction must then be dropped.
///
/// The pipeline and every app stay locked live until the promotion commits, so one deleted
/// while the request was validated is NOT_FOUND here, and one deleted later cancels its
/// target like any other.
pub async fn create_promotion(
    tx: &mut Transaction,
    record: PromotionRecord,
) -> Result<Option<promotion::Model>> {
    let target_ids: Vec<Uuid> = record.targets.iter().map(|app| app.id).collect();
    let live = store::lock_to_create_promotion(
        tx.connection(),
        record.pipeline.id,
        record.source_app.id,
        &target_ids,
    )
    .await?;
    if !live.pipeline {
        return Err(Error::not_found("pipeline", &record.pipeline.name));
    }
    if !live.source_app {
        return Err(Error::not_found("app", &record.source_app.name));
    }
    if let Some(gone) = record
        .targets
        .iter()
        .find(|app| !live.targets.contains(&app.id))
    {
        return Err(Error::not_found("app", &gone.name));
    }
    let id = record.id;
    let awaiting_approval = record.required_approvals > 0;
    let audit_entries = record.audit_entries(awaiting_approval);
    let actor = record.actor.clone();
    // Targets join their apps' queues now, at the end, so what each waits behind is known
    // here and told at once; the apps stay locked, so nothing joins meanwhile. Targets
    // awaiting approval join, and are told, when approved.
    let blockers = if awaiting_approval {
        HashMap::new()
    } else {
        queued_behind_each(tx.connection(), &target_ids, QueuePlace::New, &[]).await?
    };
    let status = if awaiting_approval {
        PromotionStatus::AwaitingApproval
    } else {
        PromotionStatus::Pending
    };
    // Stamped with the queue's clock below; every time in these rows is that one.
    let now = store::now();
    let targets: Vec<promotion_target::Model> = record
        .targets
        .iter()
        .enumerate()
        .map(|(position, app)| promotion_target::Model {
            id: Uuid::new_v4(),
            promotion_id: id,
            app_id: app.id,
            position: position as i32,
            status: TargetStatus::Pending.as_str().to_owned(),
            release_id: None,
            error_message: String::new(),
            queued_behind: blockers.get(&app.id).map(|blocker| blocker.id()),
            lease_owner: None,
            lease_expires_at: None,
            attempts: 0,
            app_deleted: false,
            queued_at: (!awaiting_approval).then_some(now),
            verification: None,
            verification_state: None,
            verification_deadline: None,
            verification_results: None,
            rollback_release_id: None,
            freeze_exempt: record.freeze_exempt,
            waiting_for_freeze: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let mut events = vec![EventDraft::about_promotion(
        EventKind::PromotionCreated,
        record.message,
    )];
    events.extend(
        record
            .targets
            .iter()
            .zip(&targets)
            .filter_map(|(app, target)| {
                let blocker = *blockers.get(&app.id)?;
                Some(queued_event(target.id, app.clone(), blocker))
            }),
    );
    if awaiting_approval {
        events.push(EventDraft::about_promotion(
            EventKind::PromotionAwaitingApproval,
            format!(
                "waiting for {} approval{} before it runs",
                record.required_approvals,
                if record.required_approvals == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        ));
    }
    let row = promotion::Model {
        id,
        pipeline_id: record.pipeline.id,
        source_app_id: record.source_app.id,
        source_release_id: record.source_release_id,
        status: status.as_str().to_owned(),
        safe: record.safe,
        created_by: record.created_by,
        overridden_checks: record.overridden_checks,
        request_id: record.idempotency.as_ref().map(|(key, _)| key.clone()),
        request_fingerprint: record.idempotency.map(|(_, print)| print),
        event_count: 0,
        created_at: now,
        updated_at: now,
        finished_at: None,
        cancel_requested_at: None,
        required_approvals: record.required_approvals as i32,
        triggered_by: record.triggered_by,
        overridden_freezes: record.overridden_freezes,
        created_by_id: record.author.id,
        created_by_email: Some(record.author.email),
    };
    let events = event_rows(id, events, now);
    match store::promotions::insert_new(tx.connection(), tx.origin(), row, targets, events).await {
        Ok((stored, events)) => {
            record_stored(tx, events)?;
            AuditEntry::record_all(audit_entries, tx.connection(), &actor).await?;
            Ok(Some(stored))
        }
        // Another request took the idempotency key first.
        Err(error) if is_unique_violation(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}
