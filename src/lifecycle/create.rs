//! Creating a promotion: its row, one pending target per app, `promotion.created`, and
//! `target.queued` for each target that joins its app's queue behind earlier work.

use std::collections::HashMap;

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait};
use uuid::Uuid;

use super::{
    events::{append_all, event_rows, record_stored, EventDraft},
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
    // Targets join their apps' queues now, at the end, so what each waits behind is known
    // here and told at once; the apps stay locked, so nothing joins meanwhile. Targets
    // awaiting approval join, and are told, when approved.
    let blockers = if awaiting_approval {
        HashMap::new()
    } else {
        queued_behind_each(tx.connection(), &target_ids, QueuePlace::New).await?
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
    };
    let stored = if tx.connection().get_database_backend() == DbBackend::Postgres
        && !targets.is_empty()
        && targets.len() <= store::promotions::MOST_TARGETS_IN_ONE_STATEMENT
    {
        store_in_one_statement(tx, row, targets, events).await
    } else {
        store_step_by_step(tx, row, targets, events).await
    };
    match stored {
        Ok(stored) => Ok(Some(stored)),
        Err(StoreError::RequestIdTaken) => Ok(None),
        Err(StoreError::Other(error)) => Err(error),
    }
}

/// Why storing a new promotion failed.
pub(super) enum StoreError {
    /// Another request took the idempotency key first.
    RequestIdTaken,
    Other(Error),
}

impl From<sea_orm::DbErr> for StoreError {
    fn from(error: sea_orm::DbErr) -> Self {
        if is_unique_violation(&error) {
            StoreError::RequestIdTaken
        } else {
            StoreError::Other(error.into())
        }
    }
}

impl From<Error> for StoreError {
    fn from(error: Error) -> Self {
        StoreError::Other(error)
    }
}

/// Stores the promotion, its targets and its first events in one statement (PostgreSQL),
/// stamped with the database's clock read in it, and returns the promotion as stored.
async fn store_in_one_statement(
    tx: &mut Transaction,
    mut row: promotion::Model,
    targets: Vec<promotion_target::Model>,
    events: Vec<EventDraft>,
) -> Result<promotion::Model, StoreError> {
    let events = event_rows(row.id, events, row.created_at);
    row.event_count = events.len() as i64;
    let stored = store::promotions::insert_with_targets_and_events(
        tx.connection(),
        tx.origin(),
        &row,
        &targets,
        events,
    )
    .await?;
    let Some(clock) = stored.first().map(|event| event.created_at) else {
        return Err(StoreError::Other(Error::Internal(format!(
            "promotion {}: its events were not stored",
            row.id
        ))));
    };
    row.created_at = clock;
    row.updated_at = clock;
    record_stored(tx, stored)?;
    Ok(row)
}

/// Stores the promotion, its targets (in statements of at most 1,000 rows, well within
/// both databases' parameter limits) and its first events one statement after the other,
/// stamped with the queue's clock.
async fn store_step_by_step(
    tx: &mut Transaction,
    mut row: promotion::Model,
    mut targets: Vec<promotion_target::Model>,
    events: Vec<EventDraft>,
) -> Result<promotion::Model, StoreError> {
    let now = store::queue_clock(tx.connection()).await?;
    row.created_at = now;
    row.updated_at = now;
    for target in &mut targets {
        target.queued_at = target.queued_at.map(|_| now);
        target.created_at = now;
        target.updated_at = now;
    }
    let id = row.id;
    let stored = promotion::ActiveModel::from(row)
        .insert(tx.connection())
        .await?;
    for rows in targets.chunks(1_000) {
        promotion_target::Entity::insert_many(
            rows.iter()
                .cloned()
                .map(promotion_target::ActiveModel::from),
        )
        .exec_without_returning(tx.connection())
        .await?;
    }
    append_all(tx, id, events).await?;
    Ok(stored)
}
