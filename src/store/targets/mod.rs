//! Promotion targets: a promotion's targets (with their apps' names, or those in some
//! state), an app's, a target's cancel, a batch of their moves written with their releases
//! (`batch`), and the work counts.

mod batch;

pub use batch::{write_batch, BatchWrite, BatchWritten, TargetMove};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::{entities::promotion_target, parameters::placeholder};
use crate::domain::promotion::TargetStatus;

/// Every target of a promotion, in order, with its app's name (deleted apps included).
/// Read after the promotion's lock is held, in a statement of its own: see
/// [`super::promotions::lock_with_subject`].
pub async fn targets_with_app_names(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Vec<(promotion_target::Model, String)>, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT t.*, a.name AS app_name FROM promotion_targets t \
         JOIN apps a ON a.id = t.app_id WHERE t.promotion_id = {} \
         ORDER BY t.\"position\"",
        placeholder(backend, 1),
    );
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            sql,
            [promotion_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                promotion_target::Model::from_query_result(row, "")?,
                row.try_get("", "app_name")?,
            ))
        })
        .collect()
}

/// Every target of a promotion, in order.
pub async fn targets_of_promotion(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Vec<promotion_target::Model>, DbErr> {
    promotion_target::Entity::find()
        .filter(promotion_target::Column::PromotionId.eq(promotion_id))
        .order_by_asc(promotion_target::Column::Position)
        .all(db)
        .await
}

/// The targets of a promotion in `status`, in order.
pub async fn targets_of_promotion_in(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    status: TargetStatus,
) -> Result<Vec<promotion_target::Model>, DbErr> {
    promotion_target::Entity::find()
        .filter(promotion_target::Column::PromotionId.eq(promotion_id))
        .filter(promotion_target::Column::Status.eq(status.as_str()))
        .order_by_asc(promotion_target::Column::Position)
        .all(db)
        .await
}

/// The apps a promotion's targets are on.
pub async fn target_apps_of_promotion(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    promotion_target::Entity::find()
        .select_only()
        .column(promotion_target::Column::AppId)
        .filter(promotion_target::Column::PromotionId.eq(promotion_id))
        .into_tuple()
        .all(db)
        .await
}

/// One target, if it exists.
pub async fn target_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<promotion_target::Model>, DbErr> {
    promotion_target::Entity::find_by_id(id).one(db).await
}

/// The targets on `app_id` in one of `states` (stored names), by promotion.
pub async fn targets_on_app_in(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    states: Vec<&'static str>,
) -> Result<Vec<promotion_target::Model>, DbErr> {
    promotion_target::Entity::find()
        .filter(promotion_target::Column::AppId.eq(app_id))
        .filter(promotion_target::Column::Status.is_in(states))
        .order_by_asc(promotion_target::Column::PromotionId)
        .all(db)
        .await
}

/// A cancel of one target, by [`cancel_target`].
pub struct TargetCancel {
    /// The stored states the target may be canceled from.
    pub from: Vec<&'static str>,
    /// Stored on the target, when given.
    pub error_message: Option<String>,
    /// Its app was deleted: the target counts as failed, and its lease is given back.
    pub app_deleted: bool,
}

/// Cancels one target in one of `cancel.from`. Returns whether it was canceled.
pub async fn cancel_target(
    db: &impl ConnectionTrait,
    id: Uuid,
    cancel: TargetCancel,
) -> Result<bool, DbErr> {
    let mut update = promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::Status,
            TargetStatus::Canceled.as_str().into(),
        )
        .col_expr(promotion_target::Column::UpdatedAt, super::now().into());
    if let Some(message) = cancel.error_message {
        update = update.col_expr(promotion_target::Column::ErrorMessage, message.into());
    }
    if cancel.app_deleted {
        update = super::leases::clearing_lease(update)
            .col_expr(promotion_target::Column::AppDeleted, true.into());
    }
    let canceled = update
        .filter(promotion_target::Column::Id.eq(id))
        .filter(promotion_target::Column::Status.is_in(cancel.from))
        .exec(db)
        .await?;
    Ok(canceled.rows_affected == 1)
}

/// Puts a promotion's pending targets in their apps' queues, as of `at`.
pub async fn join_queues(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    promotion_target::Entity::update_many()
        .col_expr(promotion_target::Column::QueuedAt, Some(at).into())
        .col_expr(promotion_target::Column::UpdatedAt, at.into())
        .filter(promotion_target::Column::PromotionId.eq(promotion_id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// How much promotion work is waiting or under way, for the metrics' gauges.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromQueryResult)]
pub struct WorkCounts {
    /// Targets waiting to run.
    pub pending: i64,
    /// Targets deploying.
    pub running: i64,
    /// Targets verifying their release after its deploy.
    pub verifying: i64,
    /// Pending targets that wait behind earlier work on their app.
    pub queued: i64,
    /// Promotions awaiting approval.
    pub awaiting_approval: i64,
}

/// Counts the targets and promotions by state, in one statement.
pub async fn work_counts(db: &impl ConnectionTrait) -> Result<WorkCounts, DbErr> {
    use crate::domain::promotion::PromotionStatus;
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT \
         (SELECT count(*) FROM promotion_targets WHERE status = {}) AS pending, \
         (SELECT count(*) FROM promotion_targets WHERE status = {}) AS running, \
         (SELECT count(*) FROM promotion_targets WHERE status = {}) AS verifying, \
         (SELECT count(*) FROM promotion_targets WHERE status = {} \
            AND queued_at IS NOT NULL AND queued_behind IS NOT NULL) AS queued, \
         (SELECT count(*) FROM promotions WHERE status = {}) AS awaiting_approval",
        placeholder(backend, 1),
        placeholder(backend, 2),
        placeholder(backend, 3),
        placeholder(backend, 4),
        placeholder(backend, 5),
    );
    let values = [
        TargetStatus::Pending.as_str().into(),
        TargetStatus::Running.as_str().into(),
        TargetStatus::Verifying.as_str().into(),
        TargetStatus::Pending.as_str().into(),
        PromotionStatus::AwaitingApproval.as_str().into(),
    ];
    Ok(
        WorkCounts::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .one(db)
            .await?
            .unwrap_or_default(),
    )
}
