//! Creating a promotion: its row, one pending target per app, `promotion.created`, and
//! `target.queued` for each target that joins its app's queue behind earlier work.

use std::collections::HashMap;

use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use uuid::Uuid;

use super::{
    events::{append_all, EventDraft},
    queue::{queued_behind_each, queued_event, QueuePlace},
    Transaction,
};
use crate::{
    domain::promotion::{EventKind, PromotionStatus, TargetStatus},
    error::{Error, Result},
    store::{
        self,
        entities::{promotion, promotion_target},
        is_unique_violation,
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
    if store::lock_live_pipeline(tx.connection(), record.pipeline.id)
        .await?
        .is_none()
    {
        return Err(Error::not_found("pipeline", &record.pipeline.name));
    }
    if store::lock_live_app(tx.connection(), record.source_app.id)
        .await?
        .is_none()
    {
        return Err(Error::not_found("app", &record.source_app.name));
    }
    let target_ids: Vec<Uuid> = record.targets.iter().map(|app| app.id).collect();
    let live = store::lock_apps_to_join_queues(tx.connection(), &target_ids).await?;
    if let Some(gone) = record.targets.iter().find(|app| !live.contains(&app.id)) {
        return Err(Error::not_found("app", &gone.name));
    }
    let now = store::queue_clock(tx.connection()).await?;
    let id = record.id;
    let awaiting_approval = record.required_approvals > 0;
    // Targets join their apps' queues now, at the end, so what each waits behind is known
    // here and told at once; the apps stay locked, so nothing joins meanwhile. Targets
    // awaiting approval join, and are told, when approved.
    let blockers = if awaiting_approval {
        HashMap::new()
    } else {
        queued_behind_each(tx.connection(), &target_ids, QueuePlace::New).await?
    };
    let target_rows: Vec<(Uuid, &ResourceRef)> = record
        .targets
        .iter()
        .map(|app| (Uuid::new_v4(), app))
        .collect();
    let status = if awaiting_approval {
        PromotionStatus::AwaitingApproval
    } else {
        PromotionStatus::Pending
    };
    let row = promotion::ActiveModel {
        id: Set(id),
        pipeline_id: Set(record.pipeline.id),
        source_app_id: Set(record.source_app.id),
        source_release_id: Set(record.source_release_id),
        status: Set(status.as_str().to_owned()),
        safe: Set(record.safe),
        created_by: Set(record.created_by),
        overridden_checks: Set(record.overridden_checks),
        request_id: Set(record.idempotency.as_ref().map(|(key, _)| key.clone())),
        request_fingerprint: Set(record.idempotency.map(|(_, print)| print)),
        event_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
        cancel_requested_at: Set(None),
        required_approvals: Set(record.required_approvals as i32),
        triggered_by: Set(record.triggered_by),
    };
    let stored = match row.insert(tx.connection()).await {
        Ok(stored) => stored,
        Err(error) if is_unique_violation(&error) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    // In statements of at most 1,000 rows, well within both databases' parameter limits.
    let targets: Vec<promotion_target::ActiveModel> = target_rows
        .iter()
        .enumerate()
        .map(
            |(position, (target_id, app))| promotion_target::ActiveModel {
                id: Set(*target_id),
                promotion_id: Set(id),
                app_id: Set(app.id),
                position: Set(position as i32),
                status: Set(TargetStatus::Pending.as_str().to_owned()),
                release_id: Set(None),
                error_message: Set(String::new()),
                queued_behind: Set(blockers.get(&app.id).map(|blocker| blocker.id())),
                lease_owner: Set(None),
                lease_expires_at: Set(None),
                attempts: Set(0),
                app_deleted: Set(false),
                queued_at: Set((!awaiting_approval).then_some(now)),
                created_at: Set(now),
                updated_at: Set(now),
            },
        )
        .collect();
    for rows in targets.chunks(1_000) {
        promotion_target::Entity::insert_many(rows.iter().cloned())
            .exec_without_returning(tx.connection())
            .await?;
    }
    let mut events = vec![EventDraft::about_promotion(
        EventKind::PromotionCreated,
        record.message,
    )];
    events.extend(target_rows.iter().filter_map(|(target_id, app)| {
        let blocker = *blockers.get(&app.id)?;
        Some(queued_event(*target_id, (*app).clone(), blocker))
    }));
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
    append_all(tx, id, events).await?;
    Ok(Some(stored))
}
