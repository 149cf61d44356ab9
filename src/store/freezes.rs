//! Freezes: a pipeline's windows without new deploys. Lifting one marks it, so that what
//! held the line stays on record.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Query, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::entities::{freeze, pipeline};

/// Stores a new freeze.
pub async fn insert_freeze(
    db: &impl ConnectionTrait,
    row: freeze::Model,
) -> Result<freeze::Model, DbErr> {
    row.into_active_model().reset_all().insert(db).await
}

/// Unlifted freezes of live pipelines that may still hold at `now` (recurring ones, and
/// one-off ones not ended), of the given pipelines or of all of them, oldest first.
pub async fn live_freezes(
    db: &impl ConnectionTrait,
    pipelines: Option<&[Uuid]>,
    now: DateTime<Utc>,
) -> Result<Vec<freeze::Model>, DbErr> {
    let live_pipelines = Query::select()
        .column(pipeline::Column::Id)
        .from(pipeline::Entity)
        .and_where(pipeline::Column::DeletedAt.is_null())
        .to_owned();
    let mut select = freeze::Entity::find()
        .filter(freeze::Column::LiftedAt.is_null())
        .filter(freeze::Column::PipelineId.in_subquery(live_pipelines))
        .filter(
            Condition::any()
                .add(freeze::Column::EndsAt.is_null())
                .add(freeze::Column::EndsAt.gt(now)),
        );
    if let Some(pipelines) = pipelines {
        select = select.filter(freeze::Column::PipelineId.is_in(pipelines.iter().copied()));
    }
    select
        .order_by_asc(freeze::Column::CreatedAt)
        .order_by_asc(freeze::Column::Id)
        .all(db)
        .await
}

/// One freeze of a pipeline, lifted or not.
pub async fn freeze_of_pipeline(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
    id: Uuid,
) -> Result<Option<freeze::Model>, DbErr> {
    freeze::Entity::find_by_id(id)
        .filter(freeze::Column::PipelineId.eq(pipeline_id))
        .one(db)
        .await
}

/// Lifts a freeze, once: false when it was lifted already.
pub async fn lift_freeze(
    db: &impl ConnectionTrait,
    id: Uuid,
    by: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let lifted = freeze::Entity::update_many()
        .col_expr(freeze::Column::LiftedAt, Some(at).into())
        .col_expr(freeze::Column::LiftedBy, Some(by.to_owned()).into())
        .filter(freeze::Column::Id.eq(id))
        .filter(freeze::Column::LiftedAt.is_null())
        .exec(db)
        .await?;
    Ok(lifted.rows_affected == 1)
}
