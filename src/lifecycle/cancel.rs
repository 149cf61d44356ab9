//! Canceling: by a caller, which cancels the pending targets and lets running ones finish,
//! or by an app's deletion, which cancels that app's unfinished targets wherever they are.

use uuid::Uuid;

use super::{
    events::{append, finish_if_complete, EventDraft},
    lock_promotion, target_states_moving_to, Transaction,
};
use crate::{
    domain::{
        policy::AUTO_PROMOTION_CREATOR,
        promotion::{EventKind, PromotionStatus, TargetStatus},
        status::ReleaseState,
    },
    error::{Error, Result},
    store::{
        self,
        entities::promotion_target,
        leases::unfinished_targets,
        targets::{cancel_target, TargetCancel},
    },
    views::ResourceRef,
};

async fn app_ref(tx: &Transaction, app_id: Uuid) -> Result<ResourceRef> {
    let found = store::apps::app_by_id(tx.connection(), app_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("app {app_id} is missing")))?;
    Ok(ResourceRef {
        id: found.id,
        name: found.name,
    })
}

/// Cancels a promotion on a caller's request: its pending targets are canceled at once,
/// running ones finish, and the promotion ends `canceled`. A finished promotion cannot be
/// canceled (FAILED_PRECONDITION).
pub async fn cancel_promotion(tx: &mut Transaction, promotion_id: Uuid, by: &str) -> Result<()> {
    let current = lock_promotion(tx, promotion_id).await?;
    let status = PromotionStatus::parse(&current.status).ok_or_else(|| {
        Error::Internal(format!("promotion {promotion_id} has an unknown status"))
    })?;
    if status.is_final() {
        return Err(Error::FailedPrecondition(format!(
            "promotion {promotion_id} already finished as {status}; only a pending or running promotion can be canceled"
        )));
    }
    store::promotions::request_cancel(tx.connection(), promotion_id).await?;
    let pending = store::targets::targets_of_promotion_in(
        tx.connection(),
        promotion_id,
        TargetStatus::Pending,
    )
    .await?;
    for target in pending {
        let message = format!("canceled by '{by}'");
        cancel_pending_target(tx, &target, &message, None).await?;
    }
    finish_if_complete(tx, promotion_id).await
}

/// Cancels one target that has not started, with `target.canceled` saying
/// "target '<app>' <what happened>"; `error_message`, when given, is stored on the target.
/// Nothing happens when the target is no longer pending. The caller holds the promotion's
/// lock.
pub(super) async fn cancel_pending_target(
    tx: &mut Transaction,
    target: &promotion_target::Model,
    what_happened: &str,
    error_message: Option<&str>,
) -> Result<()> {
    // A caller's cancel stops only what has not started; running targets finish.
    let cancel = TargetCancel {
        from: vec![TargetStatus::Pending.as_str()],
        error_message: error_message.map(str::to_owned),
        app_deleted: false,
    };
    if !cancel_target(tx.connection(), target.id, cancel).await? {
        return Ok(());
    }
    let app = app_ref(tx, target.app_id).await?;
    let message = format!("target '{}' {what_happened}", app.name);
    append(
        tx,
        target.promotion_id,
        EventDraft::about_target(
            EventKind::TargetCanceled,
            target,
            app,
            TargetStatus::Canceled,
            message,
        ),
    )
    .await
}

/// Cancels the pending targets on `app_id` of auto-promotions other than `newer`, which
/// supersedes them: a stale version never deploys after a newer one was chosen. The caller
/// holds the app's lock, as creating `newer` took it.
pub(super) async fn cancel_superseded_targets(
    tx: &mut Transaction,
    app_id: Uuid,
    newer: Uuid,
) -> Result<()> {
    let pending: Vec<promotion_target::Model> = store::targets::targets_on_app_in(
        tx.connection(),
        app_id,
        vec![TargetStatus::Pending.as_str()],
    )
    .await?
    .into_iter()
    .filter(|target| target.promotion_id != newer)
    .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let automatic = store::promotions::created_by_among(
        tx.connection(),
        pending.iter().map(|t| t.promotion_id),
        AUTO_PROMOTION_CREATOR,
    )
    .await?;
    for target in pending {
        if !automatic.contains(&target.promotion_id) {
            continue;
        }
        lock_promotion(tx, target.promotion_id).await?;
        let reason = format!("superseded by auto-promotion {newer}");
        cancel_pending_target(tx, &target, &format!("canceled: {reason}"), Some(&reason)).await?;
        finish_if_complete(tx, target.promotion_id).await?;
    }
    Ok(())
}

/// Cancels every unfinished target of an app being deleted. The caller has already marked
/// the app deleted in this transaction, which holds the app's row lock: the first step of
/// the lock order.
pub async fn cancel_targets_of_deleted_app(
    tx: &mut Transaction,
    app_id: Uuid,
    by: &str,
) -> Result<()> {
    let unfinished =
        store::targets::targets_on_app_in(tx.connection(), app_id, unfinished_targets()).await?;
    for target in unfinished {
        cancel_target_of_deleted_app(tx, target.id, Some(by)).await?;
    }
    Ok(())
}

/// Cancels one unfinished target whose app was deleted. Its release, if one was created
/// and never deployed, is marked failed: it never becomes the app's current release.
pub(super) async fn cancel_target_of_deleted_app(
    tx: &mut Transaction,
    target_id: Uuid,
    by: Option<&str>,
) -> Result<()> {
    let Some(target) = store::targets::target_by_id(tx.connection(), target_id).await? else {
        return Ok(());
    };
    lock_promotion(tx, target.promotion_id).await?;
    let app = app_ref(tx, target.app_id).await?;
    let reason = match by {
        Some(by) => format!("app '{}' was deleted by '{by}'", app.name),
        None => format!("app '{}' was deleted", app.name),
    };
    let cancel = TargetCancel {
        from: target_states_moving_to(TargetStatus::Canceled),
        error_message: Some(reason.clone()),
        app_deleted: true,
    };
    if !cancel_target(tx.connection(), target.id, cancel).await? {
        return Ok(());
    }
    // A release never deployed, or a verification's rollback not deployed yet, fails;
    // nothing is rolled back for a deleted app.
    for release_id in [target.release_id, target.rollback_release_id]
        .into_iter()
        .flatten()
    {
        store::releases::set_state(
            tx.connection(),
            release_id,
            ReleaseState::Failed,
            Some(ReleaseState::Pending),
        )
        .await?;
    }
    append(
        tx,
        target.promotion_id,
        EventDraft::about_target(
            EventKind::TargetCanceled,
            &target,
            app,
            TargetStatus::Canceled,
            format!("target canceled: {reason}"),
        ),
    )
    .await?;
    finish_if_complete(tx, target.promotion_id).await
}
