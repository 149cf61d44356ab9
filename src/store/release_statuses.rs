//! Release statuses: the contexts an app's releases have been given.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::parameters::placeholders;

/// One status context (with its display name) seen on a release of an app.
#[derive(Debug, FromQueryResult)]
pub struct AppStatusContext {
    pub app_id: Uuid,
    pub context: String,
    pub name: String,
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
