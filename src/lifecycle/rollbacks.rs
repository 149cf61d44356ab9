//! A rollback's life: created with its pending release, started, deployed, and ended
//! `succeeded` (the release becomes current) or `failed`, or canceled when its app is
//! deleted. Rollback rows sit at the target level of the lock order: after the app, before
//! releases.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::{
    auto_promotion::{record_triggers, Trigger},
    leases::clearing_lease,
    target_states_moving_to, unfinished_targets, DeployOutcome, Transaction,
};
use crate::{
    domain::{promotion::TargetStatus, status::ReleaseState},
    error::{Error, Result},
    store::{
        self,
        entities::{app, release, rollback},
        insert_release_with_next_version, NewRelease,
    },
};

/// Records a rollback of `app` to the earlier release `to`: a new `pending` release with
/// that image and the next version, queued for the engine. The app stays locked live
/// until the rollback commits.
pub async fn create_rollback(
    tx: &mut Transaction,
    app: &app::Model,
    to: &release::Model,
    created_by: &str,
) -> Result<release::Model> {
    if store::lock_apps_to_join_queues(tx.connection(), &[app.id])
        .await?
        .is_empty()
    {
        return Err(Error::not_found("app", &app.name));
    }
    let created = insert_release_with_next_version(
        tx.connection(),
        NewRelease {
            app_id: app.id,
            image: to.image.clone(),
            description: format!("Rollback to v{}", to.version),
            status: ReleaseState::Pending.as_str(),
            promoted_from_app_id: None,
            promoted_from_release_id: None,
            promoted_from_promotion_id: None,
            promotion_target_id: None,
        },
    )
    .await?;
    let now = store::queue_clock(tx.connection()).await?;
    rollback::ActiveModel {
        id: Set(Uuid::new_v4()),
        app_id: Set(app.id),
        release_id: Set(created.id),
        rolled_back_to_id: Set(to.id),
        status: Set(TargetStatus::Pending.as_str().to_owned()),
        error_message: Set(String::new()),
        created_by: Set(created_by.to_owned()),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        attempts: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(tx.connection())
    .await?;
    Ok(created)
}

/// An update of one rollback moving to `next`, guarded by the transition table and the
/// worker's lease.
fn guarded(id: Uuid, worker: &str, next: TargetStatus) -> sea_orm::UpdateMany<rollback::Entity> {
    rollback::Entity::update_many()
        .filter(rollback::Column::Id.eq(id))
        .filter(rollback::Column::Status.is_in(target_states_moving_to(next)))
        .filter(rollback::Column::LeaseOwner.eq(worker.to_owned()))
}

/// pending → running under this worker's lease. False when it is no longer the worker's.
pub async fn start_rollback(db: &impl ConnectionTrait, id: Uuid, worker: &str) -> Result<bool> {
    let moved = guarded(id, worker, TargetStatus::Running)
        .col_expr(
            rollback::Column::Status,
            TargetStatus::Running.as_str().into(),
        )
        .col_expr(rollback::Column::UpdatedAt, store::now().into())
        .exec(db)
        .await?;
    Ok(moved.rows_affected == 1)
}

/// running → succeeded (the release becomes current) or failed (the current release stays
/// as it was). False when the rollback was no longer this worker's.
pub async fn record_rollback_outcome(
    tx: &mut Transaction,
    rollback: &rollback::Model,
    worker: &str,
    outcome: DeployOutcome,
) -> Result<bool> {
    let (status, release_state, error_message) = match outcome {
        DeployOutcome::Deployed => (
            TargetStatus::Succeeded,
            ReleaseState::Succeeded,
            String::new(),
        ),
        DeployOutcome::Failed(reason) => (TargetStatus::Failed, ReleaseState::Failed, reason),
    };
    let recorded = clearing_lease(guarded(rollback.id, worker, status))
        .col_expr(rollback::Column::Status, status.as_str().into())
        .col_expr(rollback::Column::ErrorMessage, error_message.into())
        .col_expr(rollback::Column::UpdatedAt, store::now().into())
        .exec(tx.connection())
        .await?;
    if recorded.rows_affected == 0 {
        return Ok(false);
    }
    set_release_state(tx, rollback.release_id, release_state).await?;
    if release_state == ReleaseState::Succeeded {
        let version = release::Entity::find_by_id(rollback.release_id)
            .one(tx.connection())
            .await?
            .map(|release| release.version)
            .unwrap_or_default();
        let recorded = record_triggers(
            tx.connection(),
            vec![Trigger {
                app_id: rollback.app_id,
                release_id: rollback.release_id,
                triggered_by: rollback.created_by.clone(),
                reason: format!("rollback to v{version} by '{}'", rollback.created_by),
            }],
        )
        .await?;
        tx.wake_engine |= recorded;
    }
    Ok(true)
}

async fn set_release_state(tx: &Transaction, release_id: Uuid, state: ReleaseState) -> Result<()> {
    if let Some(found) = release::Entity::find_by_id(release_id)
        .one(tx.connection())
        .await?
    {
        let mut row: release::ActiveModel = found.into();
        row.status = Set(state.as_str().to_owned());
        row.updated_at = Set(store::now());
        row.update(tx.connection()).await?;
    }
    Ok(())
}

/// Cancels the unfinished rollbacks of an app being deleted; their releases fail. The
/// caller holds the app's lock.
pub async fn cancel_rollbacks_of_deleted_app(tx: &mut Transaction, app_id: Uuid) -> Result<()> {
    let unfinished = rollback::Entity::find()
        .filter(rollback::Column::AppId.eq(app_id))
        .filter(rollback::Column::Status.is_in(unfinished_targets()))
        .all(tx.connection())
        .await?;
    for row in unfinished {
        let canceled = clearing_lease(rollback::Entity::update_many())
            .col_expr(
                rollback::Column::Status,
                TargetStatus::Canceled.as_str().into(),
            )
            .col_expr(rollback::Column::ErrorMessage, "the app was deleted".into())
            .col_expr(rollback::Column::UpdatedAt, store::now().into())
            .filter(rollback::Column::Id.eq(row.id))
            .filter(rollback::Column::Status.is_in(target_states_moving_to(TargetStatus::Canceled)))
            .exec(tx.connection())
            .await?;
        if canceled.rows_affected == 1 {
            set_release_state(tx, row.release_id, ReleaseState::Failed).await?;
        }
    }
    Ok(())
}
