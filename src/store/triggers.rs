//! Auto-promotion: which apps feed an auto-promote coupling (so that only their changes
//! write triggers), the triggers themselves, what evaluating one reads, and the claims that
//! let a release reach a target automatically at most once.

use std::collections::HashSet;

use sea_orm::{
    sea_query::OnConflict, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use super::{
    entities::{app, auto_promotion_claim, auto_promotion_trigger, coupling, pipeline},
    parameters::{placeholder, placeholders},
};
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

/// Stores triggers.
pub async fn insert_triggers(
    db: &impl ConnectionTrait,
    rows: Vec<auto_promotion_trigger::Model>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    auto_promotion_trigger::Entity::insert_many(
        rows.into_iter()
            .map(auto_promotion_trigger::ActiveModel::from),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Triggers not yet evaluated, oldest first.
pub async fn pending_triggers(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<auto_promotion_trigger::Model>, DbErr> {
    auto_promotion_trigger::Entity::find()
        .order_by_asc(auto_promotion_trigger::Column::CreatedAt)
        .order_by_asc(auto_promotion_trigger::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Takes a trigger to evaluate it: deletes it, and says whether this call did (another
/// process may have taken it first).
pub async fn take_trigger(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let taken = auto_promotion_trigger::Entity::delete_by_id(id)
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Claims the (release, target app) pair for an auto-promotion, once ever: false when an
/// earlier auto-promotion claimed it.
pub async fn claim_release_for_app(
    db: &impl ConnectionTrait,
    claim: auto_promotion_claim::Model,
) -> Result<bool, DbErr> {
    let inserted =
        auto_promotion_claim::Entity::insert(auto_promotion_claim::ActiveModel::from(claim))
            .on_conflict(
                OnConflict::columns([
                    auto_promotion_claim::Column::SourceReleaseId,
                    auto_promotion_claim::Column::TargetAppId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    Ok(inserted == 1)
}

/// The couplings at `stage` of the pipeline that auto-promote, by app.
pub async fn auto_promoting_couplings(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
    stage: Stage,
) -> Result<Vec<coupling::Model>, DbErr> {
    coupling::Entity::find()
        .filter(coupling::Column::PipelineId.eq(pipeline_id))
        .filter(coupling::Column::Stage.eq(stage.as_str()))
        .filter(coupling::Column::AutoPromote.eq(true))
        .order_by_asc(coupling::Column::AppId)
        .all(db)
        .await
}

/// What evaluating a trigger reads of its app: the app, live, with its coupling and the
/// coupling's live pipeline. `None` when any of them is gone.
pub async fn live_source(
    db: &impl ConnectionTrait,
    app_id: Uuid,
) -> Result<Option<(app::Model, coupling::Model, pipeline::Model)>, DbErr> {
    let Some(source) = app::Entity::find_by_id(app_id)
        .filter(app::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(coupling) = coupling::Entity::find()
        .filter(coupling::Column::AppId.eq(source.id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(pipeline) = pipeline::Entity::find_by_id(coupling.pipeline_id)
        .filter(pipeline::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((source, coupling, pipeline)))
}
