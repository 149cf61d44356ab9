//! Release statuses: the states a release's contexts have, and the contexts an app's
//! releases have been given.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::parameters::placeholders;
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

/// The distinct status contexts on the releases of `app_ids`.
pub async fn status_contexts_of_apps(
    db: &impl ConnectionTrait,
    app_ids: &[Uuid],
) -> Result<Vec<AppStatusContext>, DbErr> {
    if app_ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT DISTINCT r.app_id, s.context, s.name FROM release_statuses s \
         JOIN releases r ON r.id = s.release_id WHERE r.app_id IN ({})",
        placeholders(backend, 1, app_ids.len()),
    );
    let values = app_ids.iter().map(|id| Value::from(*id));
    AppStatusContext::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await
}
