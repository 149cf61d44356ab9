//! Reading the read model's rows from the database: everything at once (at start-up and
//! on resync), or just the pipelines and apps that changed. Both use the same queries; a
//! partial load only adds `id IN (…)`, in chunks that every backend accepts.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, Statement, Value,
};
use uuid::Uuid;

use super::state::{AppEntry, CouplingRow, Loaded};
use crate::{
    domain::status::ReleaseState,
    error::Result,
    store::entities::{app, coupling, pipeline, release},
    views::{app_view, coupling_contexts, coupling_stage, pipeline_view, release_summary},
};

/// Ids per `IN (…)` list: well under SQLite's limit on bound parameters.
const CHUNK: usize = 500;

/// Which rows to load.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Everything,
    Only {
        pipeline_ids: &'a [Uuid],
        app_ids: &'a [Uuid],
    },
}

/// The live pipelines and apps in scope, with each app's coupling, current release and
/// status contexts.
pub async fn load(db: &DatabaseConnection, scope: Scope<'_>) -> Result<Loaded> {
    let (pipelines, apps) = match scope {
        Scope::Everything => (
            pipeline::Entity::find()
                .filter(pipeline::Column::DeletedAt.is_null())
                .all(db)
                .await?,
            app::Entity::find()
                .filter(app::Column::DeletedAt.is_null())
                .all(db)
                .await?,
        ),
        Scope::Only {
            pipeline_ids,
            app_ids,
        } => {
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
            for chunk in app_ids.chunks(CHUNK) {
                apps.extend(
                    app::Entity::find()
                        .filter(app::Column::DeletedAt.is_null())
                        .filter(app::Column::Id.is_in(chunk.iter().copied()))
                        .all(db)
                        .await?,
                );
            }
            (pipelines, apps)
        }
    };
    let app_ids: Option<Vec<Uuid>> = match scope {
        Scope::Everything => None,
        Scope::Only { .. } => Some(apps.iter().map(|a| a.id).collect()),
    };
    let mut couplings = HashMap::new();
    let mut releases = HashMap::new();
    let mut contexts: HashMap<Uuid, BTreeSet<(String, String)>> = HashMap::new();
    for chunk in chunks(app_ids.as_deref()) {
        let mut found = coupling::Entity::find();
        if let Some(ids) = chunk {
            found = found.filter(coupling::Column::AppId.is_in(ids.iter().copied()));
        }
        for row in found.all(db).await? {
            couplings.insert(row.app_id, coupling_row(row)?);
        }
        for row in current_releases(db, chunk).await? {
            releases.insert(row.app_id, release_summary(&row));
        }
        for pair in status_contexts(db, chunk).await? {
            contexts
                .entry(pair.app_id)
                .or_default()
                .insert((pair.context, pair.name));
        }
    }
    Ok(Loaded {
        pipelines: pipelines.into_iter().map(pipeline_view).collect(),
        apps: apps
            .into_iter()
            .map(|model| AppEntry {
                coupling: couplings.remove(&model.id),
                current_release: releases.remove(&model.id),
                status_contexts: contexts.remove(&model.id).unwrap_or_default(),
                app: app_view(model),
            })
            .collect(),
    })
}

/// `None` once for everything, or the ids in chunks.
fn chunks(ids: Option<&[Uuid]>) -> Vec<Option<&[Uuid]>> {
    match ids {
        None => vec![None],
        Some(ids) => ids.chunks(CHUNK).map(Some).collect(),
    }
}

fn coupling_row(row: coupling::Model) -> Result<CouplingRow> {
    Ok(CouplingRow {
        id: row.id,
        pipeline_id: row.pipeline_id,
        stage: coupling_stage(&row)?,
        required_contexts: coupling_contexts(&row)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// `AND r.app_id IN (…)` with placeholders numbered from `first`, and its values.
fn app_filter(backend: DbBackend, first: usize, ids: Option<&[Uuid]>) -> (String, Vec<Value>) {
    let Some(ids) = ids else {
        return (String::new(), Vec::new());
    };
    let placeholders: Vec<String> = (first..first + ids.len())
        .map(|n| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        })
        .collect();
    (
        format!(" AND r.app_id IN ({})", placeholders.join(", ")),
        ids.iter().map(|id| Value::from(*id)).collect(),
    )
}

/// Each app's newest succeeded release.
async fn current_releases(
    db: &DatabaseConnection,
    app_ids: Option<&[Uuid]>,
) -> Result<Vec<release::Model>> {
    let backend = db.get_database_backend();
    let succeeded = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let (filter, ids) = app_filter(backend, 2, app_ids);
    let sql = format!(
        "SELECT r.* FROM releases r WHERE r.status = {succeeded}{filter} AND r.version = \
         (SELECT MAX(n.version) FROM releases n WHERE n.app_id = r.app_id AND n.status = r.status)"
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
    app_ids: Option<&[Uuid]>,
) -> Result<Vec<AppStatusContext>> {
    let backend = db.get_database_backend();
    let (filter, values) = app_filter(backend, 1, app_ids);
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
