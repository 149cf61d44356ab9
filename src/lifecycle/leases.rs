//! Leases and the per-app queue. A target is free when it is unfinished and nobody holds
//! an unexpired lease on it; claims are compare-and-set updates, so two workers (in one
//! process or several sharing PostgreSQL) never hold the same target.
//!
//! Queueing: a target waits while an earlier promotion still has an unfinished target on
//! the same app. "Earlier" is creation order with the promotion id breaking ties, the same
//! for every worker and for the dry run's plan.

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sea_orm::{
    sea_query::Expr, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, UpdateMany,
};
use uuid::Uuid;

use crate::{
    domain::promotion::TargetStatus,
    error::Result,
    store::{self, entities::promotion_target},
};

/// The stored states of a target that still needs a worker.
pub const UNFINISHED_TARGETS: [&str; 2] = [
    TargetStatus::UNFINISHED[0].as_str(),
    TargetStatus::UNFINISHED[1].as_str(),
];

/// When a lease taken or renewed now runs out.
fn lease_expiry(ttl: Duration) -> DateTime<Utc> {
    store::now() + ChronoDuration::from_std(ttl).unwrap_or_else(|_| ChronoDuration::seconds(30))
}

/// Nobody holds the target, or its holder's lease ran out.
fn lease_is_free() -> Condition {
    Condition::any()
        .add(promotion_target::Column::LeaseExpiresAt.is_null())
        .add(promotion_target::Column::LeaseExpiresAt.lt(store::now()))
}

/// Unfinished targets with a free lease, oldest promotion first: the candidates to claim.
pub async fn claimable_targets(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<promotion_target::Model>> {
    Ok(promotion_target::Entity::find()
        .filter(promotion_target::Column::Status.is_in(UNFINISHED_TARGETS))
        .filter(lease_is_free())
        .order_by_asc(promotion_target::Column::CreatedAt)
        .order_by_asc(promotion_target::Column::PromotionId)
        .order_by_asc(promotion_target::Column::Position)
        .limit(limit)
        .all(db)
        .await?)
}

/// Takes the lease on a free target. False when another worker was faster, or the
/// target finished meanwhile.
pub async fn try_claim(
    db: &impl ConnectionTrait,
    target: Uuid,
    worker: &str,
    ttl: Duration,
) -> Result<bool> {
    let taken = promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::LeaseOwner,
            Some(worker.to_owned()).into(),
        )
        .col_expr(
            promotion_target::Column::LeaseExpiresAt,
            Some(lease_expiry(ttl)).into(),
        )
        .col_expr(
            promotion_target::Column::Attempts,
            Expr::col(promotion_target::Column::Attempts).add(1),
        )
        .filter(promotion_target::Column::Id.eq(target))
        .filter(promotion_target::Column::Status.is_in(UNFINISHED_TARGETS))
        .filter(lease_is_free())
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Extends the lease on a target this worker holds. False when the lease was lost.
pub async fn renew_lease(
    db: &impl ConnectionTrait,
    target: Uuid,
    worker: &str,
    ttl: Duration,
) -> bool {
    promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::LeaseExpiresAt,
            Some(lease_expiry(ttl)).into(),
        )
        .filter(promotion_target::Column::Id.eq(target))
        .filter(promotion_target::Column::LeaseOwner.eq(worker.to_owned()))
        .exec(db)
        .await
        .map(|result| result.rows_affected == 1)
        .unwrap_or(false)
}

/// Adds "nobody holds it any more" to an update of targets.
pub(super) fn clearing_lease(
    update: UpdateMany<promotion_target::Entity>,
) -> UpdateMany<promotion_target::Entity> {
    update
        .col_expr(
            promotion_target::Column::LeaseOwner,
            Option::<String>::None.into(),
        )
        .col_expr(
            promotion_target::Column::LeaseExpiresAt,
            Option::<DateTime<Utc>>::None.into(),
        )
}

/// Gives a held target back without finishing it.
pub async fn release_lease(db: &impl ConnectionTrait, target: Uuid, worker: &str) {
    let result = clearing_lease(promotion_target::Entity::update_many())
        .filter(promotion_target::Column::Id.eq(target))
        .filter(promotion_target::Column::LeaseOwner.eq(worker.to_owned()))
        .exec(db)
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, %target, "could not release a lease; it will expire");
    }
}

/// The earliest promotion, other than the waiting one, with an unfinished target on `app`
/// that comes before it in the queue. `waiting` is the promotion's `(created_at, id)`, or
/// `None` for a promotion that would be created now, which comes after every other.
pub async fn queued_behind(
    db: &impl ConnectionTrait,
    app: Uuid,
    waiting: Option<(DateTime<Utc>, Uuid)>,
) -> Result<Option<Uuid>> {
    let mut earlier = promotion_target::Entity::find()
        .filter(promotion_target::Column::AppId.eq(app))
        .filter(promotion_target::Column::Status.is_in(UNFINISHED_TARGETS));
    if let Some((created_at, promotion)) = waiting {
        earlier = earlier
            .filter(promotion_target::Column::PromotionId.ne(promotion))
            .filter(
                Condition::any()
                    .add(promotion_target::Column::CreatedAt.lt(created_at))
                    .add(
                        Condition::all()
                            .add(promotion_target::Column::CreatedAt.eq(created_at))
                            .add(promotion_target::Column::PromotionId.lt(promotion)),
                    ),
            );
    }
    Ok(earlier
        .order_by_asc(promotion_target::Column::CreatedAt)
        .order_by_asc(promotion_target::Column::PromotionId)
        .one(db)
        .await?
        .map(|target| target.promotion_id))
}
