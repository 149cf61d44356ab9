//! The per-app queue. An app takes part in one deployment at a time: work waits while
//! earlier work on the same app is unfinished. "Earlier" is the order in which work joined
//! the queue, with the id breaking ties (a promotion target's is its promotion's), the same
//! for every worker and for the dry run's plan. A rollback joins when it is created; a
//! promotion's targets join when the promotion becomes `pending`, so those of a promotion
//! awaiting approval are in no queue: they neither hold nor block a place.
//!
//! Work only ever joins at the end, so what a target waits for is fixed when it joins,
//! and it is told once (`target.queued`), naming the work at the head: by the create, in
//! its transaction, for a new promotion's targets; by the engine's announcer for those of
//! an approved promotion, and for any a create could not tell.
//!
//! A freeze holds the pending targets of apps coupled at a frozen stage, unless their
//! promotion broke glass. Held targets neither start nor block: work that may run (a
//! rollback, a target exempt from the freeze) passes them, and they keep their place for
//! when the freeze ends. The engine says which stages are frozen; the queries take them as
//! `frozen`, (pipeline, stage) pairs, and read the couplings themselves.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Alias, Expr, Query, SelectStatement, UnionType},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::{
    entities::{coupling, promotion_target, rollback},
    leases::{deploying_states, lease_is_free, unfinished_targets, LeasedWork},
};
use crate::{
    domain::{promotion::TargetStatus, stage::Stage},
    error::Result,
};

/// `NOT held by a freeze` for the promotion targets of `table`: the target started, is
/// exempt, or its app is coupled at none of the `frozen` stages. `None` when nothing is
/// frozen.
fn not_held_by_freeze(
    table: impl sea_orm::sea_query::IntoIden + Clone + 'static,
    frozen: &[(Uuid, Stage)],
) -> Option<Condition> {
    use promotion_target::Column as T;
    if frozen.is_empty() {
        return None;
    }
    let column = |name: T| Expr::col((table.clone(), name));
    let mut stages = Condition::any();
    for (pipeline, stage) in frozen {
        stages = stages.add(
            Condition::all()
                .add(coupling::Column::PipelineId.eq(*pipeline))
                .add(coupling::Column::Stage.eq(stage.as_str())),
        );
    }
    let frozen_apps = Query::select()
        .column(coupling::Column::AppId)
        .from(coupling::Entity)
        .cond_where(stages)
        .to_owned();
    Some(
        Condition::any()
            .add(column(T::Status).ne(TargetStatus::Pending.as_str()))
            .add(column(T::FreezeExempt).eq(true))
            .add(column(T::AppId).not_in_subquery(frozen_apps)),
    )
}

/// Where work stands in its app's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePlace {
    /// A target of this promotion, which joined the queue then.
    Promotion {
        queued_at: DateTime<Utc>,
        promotion: Uuid,
    },
    Rollback {
        created_at: DateTime<Utc>,
        rollback: Uuid,
    },
    /// Work that would be created now, after everything else.
    New,
}

/// What work waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    Promotion(Uuid),
    Rollback(Uuid),
}

impl Blocker {
    pub fn id(self) -> Uuid {
        match self {
            Blocker::Promotion(id) | Blocker::Rollback(id) => id,
        }
    }
}

/// In the queue, and earlier than `(queued_at, id)` in its order.
fn earlier_than<E: LeasedWork>(
    id_column: E::Column,
    place: Option<(DateTime<Utc>, Uuid)>,
) -> Condition {
    let earlier = match place {
        None => Condition::all(),
        Some((queued_at, id)) => Condition::any().add(E::queued_at().lt(queued_at)).add(
            Condition::all()
                .add(E::queued_at().eq(queued_at))
                .add(id_column.lt(id)),
        ),
    };
    E::in_queue().add(earlier)
}

/// The earliest unfinished work on `app` that comes before `place` in the queue, if any.
pub async fn queued_behind(
    db: &impl ConnectionTrait,
    app: Uuid,
    place: QueuePlace,
    frozen: &[(Uuid, Stage)],
) -> Result<Option<Blocker>> {
    Ok(queued_behind_each(db, &[app], place, frozen)
        .await?
        .remove(&app))
}

/// A place's sort key: when it joined the queue, and the id breaking ties. `None` for work
/// not created yet, which comes after everything.
fn sort_key(place: QueuePlace) -> Option<(DateTime<Utc>, Uuid)> {
    match place {
        QueuePlace::Promotion {
            queued_at,
            promotion,
        } => Some((queued_at, promotion)),
        QueuePlace::Rollback {
            created_at,
            rollback,
        } => Some((created_at, rollback)),
        QueuePlace::New => None,
    }
}

/// One piece of unfinished work in an app's queue.
pub struct QueueEntry {
    pub app: Uuid,
    /// Its place: when it joined, and the id breaking ties.
    pub key: (DateTime<Utc>, Uuid),
    pub work: Blocker,
}

/// The unfinished work on `apps` that comes before `key` in the queue (all of it for
/// `None`), earliest first, passing targets held by a freeze of the `frozen` stages. One
/// query, however many apps.
pub async fn queue_entries(
    db: &impl ConnectionTrait,
    apps: &[Uuid],
    key: Option<(DateTime<Utc>, Uuid)>,
    frozen: &[(Uuid, Stage)],
) -> Result<Vec<QueueEntry>> {
    let mut query = unfinished_work::<promotion_target::Entity>(
        apps,
        key,
        promotion_target::Column::PromotionId,
        false,
    );
    if let Some(not_held) = not_held_by_freeze(promotion_target::Entity, frozen) {
        query.cond_where(not_held);
    }
    query.union(
        UnionType::All,
        unfinished_work::<rollback::Entity>(apps, key, rollback::Column::Id, true),
    );
    let rows = QueueRow::find_by_statement(db.get_database_backend().build(&query))
        .all(db)
        .await?;
    let mut entries: Vec<QueueEntry> = rows
        .into_iter()
        .map(|row| QueueEntry {
            app: row.app_id,
            key: (row.queued_at, row.work),
            work: if row.rollback {
                Blocker::Rollback(row.work)
            } else {
                Blocker::Promotion(row.work)
            },
        })
        .collect();
    entries.sort_by_key(|entry| entry.key);
    Ok(entries)
}

/// A row of [`unfinished_work`].
#[derive(FromQueryResult)]
struct QueueRow {
    app_id: Uuid,
    queued_at: DateTime<Utc>,
    /// The promotion a target belongs to, or the rollback.
    work: Uuid,
    rollback: bool,
}

/// The unfinished work of one kind on `apps` before `key` in the queue, as [`QueueRow`]s;
/// `work` names what a row stands for in the queue, and `rollback` which kind it is.
fn unfinished_work<E: LeasedWork>(
    apps: &[Uuid],
    key: Option<(DateTime<Utc>, Uuid)>,
    work: E::Column,
    rollback: bool,
) -> SelectStatement {
    E::find()
        .select_only()
        .column_as(E::app_id(), "app_id")
        .column_as(E::queued_at(), "queued_at")
        .column_as(work, "work")
        .expr_as(Expr::val(rollback), "rollback")
        .filter(E::app_id().is_in(apps.iter().copied()))
        .filter(E::status().is_in(unfinished_targets()))
        .filter(earlier_than::<E>(work, key))
        .into_query()
}

/// For each of `apps`, the earliest unfinished work on it that comes before `place` in the
/// queue; apps with none are absent. Two queries, however many apps.
pub async fn queued_behind_each(
    db: &impl ConnectionTrait,
    apps: &[Uuid],
    place: QueuePlace,
    frozen: &[(Uuid, Stage)],
) -> Result<HashMap<Uuid, Blocker>> {
    let mut blockers = HashMap::new();
    if apps.is_empty() {
        return Ok(blockers);
    }
    let own = match place {
        QueuePlace::Promotion { promotion, .. } => Some(Blocker::Promotion(promotion)),
        _ => None,
    };
    for entry in queue_entries(db, apps, sort_key(place), frozen).await? {
        if Some(entry.work) != own {
            blockers.entry(entry.app).or_insert(entry.work);
        }
    }
    Ok(blockers)
}

/// `EXISTS`: unfinished work in the queue of the outer promotion target's app, ahead of it,
/// other than targets held by a freeze of the `frozen` stages.
fn work_ahead_of_target(frozen: &[(Uuid, Stage)]) -> (SelectStatement, SelectStatement) {
    use promotion_target::Column as T;
    let outer = |column: T| Expr::col((promotion_target::Entity, column));
    let ahead = Alias::new("ahead");
    let ahead_col = |column: T| Expr::col((ahead.clone(), column));
    let mut targets = Query::select()
        .expr(Expr::val(1))
        .from_as(promotion_target::Entity, ahead.clone())
        .and_where(ahead_col(T::AppId).eq(outer(T::AppId)))
        .and_where(ahead_col(T::Status).is_in(unfinished_targets()))
        .and_where(ahead_col(T::QueuedAt).is_not_null())
        .cond_where(
            Condition::any()
                .add(ahead_col(T::QueuedAt).lt(outer(T::QueuedAt)))
                .add(
                    Condition::all()
                        .add(ahead_col(T::QueuedAt).eq(outer(T::QueuedAt)))
                        .add(ahead_col(T::PromotionId).lt(outer(T::PromotionId))),
                ),
        )
        .to_owned();
    if let Some(not_held) = not_held_by_freeze(ahead.clone(), frozen) {
        targets.cond_where(not_held);
    }
    let rollback_col = |column: rollback::Column| Expr::col((rollback::Entity, column));
    let rollbacks = Query::select()
        .expr(Expr::val(1))
        .from(rollback::Entity)
        .and_where(rollback_col(rollback::Column::AppId).eq(outer(T::AppId)))
        .and_where(rollback_col(rollback::Column::Status).is_in(unfinished_targets()))
        .cond_where(
            Condition::any()
                .add(rollback_col(rollback::Column::CreatedAt).lt(outer(T::QueuedAt)))
                .add(
                    Condition::all()
                        .add(rollback_col(rollback::Column::CreatedAt).eq(outer(T::QueuedAt)))
                        .add(rollback_col(rollback::Column::Id).lt(outer(T::PromotionId))),
                ),
        )
        .to_owned();
    (targets, rollbacks)
}

/// Targets in queue order, and a promotion's in the order of its targets.
fn in_queue_order(
    select: sea_orm::Select<promotion_target::Entity>,
) -> sea_orm::Select<promotion_target::Entity> {
    select
        .order_by_asc(promotion_target::Column::QueuedAt)
        .order_by_asc(promotion_target::Column::PromotionId)
        .order_by_asc(promotion_target::Column::Position)
}

/// Unfinished targets first in their app's queue, with a free lease and not held by a
/// freeze of the `frozen` stages, in queue order: the targets a worker may claim now. One
/// query.
pub async fn queue_heads(
    db: &impl ConnectionTrait,
    limit: u64,
    frozen: &[(Uuid, Stage)],
) -> Result<Vec<promotion_target::Model>> {
    let (targets_ahead, rollbacks_ahead) = work_ahead_of_target(frozen);
    let mut select = promotion_target::Entity::find()
        .filter(promotion_target::Column::Status.is_in(deploying_states()))
        .filter(promotion_target::Entity::in_queue())
        .filter(lease_is_free::<promotion_target::Entity>())
        .filter(Expr::exists(targets_ahead).not())
        .filter(Expr::exists(rollbacks_ahead).not());
    if let Some(not_held) = not_held_by_freeze(promotion_target::Entity, frozen) {
        select = select.filter(not_held);
    }
    Ok(in_queue_order(select).limit(limit).all(db).await?)
}

/// Pending targets that wait behind earlier work and have not said so yet, in queue order.
pub async fn unannounced_waiting(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<promotion_target::Model>> {
    let (targets_ahead, rollbacks_ahead) = work_ahead_of_target(&[]);
    let select = promotion_target::Entity::find()
        .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
        .filter(promotion_target::Entity::in_queue())
        .filter(promotion_target::Column::QueuedBehind.is_null())
        .filter(
            Condition::any()
                .add(Expr::exists(targets_ahead))
                .add(Expr::exists(rollbacks_ahead)),
        );
    Ok(in_queue_order(select).limit(limit).all(db).await?)
}

/// Notes that a pending target waits behind `blocker`, once: false when it started, ended
/// or was noted already.
pub async fn mark_queued_behind(
    db: &impl ConnectionTrait,
    target_id: Uuid,
    blocker: Uuid,
) -> Result<bool> {
    let marked = promotion_target::Entity::update_many()
        .col_expr(promotion_target::Column::QueuedBehind, Some(blocker).into())
        .filter(promotion_target::Column::Id.eq(target_id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
        .filter(promotion_target::Column::QueuedBehind.is_null())
        .exec(db)
        .await?;
    Ok(marked.rows_affected == 1)
}

/// Pending targets in the queue, not exempt, of apps coupled at `stage` of `pipeline`, that
/// were not told yet that `freeze` holds them, in queue order.
pub async fn unannounced_held(
    db: &impl ConnectionTrait,
    pipeline: Uuid,
    stage: Stage,
    freeze: Uuid,
    limit: u64,
) -> Result<Vec<promotion_target::Model>> {
    use promotion_target::Column as T;
    let coupled = Query::select()
        .column(coupling::Column::AppId)
        .from(coupling::Entity)
        .and_where(coupling::Column::PipelineId.eq(pipeline))
        .and_where(coupling::Column::Stage.eq(stage.as_str()))
        .to_owned();
    let select = promotion_target::Entity::find()
        .filter(T::Status.eq(TargetStatus::Pending.as_str()))
        .filter(promotion_target::Entity::in_queue())
        .filter(T::FreezeExempt.eq(false))
        .filter(T::AppId.in_subquery(coupled))
        .filter(
            Condition::any()
                .add(T::WaitingForFreeze.is_null())
                .add(T::WaitingForFreeze.ne(freeze)),
        );
    Ok(in_queue_order(select).limit(limit).all(db).await?)
}

/// Notes that a pending target waits for `freeze`, once per freeze: false when it started,
/// ended or was noted already.
pub async fn mark_waiting_for_freeze(
    db: &impl ConnectionTrait,
    target_id: Uuid,
    freeze: Uuid,
) -> Result<bool> {
    use promotion_target::Column as T;
    let marked = promotion_target::Entity::update_many()
        .col_expr(T::WaitingForFreeze, Some(freeze).into())
        .filter(T::Id.eq(target_id))
        .filter(T::Status.eq(TargetStatus::Pending.as_str()))
        .filter(
            Condition::any()
                .add(T::WaitingForFreeze.is_null())
                .add(T::WaitingForFreeze.ne(freeze)),
        )
        .exec(db)
        .await?;
    Ok(marked.rows_affected == 1)
}
