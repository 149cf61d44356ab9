//! A rollback's life: created with its pending release, started, deployed, and ended
//! `succeeded` (the release becomes current) or `failed`, or canceled when its app is
//! deleted. Rollback rows sit at the target level of the lock order: after the app, before
//! releases.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{
    auto_promotion::{record_triggers, Trigger},
    target_states_moving_to, DeployOutcome, Transaction,
};
use crate::{
    domain::{access::Caller, promotion::TargetStatus, status::ReleaseState},
    error::{Error, Result},
    pipeline_events::{PipelineEventDraft, Scope},
    store::{
        self,
        entities::{app, release, rollback},
        insert_release_with_next_version,
        leases::unfinished_targets,
        rollbacks::RollbackMove,
        NewRelease,
    },
};

/// Records a rollback of `app` to the earlier release `to`: a new `pending` release with
/// that image and the next version, queued for the engine. The app stays locked live
/// until the rollback commits.
pub async fn create_rollback(
    tx: &mut Transaction,
    app: &app::Model,
    to: &release::Model,
    caller: &Caller,
) -> Result<release::Model> {
    let author = caller.author();
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
            created_by_id: author.id,
            created_by_email: author.email,
        },
    )
    .await?;
    let now = store::queue_clock(tx.connection()).await?;
    let row = rollback::Model {
        id: Uuid::new_v4(),
        app_id: app.id,
        release_id: created.id,
        rolled_back_to_id: to.id,
        status: TargetStatus::Pending.as_str().to_owned(),
        error_message: String::new(),
        created_by: caller.name.clone(),
        lease_owner: None,
        lease_expires_at: None,
        attempts: 0,
        created_at: now,
        updated_at: now,
    };
    store::rollbacks::insert_rollback(tx.connection(), row).await?;
    Ok(created)
}

/// pending → running under this worker's lease. False when it is no longer the worker's.
pub async fn start_rollback(db: &impl ConnectionTrait, id: Uuid, worker: &str) -> Result<bool> {
    let change = RollbackMove {
        from: target_states_moving_to(TargetStatus::Running),
        to: TargetStatus::Running,
        error_message: None,
        worker: Some(worker.to_owned()),
    };
    Ok(store::rollbacks::move_rollback(db, id, change).await?)
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
    let change = RollbackMove {
        from: target_states_moving_to(status),
        to: status,
        error_message: Some(error_message),
        worker: Some(worker.to_owned()),
    };
    if !store::rollbacks::move_rollback(tx.connection(), rollback.id, change).await? {
        return Ok(false);
    }
    store::releases::set_state(tx.connection(), rollback.release_id, release_state, None).await?;
    tx.add_pipeline_event(PipelineEventDraft::new(
        Scope::App(rollback.app_id),
        "release.updated",
        rollback.release_id,
        // The name is read with the release when the event is sent.
        Some((rollback.app_id, "")),
    ));
    if release_state == ReleaseState::Succeeded {
        let version = store::releases::release_by_id(tx.connection(), rollback.release_id)
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

/// Cancels the unfinished rollbacks of an app being deleted; their releases fail. The
/// caller holds the app's lock.
pub async fn cancel_rollbacks_of_deleted_app(tx: &mut Transaction, app_id: Uuid) -> Result<()> {
    let unfinished =
        store::rollbacks::rollbacks_of_app_in(tx.connection(), app_id, unfinished_targets())
            .await?;
    for row in unfinished {
        let change = RollbackMove {
            from: target_states_moving_to(TargetStatus::Canceled),
            to: TargetStatus::Canceled,
            error_message: Some("the app was deleted".to_owned()),
            worker: None,
        };
        if store::rollbacks::move_rollback(tx.connection(), row.id, change).await? {
            store::releases::set_state(tx.connection(), row.release_id, ReleaseState::Failed, None)
                .await?;
        }
    }
    Ok(())
}
