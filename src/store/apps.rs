//! Apps, as the lifecycle reads them: by id, deleted ones included, since a promotion under
//! way keeps its names.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::app;

/// One app, deleted or not.
pub async fn app_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<app::Model>, DbErr> {
    app::Entity::find_by_id(id).one(db).await
}

/// The names of `apps`, deleted ones included.
pub async fn app_names(
    db: &impl ConnectionTrait,
    apps: &[Uuid],
) -> Result<HashMap<Uuid, String>, DbErr> {
    Ok(app::Entity::find()
        .filter(app::Column::Id.is_in(apps.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|app| (app.id, app.name))
        .collect())
}

/// The live apps among `ids`.
pub async fn live_apps(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Vec<app::Model>, DbErr> {
    app::Entity::find()
        .filter(app::Column::Id.is_in(ids.iter().copied()))
        .filter(app::Column::DeletedAt.is_null())
        .all(db)
        .await
}
