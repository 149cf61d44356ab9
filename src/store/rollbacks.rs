//! Rollbacks: the row that queues one, its moves from state to state under a worker's lease,
//! and an app's unfinished ones.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{entities::rollback, leases::clearing_lease};
use crate::domain::promotion::TargetStatus;

/// Stores a new rollback row.
pub async fn insert_rollback(db: &impl ConnectionTrait, row: rollback::Model) -> Result<(), DbErr> {
    rollback::ActiveModel::from(row).insert(db).await?;
    Ok(())
}

/// A rollback's move, by [`move_rollback`].
pub struct RollbackMove {
    /// The stored states it may move from.
    pub from: Vec<&'static str>,
    pub to: TargetStatus,
    /// Stored on the row, when given.
    pub error_message: Option<String>,
    /// Held by this worker, when given; a move to a final state gives the lease back.
    pub worker: Option<String>,
}

/// Moves one rollback. Returns whether it moved.
pub async fn move_rollback(
    db: &impl ConnectionTrait,
    id: Uuid,
    change: RollbackMove,
) -> Result<bool, DbErr> {
    let mut update = rollback::Entity::update_many()
        .col_expr(rollback::Column::Status, change.to.as_str().into())
        .col_expr(rollback::Column::UpdatedAt, super::now().into());
    if change.to.is_final() {
        update = clearing_lease(update);
    }
    if let Some(message) = change.error_message {
        update = update.col_expr(rollback::Column::ErrorMessage, message.into());
    }
    let mut update = update
        .filter(rollback::Column::Id.eq(id))
        .filter(rollback::Column::Status.is_in(change.from));
    if let Some(worker) = change.worker {
        update = update.filter(rollback::Column::LeaseOwner.eq(worker));
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// The rollbacks of `app_id` in one of `states` (stored names).
pub async fn rollbacks_of_app_in(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    states: Vec<&'static str>,
) -> Result<Vec<rollback::Model>, DbErr> {
    rollback::Entity::find()
        .filter(rollback::Column::AppId.eq(app_id))
        .filter(rollback::Column::Status.is_in(states))
        .all(db)
        .await
}
