//! Canceling: by a caller, which cancels the pending targets and lets running ones finish,
//! or by an app's deletion, which cancels that app's unfinished targets wherever they are.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{
    events::{append, finish_if_complete, EventDraft},
    leases::clearing_lease,
    lock_promotion, target_states_moving_to, unfinished_targets, Transaction,
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
        entities::{app, promotion, promotion_target, release},
    },
    views::ResourceRef,
};

async fn app_ref(tx: &Transaction, app_id: Uuid) -> Result<ResourceRef> {
    let found = app::Entity::find_by_id(app_id)
        .one(tx.connection())
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
    promotion::Entity::update_many()
        .col_expr(
            promotion::Column::CancelRequestedAt,
            Some(store::now()).into(),
        )
        .col_expr(promotion::Column::UpdatedAt, store::now().into())
        .filter(promotion::Column::Id.eq(promotion_id))
        .filter(promotion::Column::CancelRequestedAt.is_null())
        .exec(tx.connection())
        .await?;
    let pending = promotion_target::Entity::find()
        .filter(promotion_target::Column::PromotionId.eq(promotion_id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
        .order_by_asc(promotion_target::Column::Position)
        .all(tx.connection())
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
    let mut update = promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::Status,
            TargetStatus::Canceled.as_str().into(),
        )
        .col_expr(promotion_target::Column::UpdatedAt, store::now().into());
    if let Some(error_message) = error_message {
        update = update.col_expr(
            promotion_target::Column::ErrorMessage,
            error_message.to_owned().into(),
        );
    }
    let updated = update
        .filter(promotion_target::Column::Id.eq(target.id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
        .exec(tx.connection())
        .await?;
    if updated.rows_affected == 0 {
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
    let pending = promotion_target::Entity::find()
        .filter(promotion_target::Column::AppId.eq(app_id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
        .filter(promotion_target::Column::PromotionId.ne(newer))
        .order_by_asc(promotion_target::Column::PromotionId)
        .all(tx.connection())
        .await?;
    if pending.is_empty() {
        return Ok(());
    }
    let automatic: std::collections::HashSet<Uuid> = promotion::Entity::find()
        .filter(promotion::Column::Id.is_in(pending.iter().map(|t| t.promotion_id)))
        .filter(promotion::Column::CreatedBy.eq(AUTO_PROMOTION_CREATOR))
        .all(tx.connection())
        .await?
        .into_iter()
        .map(|promotion| promotion.id)
        .collect();
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
    let unfinished = promotion_target::Entity::find()
        .filter(promotion_target::Column::AppId.eq(app_id))
        .filter(promotion_target::Column::Status.is_in(unfinished_targets()))
        .order_by_asc(promotion_target::Column::PromotionId)
        .all(tx.connection())
        .await?;
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
    let Some(target) = promotion_target::Entity::find_by_id(target_id)
        .one(tx.connection())
        .await?
    else {
        return Ok(());
    };
    lock_promotion(tx, target.promotion_id).await?;
    let app = app_ref(tx, target.app_id).await?;
    let reason = match by {
        Some(by) => format!("app '{}' was deleted by '{by}'", app.name),
        None => format!("app '{}' was deleted", app.name),
    };
    let canceled = clearing_lease(promotion_target::Entity::update_many())
        .col_expr(
            promotion_target::Column::Status,
            TargetStatus::Canceled.as_str().into(),
        )
        .col_expr(promotion_target::Column::AppDeleted, true.into())
        .col_expr(
            promotion_target::Column::ErrorMessage,
            reason.clone().into(),
        )
        .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
        .filter(promotion_target::Column::Id.eq(target.id))
        .filter(
            promotion_target::Column::Status.is_in(target_states_moving_to(TargetStatus::Canceled)),
        )
        .exec(tx.connection())
        .await?;
    if canceled.rows_affected == 0 {
        return Ok(());
    }
    if let Some(release_id) = target.release_id {
        release::Entity::update_many()
            .col_expr(
                release::Column::Status,
                ReleaseState::Failed.as_str().into(),
            )
            .col_expr(release::Column::UpdatedAt, store::now().into())
            .filter(release::Column::Id.eq(release_id))
            .filter(release::Column::Status.eq(ReleaseState::Pending.as_str()))
            .exec(tx.connection())
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
