//! Reading the read model's rows from the database: everything (at start-up and on
//! resync), or just the pipelines and apps that changed. Both use the same queries: by
//! `id IN (…)` for the keys that changed, by ranges of app ids for everything.

use std::collections::HashMap;

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::state::{AppEntry, Catalog, ContextPair, CouplingRow, Loaded};
use crate::{
    error::Result,
    store::{self, entities::coupling, AppIds},
    views::{
        app_view, coupling_contexts, coupling_policy, coupling_stage, coupling_verification,
        freeze_of_row, pipeline_view, release_summary,
    },
};

/// Ids per `IN (…)` list: well under SQLite's limit on bound parameters.
const CHUNK: usize = 500;

/// Apps per range of a full load: each range costs four statements of two parameters,
/// and building its entries is a short burst of work between them, so a reload never
/// holds a runtime thread for long.
const RANGE: usize = 500;

/// Every live pipeline and app. Apps are read a range of ids at a time, so the rows in
/// flight stay small next to the catalog they build, and each statement reads an index
/// range rather than binding a list of ids.
pub async fn load_everything(db: &DatabaseConnection) -> Result<Catalog> {
    let pipelines = store::pipelines::live_pipelines(db).await?;
    let app_ids = store::apps::live_app_ids(db).await?;
    let freezes = store::freezes::live_freezes(db, None, store::now()).await?;
    let mut catalog = Catalog::from_loaded(Loaded {
        pipelines: pipelines.into_iter().map(pipeline_view).collect(),
        apps: Vec::new(),
        freezes: freezes.iter().map(freeze_of_row).collect::<Result<_>>()?,
    });
    for range in app_ids.chunks(RANGE) {
        let (Some(first), Some(last)) = (range.first(), range.last()) else {
            continue;
        };
        let apps = load_apps(db, AppIds::Between(*first, *last)).await?;
        catalog.apply(
            &[],
            range,
            Loaded {
                apps,
                ..Loaded::default()
            },
        );
        tokio::task::yield_now().await;
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
    for chunk in app_ids.chunks(CHUNK) {
        apps.extend(load_apps(db, AppIds::Listed(chunk)).await?);
    }
    Ok(Loaded {
        freezes,
        pipelines: pipelines.into_iter().map(pipeline_view).collect(),
        apps,
    })
}

/// The live apps among `which`, each with its coupling, current release and status
/// contexts: four statements.
async fn load_apps(db: &DatabaseConnection, which: AppIds<'_>) -> Result<Vec<AppEntry>> {
    let apps = store::apps::live_apps_among(db, which).await?;
    let mut couplings = HashMap::new();
    for row in store::couplings::couplings_among(db, which).await? {
        couplings.insert(row.app_id, coupling_row(row)?);
    }
    let mut releases: HashMap<Uuid, _> = store::releases::current_releases_among(db, which)
        .await?
        .iter()
        .map(|row| (row.app_id, release_summary(row)))
        .collect();
    let mut contexts: HashMap<Uuid, Vec<ContextPair>> = HashMap::new();
    for pair in store::release_statuses::status_contexts_among(db, which).await? {
        contexts
            .entry(pair.app_id)
            .or_default()
            .push((pair.context.into(), pair.name.into()));
    }
    Ok(apps
        .into_iter()
        .map(|model| AppEntry {
            coupling: couplings.remove(&model.id),
            current_release: releases.remove(&model.id),
            status_contexts: {
                let mut pairs = contexts.remove(&model.id).unwrap_or_default();
                pairs.sort();
                pairs.dedup();
                pairs.shrink_to_fit();
                pairs
            },
            app: app_view(model),
        })
        .collect())
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
