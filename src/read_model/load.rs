//! Reading the read model's rows from the database: everything (at start-up and on
//! resync), or just the pipelines and apps that changed. Both use the same queries, by
//! `id IN (…)` in chunks that every backend accepts.

use std::collections::HashMap;

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::state::{AppEntry, Catalog, CouplingRow, Loaded};
use crate::{
    error::Result,
    store::{self, entities::coupling},
    views::{
        app_view, coupling_contexts, coupling_policy, coupling_stage, coupling_verification,
        freeze_of_row, pipeline_view, release_summary,
    },
};

/// Ids per `IN (…)` list: well under SQLite's limit on bound parameters.
const CHUNK: usize = 500;

/// Every live pipeline and app. Apps are read a chunk at a time, so the rows in flight
/// stay small next to the catalog they build.
pub async fn load_everything(db: &DatabaseConnection) -> Result<Catalog> {
    let pipelines = store::pipelines::live_pipelines(db).await?;
    let app_ids = store::apps::live_app_ids(db).await?;
    let freezes = store::freezes::live_freezes(db, None, store::now()).await?;
    let mut catalog = Catalog::from_loaded(Loaded {
        pipelines: pipelines.into_iter().map(pipeline_view).collect(),
        apps: Vec::new(),
        freezes: freezes.iter().map(freeze_of_row).collect::<Result<_>>()?,
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
    let mut freezes = Vec::new();
    for chunk in pipeline_ids.chunks(CHUNK) {
        pipelines.extend(store::pipelines::live_pipelines_among(db, chunk).await?);
        for row in store::freezes::live_freezes(db, Some(chunk), store::now()).await? {
            freezes.push(freeze_of_row(&row)?);
        }
    }
    let mut apps = Vec::new();
    let mut couplings = HashMap::new();
    let mut releases = HashMap::new();
    let mut contexts: HashMap<Uuid, Vec<(String, String)>> = HashMap::new();
    for chunk in app_ids.chunks(CHUNK) {
        apps.extend(store::apps::live_apps(db, chunk).await?);
        for row in store::couplings::couplings_of_apps(db, chunk.iter().copied()).await? {
            couplings.insert(row.app_id, coupling_row(row)?);
        }
        for row in store::releases::current_releases_of_apps(db, chunk).await? {
            releases.insert(row.app_id, release_summary(&row));
        }
        for pair in store::release_statuses::status_contexts_of_apps(db, chunk).await? {
            contexts
                .entry(pair.app_id)
                .or_default()
                .push((pair.context, pair.name));
        }
    }
    Ok(Loaded {
        freezes,
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
        verification: coupling_verification(&row),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
