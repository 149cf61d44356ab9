//! Release statuses: the states a release's contexts have, and the contexts an app's
//! releases have been given.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::parameters::placeholder;
use crate::domain::status::StatusState;

/// One status context (with its display name) seen on a release of an app.
#[derive(Debug, FromQueryResult)]
pub struct AppStatusContext {
    pub app_id: Uuid,
    pub context: String,
    pub name: String,
}

/// Each context's state on a release, as stored; a row with an unreadable state is left
/// out (it satisfies nothing).
pub async fn states_of_release(
    db: &impl ConnectionTrait,
    release_id: Uuid,
) -> Result<Vec<(String, StatusState)>, DbErr> {
    use super::entities::release_status;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let rows: Vec<(String, String)> = release_status::Entity::find()
        .select_only()
        .column(release_status::Column::Context)
        .column(release_status::Column::State)
        .filter(release_status::Column::ReleaseId.eq(release_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(context, state)| {
            StatusState::parse("state", &state)
                .ok()
                .map(|state| (context, state))
        })
        .collect())
}

/// The distinct status contexts on the releases of the apps among `apps`, as the database
/// keeps them counted (`app_status_contexts`): an indexed read, whatever the history.
pub async fn status_contexts_among(
    db: &impl ConnectionTrait,
    apps: super::AppIds<'_>,
) -> Result<Vec<AppStatusContext>, DbErr> {
    if apps.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let (which_apps, values) = apps.sql(backend, "app_id", 1);
    let sql = format!(
        "SELECT app_id, context, name FROM app_status_contexts \
         WHERE {which_apps} AND statuses > 0"
    );
    AppStatusContext::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await
}

/// The distinct (context, name) pairs of statuses on releases of the apps coupled to the
/// pipeline, sorted.
pub async fn contexts_of_pipeline(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
) -> Result<Vec<(String, String)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Pair {
        context: String,
        name: String,
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT DISTINCT context, name FROM app_status_contexts WHERE statuses > 0 \
         AND app_id IN (SELECT app_id FROM couplings WHERE pipeline_id = {}) \
         ORDER BY context, name",
        placeholder(backend, 1),
    );
    let pairs = Pair::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(pipeline_id)],
    ))
    .all(db)
    .await?;
    Ok(pairs
        .into_iter()
        .map(|pair| (pair.context, pair.name))
        .collect())
}

/// Stores a new status. A unique violation means the release has a status of that context.
pub async fn insert_status(
    db: &impl ConnectionTrait,
    row: super::entities::release_status::Model,
) -> Result<super::entities::release_status::Model, DbErr> {
    use sea_orm::ActiveModelTrait;
    super::entities::release_status::ActiveModel::from(row)
        .insert(db)
        .await
}

/// One status, if it exists.
pub async fn status_by_id(
    db: &impl ConnectionTrait,
    status_id: Uuid,
) -> Result<Option<super::entities::release_status::Model>, DbErr> {
    use super::entities::release_status;
    use sea_orm::EntityTrait;
    release_status::Entity::find_by_id(status_id).one(db).await
}

/// One status of a release, if it exists.
pub async fn status_of_release(
    db: &impl ConnectionTrait,
    release_id: Uuid,
    status_id: Uuid,
) -> Result<Option<super::entities::release_status::Model>, DbErr> {
    use super::entities::release_status;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    release_status::Entity::find_by_id(status_id)
        .filter(release_status::Column::ReleaseId.eq(release_id))
        .one(db)
        .await
}

/// Stores a changed status, as a whole row.
pub async fn update_status(
    db: &impl ConnectionTrait,
    row: super::entities::release_status::Model,
) -> Result<super::entities::release_status::Model, DbErr> {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};
    row.into_active_model().reset_all().update(db).await
}

/// The statuses of a release, by context.
pub async fn statuses_of_release(
    db: &impl ConnectionTrait,
    release_id: Uuid,
) -> Result<Vec<super::entities::release_status::Model>, DbErr> {
    use super::entities::release_status;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    release_status::Entity::find()
        .filter(release_status::Column::ReleaseId.eq(release_id))
        .order_by_asc(release_status::Column::Context)
        .all(db)
        .await
}
