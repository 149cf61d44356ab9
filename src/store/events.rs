//! Promotion events: numbering and storing a promotion's events, with the change to its
//! row they report, so that sequences never repeat or skip.

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement,
};
use uuid::Uuid;

use super::entities::{promotion, promotion_event};
use crate::domain::promotion::PromotionStatus;

/// A change to the promotion's row, made by the statement that appends its events.
#[derive(Debug, Clone, Copy)]
pub struct StatusChange {
    pub status: PromotionStatus,
    /// Whether the promotion ends with it (`finished_at` is set).
    pub finished: bool,
}

/// Numbers `rows` (their sequence is set here) after the promotion's last event and
/// stores them, making `change` to its row; events without their own reported status
/// carry the promotion's status after the change. On PostgreSQL, other processes are
/// notified of them in the name of `origin`. `None` when the promotion does not exist.
pub async fn append(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    rows: Vec<promotion_event::Model>,
    change: Option<StatusChange>,
    origin: &str,
) -> Result<Option<Vec<promotion_event::Model>>, DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        append_in_one_statement(db, promotion_id, rows, change, origin).await
    } else {
        append_in_three_statements(db, promotion_id, rows, change).await
    }
}

/// Numbers and stores events in one round trip (PostgreSQL): the promotion's count is
/// raised by their number (and `change` made) and they are inserted with it, carrying the
/// promotion's status unless they report their own, and other processes are notified of
/// them in the name of `origin`.
async fn append_in_one_statement(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    rows: Vec<promotion_event::Model>,
    change: Option<StatusChange>,
    origin: &str,
) -> Result<Option<Vec<promotion_event::Model>>, DbErr> {
    const PER_ROW: usize = 15;
    let count = rows.len();
    // $1 the promotion, $2 the origin; then the change's values, then the rows'.
    let mut values: Vec<sea_orm::Value> = vec![promotion_id.into(), origin.into()];
    let changed_columns = match change {
        None => String::new(),
        Some(change) => {
            let now = super::now();
            values.push(change.status.as_str().into());
            values.push(now.into());
            if change.finished {
                values.push(now.into());
                ", status = $3, updated_at = $4, finished_at = $5".to_owned()
            } else {
                ", status = $3, updated_at = $4".to_owned()
            }
        }
    };
    let first_row_parameter = values.len() + 1;
    let mut tuples = Vec::with_capacity(count);
    for (position, row) in rows.into_iter().enumerate() {
        let first = first_row_parameter + position * PER_ROW;
        let n = |offset: usize| first + offset;
        tuples.push(format!(
            "(${}::uuid, {}::bigint, ${}::text, ${}::uuid, ${}::uuid, ${}::text, ${}::text, \
             ${}::uuid, ${}::bigint, ${}::text, ${}::timestamptz, ${}::uuid, ${}::text, \
             ${}::text, ${}::text, ${}::text)",
            n(0),
            position + 1,
            n(1),
            n(2),
            n(3),
            n(4),
            n(5),
            n(6),
            n(7),
            n(8),
            n(9),
            n(10),
            n(11),
            n(12),
            n(13),
            n(14),
        ));
        values.extend([
            row.id.into(),
            row.kind.into(),
            row.target_id.into(),
            row.app_id.into(),
            row.app_name.into(),
            row.target_status.into(),
            row.release_id.into(),
            row.release_version.into(),
            row.message.into(),
            row.created_at.into(),
            row.waiting_for.into(),
            row.actor.into(),
            row.comment.into(),
            row.promotion_status.into(),
            row.waiting_for_freeze.into(),
        ]);
    }
    let sql = format!(
        "WITH counted AS (\
         UPDATE promotions SET event_count = event_count + {count}{changed_columns} \
         WHERE id = $1 RETURNING event_count, status) \
         INSERT INTO promotion_events (id, promotion_id, sequence, kind, target_id, app_id, \
         app_name, target_status, promotion_status, release_id, release_version, message, \
         created_at, waiting_for, actor, comment, waiting_for_freeze) \
         SELECT v.id, $1, counted.event_count - {count} + v.ord, v.kind, v.target_id, \
         v.app_id, v.app_name, v.target_status, \
         COALESCE(NULLIF(v.reported_status, ''), counted.status), v.release_id, \
         v.release_version, v.message, v.created_at, v.waiting_for, v.actor, v.comment, \
         v.waiting_for_freeze \
         FROM counted, (VALUES {}) AS v(id, ord, kind, target_id, app_id, app_name, \
         target_status, release_id, release_version, message, created_at, waiting_for, actor, \
         comment, reported_status, waiting_for_freeze) \
         RETURNING *, {}",
        tuples.join(", "),
        super::notifying_promotion_changed("$2::text"),
    );
    let mut stored = promotion_event::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(db)
        .await?;
    if stored.len() != count {
        return Ok(None);
    }
    stored.sort_by_key(|row| row.sequence);
    Ok(Some(stored))
}

/// Numbers and stores events where one statement cannot do both (SQLite, in process):
/// the count is raised by their number (and `change` made), read back, and the events
/// inserted together.
async fn append_in_three_statements(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    mut rows: Vec<promotion_event::Model>,
    change: Option<StatusChange>,
) -> Result<Option<Vec<promotion_event::Model>>, DbErr> {
    let count = rows.len() as i64;
    let mut update = promotion::Entity::update_many().col_expr(
        promotion::Column::EventCount,
        Expr::col(promotion::Column::EventCount).add(count),
    );
    if let Some(change) = change {
        let now = super::now();
        update = update
            .col_expr(promotion::Column::Status, change.status.as_str().into())
            .col_expr(promotion::Column::UpdatedAt, now.into());
        if change.finished {
            update = update.col_expr(promotion::Column::FinishedAt, Some(now).into());
        }
    }
    update
        .filter(promotion::Column::Id.eq(promotion_id))
        .exec(db)
        .await?;
    let Some(current) = promotion::Entity::find_by_id(promotion_id).one(db).await? else {
        return Ok(None);
    };
    let first = current.event_count - count + 1;
    for (offset, row) in rows.iter_mut().enumerate() {
        row.sequence = first + offset as i64;
        if row.promotion_status.is_empty() {
            row.promotion_status = current.status.clone();
        }
    }
    promotion_event::Entity::insert_many(
        rows.iter().cloned().map(promotion_event::ActiveModel::from),
    )
    .exec_without_returning(db)
    .await?;
    Ok(Some(rows))
}

/// The events of a promotion after sequence number `after`, in order.
pub async fn events_after(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    after: i64,
) -> Result<Vec<promotion_event::Model>, DbErr> {
    use sea_orm::QueryOrder;
    promotion_event::Entity::find()
        .filter(promotion_event::Column::PromotionId.eq(promotion_id))
        .filter(promotion_event::Column::Sequence.gt(after))
        .order_by_asc(promotion_event::Column::Sequence)
        .all(db)
        .await
}
