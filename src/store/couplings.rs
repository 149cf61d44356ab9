//! Couplings: an app's place in a pipeline, at a stage, with the checks and policy that
//! guard promotions into it.

use sea_orm::{
    sea_query::Query, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter,
};
use uuid::Uuid;

use super::entities::{coupling, pipeline};

/// One coupling, if it exists.
pub async fn coupling_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<coupling::Model>, DbErr> {
    coupling::Entity::find_by_id(id).one(db).await
}

/// The coupling of `app_id`, if it is in a pipeline.
pub async fn coupling_of_app(
    db: &impl ConnectionTrait,
    app_id: Uuid,
) -> Result<Option<coupling::Model>, DbErr> {
    coupling::Entity::find()
        .filter(coupling::Column::AppId.eq(app_id))
        .one(db)
        .await
}

/// The id and name of the pipeline `app_id` is coupled to, if it is in one: one statement.
pub async fn pipeline_of_app(
    db: &impl ConnectionTrait,
    app_id: Uuid,
) -> Result<Option<(Uuid, String)>, DbErr> {
    let coupled = Query::select()
        .column(coupling::Column::PipelineId)
        .from(coupling::Entity)
        .and_where(coupling::Column::AppId.eq(app_id))
        .to_owned();
    let found = pipeline::Entity::find()
        .filter(pipeline::Column::Id.in_subquery(coupled))
        .one(db)
        .await?;
    Ok(found.map(|pipeline| (pipeline.id, pipeline.name)))
}

/// The couplings of the apps among `app_ids` that are in a pipeline.
pub async fn couplings_of_apps(
    db: &impl ConnectionTrait,
    app_ids: impl IntoIterator<Item = Uuid>,
) -> Result<Vec<coupling::Model>, DbErr> {
    let app_ids: Vec<Uuid> = app_ids.into_iter().collect();
    couplings_among(db, super::AppIds::Listed(&app_ids)).await
}

/// The couplings of the apps among `apps`.
pub async fn couplings_among(
    db: &impl ConnectionTrait,
    apps: super::AppIds<'_>,
) -> Result<Vec<coupling::Model>, DbErr> {
    coupling::Entity::find()
        .filter(apps.condition(coupling::Column::AppId))
        .all(db)
        .await
}

/// Every coupling of a pipeline; at `stage` only, when given.
pub async fn couplings_of_pipeline(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
    stage: Option<&str>,
) -> Result<Vec<coupling::Model>, DbErr> {
    let mut query = coupling::Entity::find().filter(coupling::Column::PipelineId.eq(pipeline_id));
    if let Some(stage) = stage {
        query = query.filter(coupling::Column::Stage.eq(stage));
    }
    query.all(db).await
}

/// Every coupling.
pub async fn all_couplings(db: &impl ConnectionTrait) -> Result<Vec<coupling::Model>, DbErr> {
    coupling::Entity::find().all(db).await
}

/// Stores a new coupling. A unique violation means the app joined a pipeline meanwhile.
pub async fn insert_coupling(
    db: &impl ConnectionTrait,
    row: coupling::Model,
) -> Result<coupling::Model, DbErr> {
    coupling::ActiveModel::from(row).insert(db).await
}

/// What an update sets on a coupling, as stored.
pub struct CouplingSettings {
    pub stage: String,
    /// JSON array of contexts.
    pub required_contexts: String,
    pub auto_promote: bool,
    pub required_approvals: i32,
    /// JSON, or none.
    pub verification: Option<String>,
}

/// Replaces a coupling's stage, required contexts, policy and verification, where the coupling
/// is still `seen` (optimistic concurrency). Returns whether it changed.
pub async fn update_coupling_if_unchanged(
    db: &impl ConnectionTrait,
    seen: &coupling::Model,
    settings: CouplingSettings,
) -> Result<bool, DbErr> {
    let unchanged_verification = match &seen.verification {
        Some(stored) => coupling::Column::Verification.eq(stored.clone()),
        None => coupling::Column::Verification.is_null(),
    };
    let result = coupling::Entity::update_many()
        .col_expr(
            coupling::Column::RequiredContexts,
            settings.required_contexts.into(),
        )
        .col_expr(coupling::Column::Stage, settings.stage.into())
        .col_expr(coupling::Column::AutoPromote, settings.auto_promote.into())
        .col_expr(
            coupling::Column::RequiredApprovals,
            settings.required_approvals.into(),
        )
        .col_expr(coupling::Column::Verification, settings.verification.into())
        .col_expr(coupling::Column::UpdatedAt, super::now().into())
        .filter(coupling::Column::Id.eq(seen.id))
        .filter(coupling::Column::Stage.eq(seen.stage.clone()))
        .filter(coupling::Column::RequiredContexts.eq(seen.required_contexts.clone()))
        .filter(coupling::Column::AutoPromote.eq(seen.auto_promote))
        .filter(coupling::Column::RequiredApprovals.eq(seen.required_approvals))
        .filter(unchanged_verification)
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Deletes one coupling. Returns whether it existed.
pub async fn delete_coupling(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    Ok(coupling::Entity::delete_by_id(id)
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Deletes the coupling of an app being deleted.
pub async fn delete_couplings_of_app(db: &impl ConnectionTrait, app_id: Uuid) -> Result<(), DbErr> {
    coupling::Entity::delete_many()
        .filter(coupling::Column::AppId.eq(app_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes the couplings of a pipeline being deleted.
pub async fn delete_couplings_of_pipeline(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
) -> Result<(), DbErr> {
    coupling::Entity::delete_many()
        .filter(coupling::Column::PipelineId.eq(pipeline_id))
        .exec(db)
        .await?;
    Ok(())
}
