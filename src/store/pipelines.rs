//! Pipelines: created, found live by id or name, listed by name.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{entities::pipeline, Reference};

/// Stores a new pipeline, in one statement that reads nothing back. A unique violation
/// means a live pipeline has the name.
pub async fn insert_pipeline(
    db: &impl ConnectionTrait,
    name: &str,
    description: &str,
) -> Result<pipeline::Model, DbErr> {
    let now = super::now();
    let row = pipeline::Model {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        description: description.to_owned(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    pipeline::Entity::insert(row.clone().into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(row)
}

/// The live pipeline with this id or name.
pub async fn live_pipeline(
    db: &impl ConnectionTrait,
    reference: &Reference,
) -> Result<Option<pipeline::Model>, DbErr> {
    let live = pipeline::Entity::find().filter(pipeline::Column::DeletedAt.is_null());
    match reference {
        Reference::Id(id) => live.filter(pipeline::Column::Id.eq(*id)).one(db).await,
        Reference::Name(name) => live.filter(pipeline::Column::Name.eq(name)).one(db).await,
    }
}

/// Live pipelines by name, after `after` and at most `limit` of them.
pub async fn live_pipelines_by_name(
    db: &impl ConnectionTrait,
    after: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<pipeline::Model>, DbErr> {
    let mut query = pipeline::Entity::find()
        .filter(pipeline::Column::DeletedAt.is_null())
        .order_by_asc(pipeline::Column::Name);
    if let Some(after) = after {
        query = query.filter(pipeline::Column::Name.gt(after));
    }
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    query.all(db).await
}

/// Pipelines by id, deleted ones included.
pub async fn pipelines_by_id(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<pipeline::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    pipeline::Entity::find()
        .filter(pipeline::Column::Id.is_in(ids))
        .all(db)
        .await
}

/// Every live pipeline.
pub async fn live_pipelines(db: &impl ConnectionTrait) -> Result<Vec<pipeline::Model>, DbErr> {
    pipeline::Entity::find()
        .filter(pipeline::Column::DeletedAt.is_null())
        .all(db)
        .await
}

/// The live pipelines among `ids`.
pub async fn live_pipelines_among(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<pipeline::Model>, DbErr> {
    pipeline::Entity::find()
        .filter(pipeline::Column::DeletedAt.is_null())
        .filter(pipeline::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// Renames a live pipeline and sets its description. A unique violation means another live
/// pipeline has the name. Returns the pipeline as changed, or `None` when it is no longer
/// live.
pub async fn update_pipeline(
    db: &impl ConnectionTrait,
    id: Uuid,
    name: &str,
    description: &str,
) -> Result<Option<pipeline::Model>, DbErr> {
    use sea_orm::sea_query::Expr;
    let changed = pipeline::Entity::update_many()
        .col_expr(pipeline::Column::Name, Expr::value(name))
        .col_expr(pipeline::Column::Description, Expr::value(description))
        .col_expr(pipeline::Column::UpdatedAt, Expr::value(super::now()))
        .filter(pipeline::Column::Id.eq(id))
        .filter(pipeline::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    if changed.rows_affected == 0 {
        return Ok(None);
    }
    pipeline::Entity::find_by_id(id).one(db).await
}
