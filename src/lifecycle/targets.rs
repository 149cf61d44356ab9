//! A target's steps as the engine runs them: start, link its release, record the deploy's
//! outcome, or wait behind another promotion. Each step is guarded by the worker's lease
//! and the state it expects, so a step already done (before a crash) is a no-op.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, UpdateMany};
use uuid::Uuid;

use super::{
    cancel::cancel_target_of_deleted_app,
    events::{append, finish_if_complete, EventDraft},
    leases::{clearing_lease, Blocker},
    lock_promotion, Transaction,
};
use crate::{
    domain::{
        promotion::{EventKind, PromotionStatus, TargetStatus},
        status::ReleaseState,
    },
    error::Result,
    store::{
        self,
        entities::{app, promotion, promotion_target, release},
        insert_release_with_next_version, NewRelease,
    },
    views::{ReleaseRef, ResourceRef},
};

/// An update of a target that applies only while `worker` holds its lease and the target
/// is in `from`.
fn guarded(target: Uuid, worker: &str, from: TargetStatus) -> UpdateMany<promotion_target::Entity> {
    promotion_target::Entity::update_many()
        .filter(promotion_target::Column::Id.eq(target))
        .filter(promotion_target::Column::Status.eq(from.as_str()))
        .filter(promotion_target::Column::LeaseOwner.eq(worker.to_owned()))
}

/// A claimed target of one promotion, with what its steps need.
pub struct ClaimedTarget {
    pub target: promotion_target::Model,
    pub app: ResourceRef,
    /// The release to create for it, when it has none yet.
    pub new_release: NewRelease,
}

/// Prepares claimed targets of one promotion for deployment in one transaction: the
/// pending ones start, and each gets its release (created now, or the one linked before a
/// crash). The apps are locked live first, in id order, then the promotion, as the lock
/// order requires. Returns each target's release, in order, or `None` when the target is
/// not to be deployed (canceled, its app deleted, or the lease lost).
pub async fn prepare_targets(
    tx: &mut Transaction,
    worker: &str,
    claimed: Vec<ClaimedTarget>,
) -> Result<Vec<Option<release::Model>>> {
    let Some(promotion_id) = claimed.first().map(|c| c.target.promotion_id) else {
        return Ok(Vec::new());
    };
    let mut app_ids: Vec<Uuid> = claimed.iter().map(|c| c.target.app_id).collect();
    app_ids.sort();
    app_ids.dedup();
    // A deleted app is handled per target below, where its target is canceled.
    let live_apps = store::lock_live_apps(tx.connection(), &app_ids).await?;
    lock_promotion(tx, promotion_id).await?;
    if claimed
        .iter()
        .any(|c| c.target.status == TargetStatus::Pending.as_str())
    {
        promotion::Entity::update_many()
            .col_expr(
                promotion::Column::Status,
                PromotionStatus::Running.as_str().into(),
            )
            .col_expr(promotion::Column::UpdatedAt, store::now().into())
            .filter(promotion::Column::Id.eq(promotion_id))
            .filter(promotion::Column::Status.eq(PromotionStatus::Pending.as_str()))
            .exec(tx.connection())
            .await?;
    }
    let mut releases = Vec::with_capacity(claimed.len());
    for ClaimedTarget {
        target,
        app,
        new_release,
    } in claimed
    {
        let status = TargetStatus::parse(&target.status);
        let running = match status {
            Some(TargetStatus::Pending) => start_target(tx, &target, &app, worker).await?,
            Some(TargetStatus::Running) => true,
            _ => false,
        };
        if !running {
            releases.push(None);
            continue;
        }
        if let Some(release_id) = target.release_id {
            // Linked before a crash: deploy that release again.
            releases.push(
                release::Entity::find_by_id(release_id)
                    .one(tx.connection())
                    .await?,
            );
            continue;
        }
        let app_live = live_apps.contains(&target.app_id);
        releases.push(
            match link_release(tx, &target, &app, app_live, worker, new_release).await? {
                LinkedRelease::Created(release) => Some(*release),
                LinkedRelease::AppDeleted | LinkedRelease::NotHeld => None,
            },
        );
    }
    Ok(releases)
}

/// What one deployment of a target came to, to be recorded.
pub struct DeployedTarget<'a> {
    pub target: &'a promotion_target::Model,
    pub app: &'a ResourceRef,
    pub release: &'a release::Model,
    pub outcome: DeployOutcome,
}

/// Records the outcomes of deployments of one promotion's targets in one transaction, then
/// finishes the promotion if they were its last. Returns, per outcome, whether it was
/// recorded: not when the target was no longer this worker's (canceled by its app's
/// deletion, or the lease lost).
pub async fn record_outcomes(
    tx: &mut Transaction,
    worker: &str,
    promotion_id: Uuid,
    deployed: Vec<DeployedTarget<'_>>,
) -> Result<Vec<bool>> {
    lock_promotion(tx, promotion_id).await?;
    let mut recorded = Vec::with_capacity(deployed.len());
    for done in deployed {
        recorded.push(
            record_outcome(
                tx,
                done.target,
                done.app,
                worker,
                done.release,
                done.outcome,
            )
            .await?,
        );
    }
    finish_if_complete(tx, promotion_id).await?;
    Ok(recorded)
}

/// pending → running. False when the target was canceled or the lease lost meanwhile.
/// The caller holds the promotion's lock and has moved the promotion to running.
async fn start_target(
    tx: &mut Transaction,
    target: &promotion_target::Model,
    app: &ResourceRef,
    worker: &str,
) -> Result<bool> {
    let moved = guarded(target.id, worker, TargetStatus::Pending)
        .col_expr(
            promotion_target::Column::Status,
            TargetStatus::Running.as_str().into(),
        )
        .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
        .exec(tx.connection())
        .await?;
    if moved.rows_affected == 0 {
        return Ok(false);
    }
    append(
        tx,
        target.promotion_id,
        EventDraft::about_target(
            EventKind::TargetRunning,
            target,
            app.clone(),
            TargetStatus::Running,
            format!("promoting to '{}'", app.name),
        ),
    )
    .await?;
    Ok(true)
}

/// What linking a target's release came to.
#[derive(Debug)]
pub enum LinkedRelease {
    Created(Box<release::Model>),
    /// The target app was deleted; the target is canceled instead, with no release.
    AppDeleted,
    /// The target is no longer this worker's to run.
    NotHeld,
}

/// Creates the target's release, with the app's next version, and links it. The caller
/// holds the app locked live (`app_live`), so a deleted app never gets a release, and the
/// promotion's lock. If the app is gone, the target is canceled as its deletion requires.
async fn link_release(
    tx: &mut Transaction,
    target: &promotion_target::Model,
    app: &ResourceRef,
    app_live: bool,
    worker: &str,
    new: NewRelease,
) -> Result<LinkedRelease> {
    if !app_live {
        cancel_target_of_deleted_app(tx, target.id, None).await?;
        return Ok(LinkedRelease::AppDeleted);
    }
    let current = promotion_target::Entity::find_by_id(target.id)
        .one(tx.connection())
        .await?;
    let held = current.as_ref().is_some_and(|row| {
        row.status == TargetStatus::Running.as_str()
            && row.lease_owner.as_deref() == Some(worker)
            && row.release_id.is_none()
    });
    if !held {
        return Ok(LinkedRelease::NotHeld);
    }
    let created = insert_release_with_next_version(tx.connection(), new).await?;
    guarded(target.id, worker, TargetStatus::Running)
        .col_expr(promotion_target::Column::ReleaseId, Some(created.id).into())
        .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
        .exec(tx.connection())
        .await?;
    append(
        tx,
        target.promotion_id,
        EventDraft::about_target(
            EventKind::TargetReleaseCreated,
            target,
            app.clone(),
            TargetStatus::Running,
            format!(
                "release v{} created on '{}' with image {}",
                created.version, app.name, created.image
            ),
        )
        .with_release(ReleaseRef {
            id: created.id,
            version: created.version,
        }),
    )
    .await?;
    Ok(LinkedRelease::Created(Box::new(created)))
}

/// What the deployer answered.
#[derive(Debug, Clone)]
pub enum DeployOutcome {
    Deployed,
    Failed(String),
}

/// running → succeeded or failed, with the release's state. False when the target was no
/// longer this worker's (canceled by its app's deletion, or the lease lost): nothing is
/// recorded. The caller holds the promotion's lock and finishes the promotion.
async fn record_outcome(
    tx: &mut Transaction,
    target: &promotion_target::Model,
    app: &ResourceRef,
    worker: &str,
    release: &release::Model,
    outcome: DeployOutcome,
) -> Result<bool> {
    let (target_status, release_state, error_message, kind, message) = match outcome {
        DeployOutcome::Deployed => (
            TargetStatus::Succeeded,
            ReleaseState::Succeeded,
            String::new(),
            EventKind::TargetSucceeded,
            format!(
                "release v{} is now current on '{}'",
                release.version, app.name
            ),
        ),
        DeployOutcome::Failed(reason) => (
            TargetStatus::Failed,
            ReleaseState::Failed,
            reason.clone(),
            EventKind::TargetFailed,
            format!("deploying to '{}' failed: {reason}", app.name),
        ),
    };
    let recorded = clearing_lease(guarded(target.id, worker, TargetStatus::Running))
        .col_expr(
            promotion_target::Column::Status,
            target_status.as_str().into(),
        )
        .col_expr(promotion_target::Column::ErrorMessage, error_message.into())
        .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
        .exec(tx.connection())
        .await?;
    if recorded.rows_affected == 0 {
        return Ok(false);
    }
    let mut stored: release::ActiveModel = release.clone().into();
    stored.status = Set(release_state.as_str().to_owned());
    stored.updated_at = Set(store::now());
    stored.update(tx.connection()).await?;
    append(
        tx,
        target.promotion_id,
        EventDraft::about_target(kind, target, app.clone(), target_status, message).with_release(
            ReleaseRef {
                id: release.id,
                version: release.version,
            },
        ),
    )
    .await?;
    Ok(true)
}

/// Records that a pending target waits behind `blocker`, with `target.queued`, once per
/// promotion or rollback it waits for.
pub async fn mark_queued(
    tx: &mut Transaction,
    target: &promotion_target::Model,
    blocked_by: Blocker,
) -> Result<()> {
    let blocker = blocked_by.id();
    if target.queued_behind == Some(blocker) {
        return Ok(());
    }
    lock_promotion(tx, target.promotion_id).await?;
    let marked = promotion_target::Entity::update_many()
        .col_expr(promotion_target::Column::QueuedBehind, Some(blocker).into())
        .filter(promotion_target::Column::Id.eq(target.id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(promotion_target::Column::QueuedBehind.is_null())
                .add(promotion_target::Column::QueuedBehind.ne(blocker)),
        )
        .exec(tx.connection())
        .await?;
    if marked.rows_affected == 0 {
        return Ok(());
    }
    let app = app::Entity::find_by_id(target.app_id)
        .one(tx.connection())
        .await?
        .map(|app| ResourceRef {
            id: app.id,
            name: app.name,
        });
    let name = app.as_ref().map(|a| a.name.clone()).unwrap_or_default();
    append(
        tx,
        target.promotion_id,
        EventDraft {
            kind: EventKind::TargetQueued,
            target: Some(target.id),
            app,
            target_status: Some(TargetStatus::Pending),
            release: None,
            message: match blocked_by {
                Blocker::Promotion(_) => {
                    format!("'{name}' is busy with promotion {blocker}; waiting for it to finish")
                }
                Blocker::Rollback(_) => {
                    format!("'{name}' is being rolled back ({blocker}); waiting for it to finish")
                }
            },
            waiting_for: match blocked_by {
                Blocker::Promotion(id) => Some(id),
                Blocker::Rollback(_) => None,
            },
        },
    )
    .await
}
