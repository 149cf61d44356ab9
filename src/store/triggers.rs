//! Auto-promotion triggers: which apps feed an auto-promote coupling, so that only their
//! changes write triggers.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use uuid::Uuid;

use super::parameters::{placeholder, placeholders};
use crate::domain::stage::Stage;

/// The join condition of coupling `n` with coupling `c`: `n` is in `c`'s pipeline, at the
/// stage after `c`'s, and auto-promotes (`n.auto_promote` = the SQL `true_value`). The
/// stage order comes from the domain's stage graph.
fn next_stage_auto_promotes(true_value: &str) -> String {
    let next_stage = Stage::ALL
        .iter()
        .filter_map(|stage| {
            stage
                .next()
                .map(|next| format!("WHEN '{}' THEN '{}'", stage.as_str(), next.as_str()))
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "n.pipeline_id = c.pipeline_id AND n.auto_promote = {true_value} \
         AND n.stage = (CASE c.stage {next_stage} END)"
    )
}

/// An SQL condition, true when the app whose id is the SQL `app_id` feeds an
/// auto-promote coupling.
pub fn feeds_auto_promotion(app_id: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM couplings c JOIN couplings n ON {} WHERE c.app_id = {app_id})",
        next_stage_auto_promotes("TRUE")
    )
}

/// Of `apps`, those whose next stage in their pipeline has an auto-promote coupling: the
/// only apps whose changes can trigger anything. One query.
pub async fn apps_feeding_auto_promotion(
    db: &impl ConnectionTrait,
    apps: &[Uuid],
) -> Result<HashSet<Uuid>, DbErr> {
    if apps.is_empty() {
        return Ok(HashSet::new());
    }
    let backend = db.get_database_backend();
    // Placeholders in the order they appear: SQLite numbers them by position.
    let sql = format!(
        "SELECT DISTINCT c.app_id FROM couplings c JOIN couplings n ON {} \
         WHERE c.app_id IN ({})",
        next_stage_auto_promotes(&placeholder(backend, 1)),
        placeholders(backend, 2, apps.len()),
    );
    let mut values: Vec<Value> = vec![true.into()];
    values.extend(apps.iter().map(|id| Value::from(*id)));
    let rows = db
        .query_all(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<Uuid>("", "app_id"))
        .collect()
}
