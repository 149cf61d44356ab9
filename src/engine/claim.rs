//! Claiming work. A target is free when it is pending or running and nobody holds an
//! unexpired lease on it. Claims are compare-and-set updates, so two workers (in one
//! process or in several sharing PostgreSQL) never hold the same target.
//!
//! Per-app queueing: a target waits while an earlier promotion still has an unfinished
//! target on the same app. "Earlier" is creation order, the same for every worker.

use std::collections::HashMap;

use chrono::Duration as ChronoDuration;
use sea_orm::{
    sea_query::Expr, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::EngineContext;
use crate::{
    domain::promotion::{EventKind, TargetStatus},
    error::Result,
    progress::{self, EventDraft},
    service::views::ResourceRef,
    store::{
        self,
        entities::{app, promotion_target},
    },
};

/// The target states that still need a worker.
fn unfinished() -> [&'static str; 2] {
    [
        TargetStatus::Pending.as_str(),
        TargetStatus::Running.as_str(),
    ]
}

/// Claims up to `limit` free targets, oldest promotion first, skipping (and announcing)
/// targets queued behind another promotion.
pub(crate) async fn claim_targets(
    context: &EngineContext,
    limit: usize,
) -> Result<Vec<promotion_target::Model>> {
    let now = store::now();
    let candidates = promotion_target::Entity::find()
        .filter(promotion_target::Column::Status.is_in(unfinished()))
        .filter(
            Condition::any()
                .add(promotion_target::Column::LeaseExpiresAt.is_null())
                .add(promotion_target::Column::LeaseExpiresAt.lt(now)),
        )
        .order_by_asc(promotion_target::Column::CreatedAt)
        .order_by_asc(promotion_target::Column::PromotionId)
        .order_by_asc(promotion_target::Column::Position)
        .limit((limit * 4 + 16) as u64)
        .all(&context.db)
        .await?;
    let mut claimed = Vec::new();
    let mut blocked_apps: HashMap<Uuid, Uuid> = HashMap::new();
    for candidate in candidates {
        if claimed.len() >= limit {
            break;
        }
        if let Some(blocker) = blocked_apps.get(&candidate.app_id).copied() {
            announce_queued(context, &candidate, blocker).await?;
            continue;
        }
        if let Some(blocker) = earlier_unfinished(context, &candidate).await? {
            blocked_apps.insert(candidate.app_id, blocker);
            announce_queued(context, &candidate, blocker).await?;
            continue;
        }
        let expires = store::now()
            + ChronoDuration::from_std(context.settings.lease_ttl)
                .unwrap_or_else(|_| ChronoDuration::seconds(30));
        let taken = promotion_target::Entity::update_many()
            .col_expr(
                promotion_target::Column::LeaseOwner,
                Some(context.settings.worker_id.clone()).into(),
            )
            .col_expr(
                promotion_target::Column::LeaseExpiresAt,
                Some(expires).into(),
            )
            .col_expr(
                promotion_target::Column::Attempts,
                Expr::col(promotion_target::Column::Attempts).add(1),
            )
            .filter(promotion_target::Column::Id.eq(candidate.id))
            .filter(promotion_target::Column::Status.is_in(unfinished()))
            .filter(
                Condition::any()
                    .add(promotion_target::Column::LeaseExpiresAt.is_null())
                    .add(promotion_target::Column::LeaseExpiresAt.lt(store::now())),
            )
            .exec(&context.db)
            .await?;
        if taken.rows_affected == 1 {
            // Later targets on this app in later promotions must wait for this one.
            blocked_apps.insert(candidate.app_id, candidate.promotion_id);
            claimed.push(candidate);
        }
    }
    Ok(claimed)
}

/// The earliest other promotion with an unfinished target on the candidate's app, created
/// before the candidate's promotion.
async fn earlier_unfinished(
    context: &EngineContext,
    candidate: &promotion_target::Model,
) -> Result<Option<Uuid>> {
    let earlier = promotion_target::Entity::find()
        .filter(promotion_target::Column::AppId.eq(candidate.app_id))
        .filter(promotion_target::Column::Status.is_in(unfinished()))
        .filter(promotion_target::Column::PromotionId.ne(candidate.promotion_id))
        .filter(
            Condition::any()
                .add(promotion_target::Column::CreatedAt.lt(candidate.created_at))
                .add(
                    Condition::all()
                        .add(promotion_target::Column::CreatedAt.eq(candidate.created_at))
                        .add(promotion_target::Column::PromotionId.lt(candidate.promotion_id)),
                ),
        )
        .order_by_asc(promotion_target::Column::CreatedAt)
        .one(&context.db)
        .await?;
    Ok(earlier.map(|target| target.promotion_id))
}

/// Emits `target.queued` once per promotion a target waits behind.
async fn announce_queued(
    context: &EngineContext,
    target: &promotion_target::Model,
    blocker: Uuid,
) -> Result<()> {
    if target.queued_behind == Some(blocker) {
        return Ok(());
    }
    let txn = context.db.begin().await?;
    let marked = promotion_target::Entity::update_many()
        .col_expr(promotion_target::Column::QueuedBehind, Some(blocker).into())
        .filter(promotion_target::Column::Id.eq(target.id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
        .filter(
            Condition::any()
                .add(promotion_target::Column::QueuedBehind.is_null())
                .add(promotion_target::Column::QueuedBehind.ne(blocker)),
        )
        .exec(&txn)
        .await?;
    if marked.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(());
    }
    let app = app::Entity::find_by_id(target.app_id).one(&txn).await?;
    let app_ref = app.map(|app| ResourceRef {
        id: app.id,
        name: app.name,
    });
    let event = progress::append_event(
        &txn,
        target.promotion_id,
        EventDraft {
            kind: EventKind::TargetQueued,
            target: Some(target.id),
            message: format!(
                "'{}' is busy with promotion {blocker}; waiting for it to finish",
                app_ref.as_ref().map(|a| a.name.as_str()).unwrap_or("?")
            ),
            app: app_ref,
            target_status: Some(TargetStatus::Pending),
            release: None,
            waiting_for: Some(blocker),
        },
    )
    .await?;
    progress::commit_and_publish(txn, &context.hub, vec![event]).await
}

/// Gives a claimed target back without running it.
pub(crate) async fn release_lease(context: &EngineContext, target: Uuid) {
    let result = promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::LeaseOwner,
            Option::<String>::None.into(),
        )
        .col_expr(
            promotion_target::Column::LeaseExpiresAt,
            Option::<chrono::DateTime<chrono::Utc>>::None.into(),
        )
        .filter(promotion_target::Column::Id.eq(target))
        .filter(promotion_target::Column::LeaseOwner.eq(context.settings.worker_id.clone()))
        .exec(&context.db)
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, %target, "could not release a lease; it will expire");
    }
}

/// Extends the lease on a target this worker holds. False when the lease was lost.
pub(crate) async fn renew_lease(context: &EngineContext, target: Uuid) -> bool {
    let expires = store::now()
        + ChronoDuration::from_std(context.settings.lease_ttl)
            .unwrap_or_else(|_| ChronoDuration::seconds(30));
    promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::LeaseExpiresAt,
            Some(expires).into(),
        )
        .filter(promotion_target::Column::Id.eq(target))
        .filter(promotion_target::Column::LeaseOwner.eq(context.settings.worker_id.clone()))
        .exec(&context.db)
        .await
        .map(|result| result.rows_affected == 1)
        .unwrap_or(false)
}
