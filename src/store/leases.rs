//! Leases and the per-app queue, for all leased work: promotion targets and rollbacks.
//! Work is free when it is unfinished and nobody holds an unexpired lease on it; claims
//! are compare-and-set updates, so two workers (in one process or several sharing
//! PostgreSQL) never hold the same work.
//! Which work is free to claim in queue order is [`super::queue`]'s part.

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
    store::{
        self,
        entities::{app, promotion_target, rollback},
    },
};

/// The stored names of the states of work that still needs a worker: the states the
/// transition table leads on from.
pub fn unfinished_targets() -> Vec<&'static str> {
    TargetStatus::unfinished()
        .map(TargetStatus::as_str)
        .collect()
}

/// The stored names of the states in which work needs a deploy worker: what claims take.
/// A verifying target is unfinished, and holds its app's queue, but is not claimed to
/// deploy.
pub fn deploying_states() -> Vec<&'static str> {
    TargetStatus::ALL
        .into_iter()
        .filter(|status| status.is_deploying())
        .map(TargetStatus::as_str)
        .collect()
}

/// A table of leased work: its rows carry a status, a lease and an attempt count.
pub trait LeasedWork: EntityTrait {
    fn id() -> Self::Column;
    fn app_id() -> Self::Column;
    fn status() -> Self::Column;
    fn lease_owner() -> Self::Column;
    fn lease_expires_at() -> Self::Column;
    fn attempts() -> Self::Column;
    /// When the work joined its app's queue.
    fn queued_at() -> Self::Column;
    /// Which rows are in the queue at all.
    fn in_queue() -> Condition;
}

impl LeasedWork for promotion_target::Entity {
    fn id() -> Self::Column {
        promotion_target::Column::Id
    }
    fn app_id() -> Self::Column {
        promotion_target::Column::AppId
    }
    fn status() -> Self::Column {
        promotion_target::Column::Status
    }
    fn lease_owner() -> Self::Column {
        promotion_target::Column::LeaseOwner
    }
    fn lease_expires_at() -> Self::Column {
        promotion_target::Column::LeaseExpiresAt
    }
    fn attempts() -> Self::Column {
        promotion_target::Column::Attempts
    }
    fn queued_at() -> Self::Column {
        promotion_target::Column::QueuedAt
    }
    fn in_queue() -> Condition {
        Condition::all().add(promotion_target::Column::QueuedAt.is_not_null())
    }
}

impl LeasedWork for rollback::Entity {
    fn id() -> Self::Column {
        rollback::Column::Id
    }
    fn app_id() -> Self::Column {
        rollback::Column::AppId
    }
    fn status() -> Self::Column {
        rollback::Column::Status
    }
    fn lease_owner() -> Self::Column {
        rollback::Column::LeaseOwner
    }
    fn lease_expires_at() -> Self::Column {
        rollback::Column::LeaseExpiresAt
    }
    fn attempts() -> Self::Column {
        rollback::Column::Attempts
    }
    fn queued_at() -> Self::Column {
        rollback::Column::CreatedAt
    }
    fn in_queue() -> Condition {
        Condition::all()
    }
}

/// When a lease taken or renewed now runs out.
fn lease_expiry(ttl: Duration) -> DateTime<Utc> {
    store::now() + ChronoDuration::from_std(ttl).unwrap_or_else(|_| ChronoDuration::seconds(30))
}

/// Nobody holds the work, or its holder's lease ran out.
pub fn lease_is_free<E: LeasedWork>() -> Condition {
    Condition::any()
        .add(E::lease_expires_at().is_null())
        .add(E::lease_expires_at().lt(store::now()))
}

/// Unfinished work with a free lease, oldest first: the candidates to claim.
pub async fn claimable<E: LeasedWork>(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<E::Model>> {
    Ok(E::find()
        .filter(E::status().is_in(deploying_states()))
        .filter(E::in_queue())
        .filter(lease_is_free::<E>())
        .order_by_asc(E::queued_at())
        .order_by_asc(E::id())
        .limit(limit)
        .all(db)
        .await?)
}

/// Takes the lease on free work. False when another worker was faster, or the work
/// finished meanwhile.
pub async fn try_claim<E: LeasedWork>(
    db: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    ttl: Duration,
) -> Result<bool> {
    let taken = E::update_many()
        .col_expr(E::lease_owner(), Some(worker.to_owned()).into())
        .col_expr(E::lease_expires_at(), Some(lease_expiry(ttl)).into())
        .col_expr(E::attempts(), Expr::col(E::attempts()).add(1))
        .filter(E::id().eq(id))
        .filter(E::status().is_in(deploying_states()))
        .filter(E::in_queue())
        .filter(lease_is_free::<E>())
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Takes the leases on free targets in one statement where the database returns what it
/// updated (PostgreSQL), else one at a time. Returns the ids taken.
pub async fn try_claim_targets(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    worker: &str,
    ttl: Duration,
) -> Result<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if !db.support_returning() {
        let mut taken = Vec::new();
        for id in ids {
            if try_claim::<promotion_target::Entity>(db, *id, worker, ttl).await? {
                taken.push(*id);
            }
        }
        return Ok(taken);
    }
    Ok(promotion_target::Entity::update_many()
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
        .filter(promotion_target::Column::Id.is_in(ids.iter().copied()))
        .filter(promotion_target::Column::Status.is_in(deploying_states()))
        .filter(promotion_target::Entity::in_queue())
        .filter(lease_is_free::<promotion_target::Entity>())
        .exec_with_returning(db)
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect())
}

/// Extends the lease on work this worker holds. False when the lease was lost.
pub async fn renew_lease<E: LeasedWork>(
    db: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    ttl: Duration,
) -> bool {
    E::update_many()
        .col_expr(E::lease_expires_at(), Some(lease_expiry(ttl)).into())
        .filter(E::id().eq(id))
        .filter(E::lease_owner().eq(worker.to_owned()))
        .exec(db)
        .await
        .map(|result| result.rows_affected == 1)
        .unwrap_or(false)
}

/// Adds "nobody holds it any more" to an update of leased work.
pub fn clearing_lease<E: LeasedWork>(update: UpdateMany<E>) -> UpdateMany<E> {
    update
        .col_expr(E::lease_owner(), Option::<String>::None.into())
        .col_expr(E::lease_expires_at(), Option::<DateTime<Utc>>::None.into())
}

/// Gives held work back without finishing it, in one statement; work this worker no
/// longer holds is left as it is.
pub async fn release_leases<E: LeasedWork>(db: &impl ConnectionTrait, ids: &[Uuid], worker: &str) {
    if ids.is_empty() {
        return;
    }
    let result = clearing_lease(E::update_many())
        .filter(E::id().is_in(ids.iter().copied()))
        .filter(E::lease_owner().eq(worker.to_owned()))
        .exec(db)
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, ?ids, "could not release leases; they will expire");
    }
}

/// Whether held work may still deploy: it is running under this worker's lease and its
/// app is live. Checked right before deploying, so that an app deletion, a cancel or a
/// lost lease committed meanwhile stops the deploy.
pub async fn is_deployable<E: LeasedWork>(
    db: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
) -> Result<bool> {
    let app_id: Option<Uuid> = E::find()
        .select_only()
        .column(E::app_id())
        .filter(E::id().eq(id))
        .filter(E::status().eq(TargetStatus::Running.as_str()))
        .filter(E::lease_owner().eq(worker.to_owned()))
        .into_tuple()
        .one(db)
        .await?;
    let Some(app_id) = app_id else {
        return Ok(false);
    };
    Ok(app::Entity::find_by_id(app_id)
        .filter(app::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .is_some())
}

/// Which of the held targets may still deploy, checked for all of them at once: the batch
/// form of [`is_deployable`].
pub async fn deployable_targets(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    worker: &str,
) -> Result<std::collections::HashSet<Uuid>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let held: Vec<(Uuid, Uuid)> = promotion_target::Entity::find()
        .select_only()
        .column(promotion_target::Column::Id)
        .column(promotion_target::Column::AppId)
        .filter(promotion_target::Column::Id.is_in(ids.iter().copied()))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Running.as_str()))
        .filter(promotion_target::Column::LeaseOwner.eq(worker.to_owned()))
        .into_tuple()
        .all(db)
        .await?;
    if held.is_empty() {
        return Ok(Default::default());
    }
    let live: std::collections::HashSet<Uuid> = app::Entity::find()
        .select_only()
        .column(app::Column::Id)
        .filter(app::Column::Id.is_in(held.iter().map(|(_, app)| *app)))
        .filter(app::Column::DeletedAt.is_null())
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(held
        .into_iter()
        .filter(|(_, app)| live.contains(app))
        .map(|(id, _)| id)
        .collect())
}
