//! Config vars: an app's environment, by key.

use std::collections::BTreeMap;

use sea_orm::{
    sea_query::OnConflict, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use super::entities::config_var;

/// An app's config vars, by key.
pub async fn config_vars_of(
    db: &impl ConnectionTrait,
    app_id: Uuid,
) -> Result<BTreeMap<String, String>, DbErr> {
    Ok(config_var::Entity::find()
        .filter(config_var::Column::AppId.eq(app_id))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.key, row.value))
        .collect())
}

/// Sets one config var, adding it or replacing its value.
pub async fn set_config_var(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    key: String,
    value: String,
) -> Result<(), DbErr> {
    config_var::Entity::insert(config_var::ActiveModel {
        app_id: Set(app_id),
        key: Set(key),
        value: Set(value),
    })
    .on_conflict(
        OnConflict::columns([config_var::Column::AppId, config_var::Column::Key])
            .update_column(config_var::Column::Value)
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Removes one config var, if it is set.
pub async fn remove_config_var(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    key: String,
) -> Result<(), DbErr> {
    config_var::Entity::delete_many()
        .filter(config_var::Column::AppId.eq(app_id))
        .filter(config_var::Column::Key.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

/// Erases every config var of an app being deleted.
pub async fn remove_config_vars_of(db: &impl ConnectionTrait, app_id: Uuid) -> Result<(), DbErr> {
    config_var::Entity::delete_many()
        .filter(config_var::Column::AppId.eq(app_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The keys of each of `apps`, in one query; apps without keys are absent.
pub async fn keys_of_apps(
    db: &impl ConnectionTrait,
    apps: impl IntoIterator<Item = Uuid>,
) -> Result<Vec<(Uuid, String)>, DbErr> {
    use sea_orm::QuerySelect;
    config_var::Entity::find()
        .select_only()
        .column(config_var::Column::AppId)
        .column(config_var::Column::Key)
        .filter(config_var::Column::AppId.is_in(apps))
        .into_tuple()
        .all(db)
        .await
}

/// An app's config vars as they were after its config change `change_id` (0: before any):
/// per key, the newest change up to it, unless that change removed the key. One step of
/// the `(app_id, key, id)` index per key the app has had.
pub async fn config_vars_as_of(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    change_id: i64,
) -> Result<BTreeMap<String, String>, DbErr> {
    use sea_orm::{Statement, Value};
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT c.key, c.value FROM config_var_changes c \
         WHERE c.app_id = {app} AND c.id = (SELECT MAX(d.id) FROM config_var_changes d \
         WHERE d.app_id = c.app_id AND d.key = c.key AND d.id <= {change}) \
         AND c.value IS NOT NULL",
        app = super::parameters::placeholder(backend, 1),
        change = super::parameters::placeholder(backend, 2),
    );
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(app_id), Value::from(change_id)],
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}
