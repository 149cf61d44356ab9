//! The audit log: entries inserted in the transaction of the change they record, listed
//! newest first by any combination of filters, and deleted in bounded batches once they
//! pass the retention period.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, Query},
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::audit_event;

/// Stores entries, in one statement that reads nothing back.
pub async fn insert_audit_events(
    db: &impl ConnectionTrait,
    rows: Vec<audit_event::Model>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows = rows
        .into_iter()
        .map(|row| row.into_active_model().reset_all());
    audit_event::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Who or what an entry is about: an id, or a name as recorded when the entry was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Id(Uuid),
    Name(String),
}

/// What the entries listed must match; each given filter must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub pipeline: Option<Subject>,
    pub app: Option<Subject>,
    pub actor: Option<String>,
    /// An exact action (`promotion.create`), or every action of a kind (`promotion.`).
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// The position of an entry in the list: the list runs newest first, by time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPosition {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

/// The entries matching `filter` that come after `after` (older ones), newest first, at
/// most `limit` of them. Each filter has an index that ends in the list's order.
pub async fn audit_events(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    after: Option<AuditPosition>,
    limit: u64,
) -> Result<Vec<audit_event::Model>, DbErr> {
    let mut select = audit_event::Entity::find();
    if let Some(pipeline) = &filter.pipeline {
        select = select.filter(match pipeline {
            Subject::Id(id) => audit_event::Column::PipelineId.eq(*id),
            Subject::Name(name) => audit_event::Column::PipelineName.eq(name.as_str()),
        });
    }
    if let Some(app) = &filter.app {
        select = select.filter(match app {
            Subject::Id(id) => audit_event::Column::AppId.eq(*id),
            Subject::Name(name) => audit_event::Column::AppName.eq(name.as_str()),
        });
    }
    if let Some(actor) = &filter.actor {
        select = select.filter(audit_event::Column::Actor.eq(actor.as_str()));
    }
    if let Some(action) = &filter.action {
        select = select.filter(match action.strip_suffix('.') {
            Some(kind) => audit_event::Column::Action.starts_with(format!("{kind}.")),
            None => audit_event::Column::Action.eq(action.as_str()),
        });
    }
    if let Some(since) = filter.since {
        select = select.filter(audit_event::Column::At.gte(since));
    }
    if let Some(after) = after {
        select = select.filter(
            Condition::any()
                .add(audit_event::Column::At.lt(after.at))
                .add(
                    Condition::all()
                        .add(audit_event::Column::At.eq(after.at))
                        .add(audit_event::Column::Id.lt(after.id)),
                ),
        );
    }
    select
        .order_by_desc(audit_event::Column::At)
        .order_by_desc(audit_event::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Deletes at most `batch` of the entries written before `cutoff`, oldest first, and says
/// how many it deleted.
pub async fn delete_audit_events_before(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let oldest = Query::select()
        .column(audit_event::Column::Id)
        .from(audit_event::Entity)
        .and_where(audit_event::Column::At.lt(cutoff))
        .order_by(audit_event::Column::At, sea_orm::Order::Asc)
        .limit(batch)
        .to_owned();
    let deleted = audit_event::Entity::delete_many()
        .filter(Expr::col(audit_event::Column::Id).in_subquery(oldest))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Takes the lock that lets one process at a time trim the log, for the rest of the
/// transaction `db` runs in: false when another process holds it. SQLite serves one
/// process, which always gets it.
pub async fn try_lock_trimming(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(true);
    }
    let statement = sea_orm::Statement::from_string(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_try_advisory_xact_lock(hashtext('pipelines.audit_retention')) AS locked",
    );
    let row = db.query_one(statement).await?;
    match row {
        Some(row) => row.try_get("", "locked"),
        None => Ok(false),
    }
}
