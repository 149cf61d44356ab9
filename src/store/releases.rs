//! Releases: which one is each app's current release, and linking a promotion target to
//! the release made for it.

use sea_orm::{
    sea_query::{Expr, SimpleExpr},
    ConnectionTrait, DbErr, EntityTrait, Statement, Value,
};
use uuid::Uuid;

use super::{
    entities::release,
    parameters::{placeholder, placeholders},
};
use crate::domain::{promotion::TargetStatus, status::ReleaseState};

/// Each of `app_ids`' current release: its newest succeeded one. Apps without one are
/// left out.
pub async fn current_releases_of_apps(
    db: &impl ConnectionTrait,
    app_ids: &[Uuid],
) -> Result<Vec<release::Model>, DbErr> {
    if app_ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    // Per app, the releases index read backwards from the newest version to the first that
    // succeeded: one or a few rows, however many releases the app has.
    let sql = format!(
        "SELECT r.* FROM releases r WHERE r.id IN (SELECT (SELECT n.id FROM releases n \
         WHERE n.app_id = a.id AND n.status = {} ORDER BY n.version DESC LIMIT 1) \
         FROM apps a WHERE a.id IN ({}))",
        placeholder(backend, 1),
        placeholders(backend, 2, app_ids.len()),
    );
    let mut values = vec![Value::from(ReleaseState::Succeeded.as_str())];
    values.extend(app_ids.iter().map(|id| Value::from(*id)));
    release::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await
}

/// Links each of `target_ids` to the release made for it, where the target is running
/// under `worker`'s lease and has none linked yet.
pub async fn link_target_releases(
    db: &impl ConnectionTrait,
    worker: &str,
    target_ids: &[Uuid],
) -> Result<(), DbErr> {
    if target_ids.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "UPDATE promotion_targets SET release_id = ({RELEASE_OF_TARGET}), updated_at = {} \
         WHERE status = {} AND lease_owner = {} AND release_id IS NULL AND id IN ({})",
        placeholder(backend, 1),
        placeholder(backend, 2),
        placeholder(backend, 3),
        placeholders(backend, 4, target_ids.len()),
    );
    let mut values: Vec<Value> = vec![
        super::now().into(),
        TargetStatus::Running.as_str().into(),
        worker.into(),
    ];
    values.extend(target_ids.iter().map(|id| Value::from(*id)));
    db.execute(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// An SQL expression, inside a statement on `promotion_targets`: the id of the release
/// made for that target, if any.
const RELEASE_OF_TARGET: &str =
    "SELECT r.id FROM releases r WHERE r.promotion_target_id = promotion_targets.id";

/// The value for `promotion_targets.release_id` in an update of targets: the release
/// already linked, else the one made for the target, if any.
pub fn linked_or_made_release() -> SimpleExpr {
    Expr::cust(format!("COALESCE(release_id, ({RELEASE_OF_TARGET}))"))
}
