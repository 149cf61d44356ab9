//! Apps: created, found live by id or name, listed by name, and read by id with deleted
//! ones included, since history and a promotion under way keep their names.

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
    live_apps_among(db, super::AppIds::Listed(ids)).await
}

/// The live apps among `apps`.
pub async fn live_apps_among(
    db: &impl ConnectionTrait,
    apps: super::AppIds<'_>,
) -> Result<Vec<app::Model>, DbErr> {
    app::Entity::find()
        .filter(apps.condition(app::Column::Id))
        .filter(app::Column::DeletedAt.is_null())
        .all(db)
        .await
}

/// Stores a new app, in one statement that reads nothing back. A unique violation means a
/// live app has the name.
pub async fn insert_app(db: &impl ConnectionTrait, name: &str) -> Result<app::Model, DbErr> {
    use sea_orm::IntoActiveModel;
    let now = super::now();
    let row = app::Model {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    app::Entity::insert(row.clone().into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(row)
}

/// The live app with this id.
pub async fn live_app_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<app::Model>, DbErr> {
    app::Entity::find_by_id(id)
        .filter(app::Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// The live app with this name.
pub async fn live_app_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<app::Model>, DbErr> {
    app::Entity::find()
        .filter(app::Column::DeletedAt.is_null())
        .filter(app::Column::Name.eq(name))
        .one(db)
        .await
}

/// The live apps whose id is among `ids` or whose name is among `names`, in one query.
pub async fn live_apps_by_ids_or_names(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
    names: Vec<String>,
) -> Result<Vec<app::Model>, DbErr> {
    if ids.is_empty() && names.is_empty() {
        return Ok(Vec::new());
    }
    app::Entity::find()
        .filter(app::Column::DeletedAt.is_null())
        .filter(
            sea_orm::Condition::any()
                .add(app::Column::Id.is_in(ids))
                .add(app::Column::Name.is_in(names)),
        )
        .all(db)
        .await
}

/// Live apps by name, after `after` and at most `limit` of them.
pub async fn live_apps_by_name(
    db: &impl ConnectionTrait,
    after: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<app::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = app::Entity::find()
        .filter(app::Column::DeletedAt.is_null())
        .order_by_asc(app::Column::Name);
    if let Some(after) = after {
        query = query.filter(app::Column::Name.gt(after));
    }
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    query.all(db).await
}

/// Apps by id, deleted ones included, since history may point at them.
pub async fn apps_by_id(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<app::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    app::Entity::find()
        .filter(app::Column::Id.is_in(ids))
        .all(db)
        .await
}

/// The ids of every live app.
pub async fn live_app_ids(db: &impl ConnectionTrait) -> Result<Vec<Uuid>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    app::Entity::find()
        .select_only()
        .column(app::Column::Id)
        .filter(app::Column::DeletedAt.is_null())
        .order_by_asc(app::Column::Id)
        .into_tuple()
        .all(db)
        .await
}
