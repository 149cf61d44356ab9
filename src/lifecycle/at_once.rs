//! A claimed batch of fresh targets run start to finish in one transaction, for deployers
//! that work within the database: nothing between the start and the outcome is visible
//! to anyone else, so each target goes from `pending` straight to its outcome, its
//! release linked in the same statement, and the promotion's status and every event
//! (`target.running`, `target.release_created`, the outcome, `promotion.finished`) are
//! written together. The events are the same, in the same order, as when the steps commit
//! one by one.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{
    auto_promotion::record_triggers,
    events::{append_changing_status, promotion_end, EventDraft, StatusChange},
    lock_promotion,
    targets::{
        create_releases, delivery_trigger, outcome_event, record_target_outcomes,
        release_created_event, running_event, set_release_states, OutcomeRecord,
    },
    ClaimedTarget, DeployOutcome, DeployedTarget, Transaction,
};
use crate::{
    domain::{
        promotion::{PromotionStatus, TargetStatus},
        status::ReleaseState,
    },
    error::{Error, Result},
    store::{
        self,
        entities::{promotion, promotion_target, release},
    },
};

/// What [`start_at_once`] found.
pub enum AtOnce {
    /// Every target started, with its release made: deploy each, then
    /// [`finish_at_once`].
    Started(Box<StartedBatch>),
    /// Not every target is fresh (one started before, was canceled, lost its lease or its
    /// app), so the batch runs step by step, in the same transaction.
    StepByStep(Vec<ClaimedTarget>),
}

/// A batch started by [`start_at_once`], under its locks.
pub struct StartedBatch {
    promotion: promotion::Model,
    /// Every target of the promotion, as read under its lock.
    all_targets: Vec<promotion_target::Model>,
    /// The batch's targets with the releases made for them, in order.
    pub started: Vec<(ClaimedTarget, release::Model)>,
}

/// Locks the batch's apps (live, in id order) and then its promotion, as the lock order
/// requires, and makes each target's release if every target is fresh: pending, with no
/// release, leased by `worker`, its app live, and its promotion unfinished.
pub async fn start_at_once(
    tx: &mut Transaction,
    worker: &str,
    claimed: Vec<ClaimedTarget>,
) -> Result<AtOnce> {
    let Some(promotion_id) = claimed.first().map(|c| c.target.promotion_id) else {
        return Ok(AtOnce::StepByStep(claimed));
    };
    let mut app_ids: Vec<_> = claimed.iter().map(|c| c.target.app_id).collect();
    app_ids.sort();
    app_ids.dedup();
    let live_apps = store::lock_live_apps(tx.connection(), &app_ids).await?;
    let promotion = lock_promotion(tx, promotion_id).await?;
    let all_targets = promotion_target::Entity::find()
        .filter(promotion_target::Column::PromotionId.eq(promotion_id))
        .order_by_asc(promotion_target::Column::Position)
        .all(tx.connection())
        .await?;
    let unfinished = PromotionStatus::parse(&promotion.status).is_some_and(|status| {
        matches!(status, PromotionStatus::Pending | PromotionStatus::Running)
    });
    let fresh = |c: &ClaimedTarget| {
        live_apps.contains(&c.target.app_id)
            && all_targets.iter().any(|row| {
                row.id == c.target.id
                    && row.status == TargetStatus::Pending.as_str()
                    && row.release_id.is_none()
                    && row.lease_owner.as_deref() == Some(worker)
            })
    };
    if !unfinished || !claimed.iter().all(fresh) {
        return Ok(AtOnce::StepByStep(claimed));
    }
    let releases =
        create_releases(tx, claimed.iter().map(|c| c.new_release.clone()).collect()).await?;
    Ok(AtOnce::Started(Box::new(StartedBatch {
        promotion,
        all_targets,
        started: claimed.into_iter().zip(releases).collect(),
    })))
}

/// Records the outcomes of a started batch, one per target in order: each target moves
/// from `pending` to its outcome with its release linked and its lease cleared, the
/// releases take their states, and the promotion runs on or ends, with every event in one
/// statement. A target taken over meanwhile fails the whole transaction, which the caller
/// drops, so the batch is retried as it was claimed.
pub async fn finish_at_once(
    tx: &mut Transaction,
    worker: &str,
    batch: Box<StartedBatch>,
    outcomes: Vec<DeployOutcome>,
) -> Result<()> {
    let StartedBatch {
        promotion,
        mut all_targets,
        started,
    } = *batch;
    let deployed: Vec<DeployedTarget<'_>> = started
        .iter()
        .zip(outcomes)
        .map(|((c, release), outcome)| DeployedTarget {
            target: &c.target,
            app: &c.app,
            release,
            outcome,
        })
        .collect();
    let described: Vec<OutcomeRecord> = deployed.iter().map(OutcomeRecord::of).collect();
    let moved =
        record_target_outcomes(tx, worker, &deployed, &described, TargetStatus::Pending).await?;
    if moved.len() != deployed.len() {
        return Err(Error::Internal(format!(
            "promotion {}: a target was taken over while it deployed",
            promotion.id
        )));
    }

    let mut events: Vec<EventDraft> = started.iter().map(|(c, _)| running_event(c)).collect();
    events.extend(
        started
            .iter()
            .map(|(c, release)| release_created_event(c, release)),
    );
    let mut triggers = Vec::new();
    let mut release_states: HashMap<ReleaseState, Vec<_>> = HashMap::new();
    for (done, record) in deployed.iter().zip(described) {
        if record.release_state == ReleaseState::Succeeded {
            triggers.push(delivery_trigger(&promotion, done.app, done.release));
        }
        release_states
            .entry(record.release_state)
            .or_default()
            .push(done.release.id);
        if let Some(row) = all_targets.iter_mut().find(|row| row.id == done.target.id) {
            row.status = record.target_status.as_str().to_owned();
        }
        events.push(outcome_event(
            done,
            record.kind,
            record.target_status,
            record.message,
        ));
    }
    set_release_states(tx, release_states).await?;

    // Every event so far reports the promotion running; `promotion.finished`, if it ends
    // now, reports the status it ends with.
    let mut events: Vec<EventDraft> = events
        .into_iter()
        .map(|event| event.reporting(PromotionStatus::Running))
        .collect();
    let end = promotion_end(&all_targets, promotion.cancel_requested_at.is_some())?;
    let change = match end {
        Some((outcome, message)) => {
            events.push(EventDraft::about_promotion(
                crate::domain::promotion::EventKind::PromotionFinished,
                message,
            ));
            StatusChange {
                status: outcome,
                finished: true,
            }
        }
        None => StatusChange {
            status: PromotionStatus::Running,
            finished: false,
        },
    };
    append_changing_status(tx, promotion.id, events, Some(change)).await?;
    tx.wake_engine |= record_triggers(tx.connection(), triggers).await?;
    Ok(())
}
