//! Reading the read model's rows from the database: everything (at start-up and on
//! resync), or just the pipelines and apps that changed. Both use the same queries, by
//! `id IN (…)` in chunks that every backend accepts.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use super::state::{AppEntry, Catalog, CouplingRow, Loaded};
use crate::{
    domain::status::ReleaseState,
    error::Result,
    store::entities::{app, coupling, pipeline, release},
    views::{
        app_view, coupling_contexts, coupling_policy, coupling_stage, pipeline_view,
        release_summary,
    },
};

/// Ids per `IN (…)` list: well under SQLite's limit on bound parameters.
const CHUNK: usize = 500;

/// Every live pipeline and app. Apps are read a chunk at a time, so the rows in flight
/// stay small next to the catalog they build.
pub async fn load_everything(db: &DatabaseConnection) -> Result<Catalog> {
    let pipelines = pipeline::Entity::find()
        .filter(pipeline::Column::DeletedAt.is_null())
        .all(db)
        .await?;
    let app_ids: Vec<Uuid> = app::Entity::find()
        .select_only()
        .column(app::Column::Id)
        .filter(app::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    let mut catalog = Catalog::from_loaded(Loaded {
        pipelines: pipelines.into_iter().map(pipeline_view).collect(),
        apps: Vec::new(),
    });
    for chunk in app_ids.chunks(CHUNK) {
        let loaded = load(db, &[], chunk).await?;
        catalog.apply(&[], chunk, loaded);
    }
    Ok(catalog)
}

/// The live pipelines and apps among the given ids, with each app's coupling, current
/// release and status contexts.
pub async fn load(
    db: &DatabaseConnection,
    pipeline_ids: &[Uuid],
    app_ids: &[Uuid],
) -> Result<Loaded> {
    let mut pipelines = Vec::new();
    for chunk in pipeline_ids.chunks(CHUNK) {
        pipelines.extend(
            pipeline::Entity::find()
                .filter(pipeline::Column::DeletedAt.is_null())
                .filter(pipeline::Column::Id.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
    }
    let mut apps = Vec::new();
    let mut couplings = HashMap::new();
    let mut releases = HashMap::new();
    let mut contexts: HashMap<Uuid, Vec<(String, String)>> = HashMap::new();
    for chunk in app_ids.chunks(CHUNK) {
        apps.extend(
            app::Entity::find()
                .filter(app::Column::DeletedAt.is_null())
                .filter(app::Column::Id.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
        for row in coupling::Entity::find()
            .filter(coupling::Column::AppId.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            couplings.insert(row.app_id, coupling_row(row)?);
        }
        for row in current_releases(db, chunk).await? {
            releases.insert(row.app_id, release_summary(&row));
        }
        for pair in status_contexts(db, chunk).await? {
            contexts
                .entry(pair.app_id)
                .or_default()
                .push((pair.context, pair.name));
        }
    }
    Ok(Loaded {
        pipelines: pipelines.into_iter().map(pipeline_view).collect(),
        apps: apps
            .into_iter()
            .map(|model| AppEntry {
                coupling: couplings.remove(&model.id),
                current_release: releases.remove(&model.id),
                status_contexts: {
                    let mut pairs = contexts.remove(&model.id).unwrap_or_default();
                    pairs.sort();
                    pairs.dedup();
                    pairs
                },
                app: app_view(model),
            })
            .collect(),
    })
}

fn coupling_row(row: coupling::Model) -> Result<CouplingRow> {
    Ok(CouplingRow {
        id: row.id,
        pipeline_id: row.pipeline_id,
        stage: coupling_stage(&row)?,
        required_contexts: coupling_contexts(&row)?,
        policy: coupling_policy(&row),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// `AND {column} IN (…)` with placeholders numbered from `first`, and its values.
fn app_filter(
    backend: DbBackend,
    column: &str,
    first: usize,
    ids: &[Uuid],
) -> (String, Vec<Value>) {
    let placeholders: Vec<String> = (first..first + ids.len())
        .map(|n| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        })
        .collect();
    (
        format!(" AND {column} IN ({})", placeholders.join(", ")),
        ids.iter().map(|id| Value::from(*id)).collect(),
    )
}

/// Each app's newest succeeded release.
async fn current_releases(
    db: &DatabaseConnection,
    app_ids: &[Uuid],
) -> Result<Vec<release::Model>> {
    let backend = db.get_database_backend();
    let succeeded = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let (filter, ids) = app_filter(backend, "a.id", 2, app_ids);
    // Per app, the releases index read backwards from the newest version to the first that
    // succeeded: one or a few rows, however many releases the app has.
    let sql = format!(
        "SELECT r.* FROM releases r WHERE r.id IN (SELECT (SELECT n.id FROM releases n \
         WHERE n.app_id = a.id AND n.status = {succeeded} ORDER BY n.version DESC LIMIT 1) \
         FROM apps a WHERE 1 = 1{filter})"
    );
    let mut values = vec![Value::from(ReleaseState::Succeeded.as_str())];
    values.extend(ids);
    Ok(release::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await?)
}

#[derive(Debug, FromQueryResult)]
struct AppStatusContext {
    app_id: Uuid,
    context: String,
    name: String,
}

async fn status_contexts(
    db: &DatabaseConnection,
    app_ids: &[Uuid],
) -> Result<Vec<AppStatusContext>> {
    let backend = db.get_database_backend();
    let (filter, values) = app_filter(backend, "r.app_id", 1, app_ids);
    let sql = format!(
        "SELECT DISTINCT r.app_id, s.context, s.name FROM release_statuses s \
         JOIN releases r ON r.id = s.release_id WHERE 1 = 1{filter}"
    );
    Ok(
        AppStatusContext::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(db)
            .await?,
    )
}
