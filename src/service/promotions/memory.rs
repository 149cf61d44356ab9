//! Resolving a promotion's pipeline, source and targets from the read model, the hot path
//! of a create: the names and couplings it validates against, with no database round
//! trip when memory holds all of them, fresh. Memory only ever answers yes: anything it
//! does not hold, or would refuse, is resolved again from the database, which has the
//! authoritative rows and words each refusal. The gates (status checks, config drift, the
//! queue) and the locks that keep the pipeline and apps live until the promotion commits
//! still read the database.

use std::collections::HashSet;

use super::{create::ResolvedTarget, NewPromotion};
use crate::{
    domain::stage::Stage,
    read_model::{AppEntry, Catalog, ReadModel},
    store::entities::{app, coupling, pipeline},
};

/// A create's references, resolved.
pub(super) struct Resolution {
    pub pipeline: pipeline::Model,
    pub source: app::Model,
    pub source_stage: Stage,
    pub target_stage: Stage,
    pub targets: Vec<ResolvedTarget>,
}

/// The request's pipeline, source and targets as memory holds them, or `None` when memory
/// cannot answer all of it with a yes.
pub(super) async fn resolve_from_memory(
    read_model: &ReadModel,
    request: &NewPromotion,
) -> Option<Resolution> {
    read_model.read(|catalog| resolve(catalog, request)).await
}

fn resolve(catalog: &Catalog, request: &NewPromotion) -> Option<Resolution> {
    let pipeline = catalog.pipeline(&request.pipeline)?;
    let source = catalog.app(&request.source_app)?;
    let source_coupling = source.coupling.as_ref()?;
    if source_coupling.pipeline_id != pipeline.id {
        return None;
    }
    let source_stage = source_coupling.stage;
    let target_stage = source_stage.next()?;
    let at_target_stage = |entry: &AppEntry| {
        entry.coupling.as_ref().is_some_and(|coupling| {
            coupling.pipeline_id == pipeline.id && coupling.stage == target_stage
        })
    };
    let mut targets: Vec<&AppEntry> = Vec::new();
    if request.targets.is_empty() {
        targets.extend(
            catalog
                .apps_of_pipeline(pipeline.id)
                .filter(|entry| at_target_stage(entry)),
        );
        targets.sort_by(|a, b| a.app.name.cmp(&b.app.name));
    } else {
        let mut seen = HashSet::new();
        for reference in &request.targets {
            let entry = catalog.app(reference)?;
            if entry.app.id == source.app.id || !seen.insert(entry.app.id) {
                return None;
            }
            if !at_target_stage(entry) {
                return None;
            }
            targets.push(entry);
        }
    }
    if targets.is_empty() {
        return None;
    }
    Some(Resolution {
        pipeline: pipeline::Model {
            id: pipeline.id,
            name: pipeline.name.clone(),
            description: pipeline.description.clone(),
            created_at: pipeline.created_at,
            updated_at: pipeline.updated_at,
            deleted_at: None,
        },
        source: app_model(source),
        source_stage,
        target_stage,
        targets: targets
            .into_iter()
            .map(|entry| {
                Some(ResolvedTarget {
                    app: app_model(entry),
                    coupling: coupling_model(entry)?,
                })
            })
            .collect::<Option<Vec<_>>>()?,
    })
}

fn app_model(entry: &AppEntry) -> app::Model {
    app::Model {
        id: entry.app.id,
        name: entry.app.name.clone(),
        created_at: entry.app.created_at,
        updated_at: entry.app.updated_at,
        deleted_at: None,
    }
}

/// The app's coupling as it is stored.
fn coupling_model(entry: &AppEntry) -> Option<coupling::Model> {
    let row = entry.coupling.as_ref()?;
    Some(coupling::Model {
        id: row.id,
        pipeline_id: row.pipeline_id,
        app_id: entry.app.id,
        stage: row.stage.as_str().to_owned(),
        required_contexts: serde_json::to_string(&row.required_contexts).ok()?,
        auto_promote: row.policy.auto_promote,
        required_approvals: i32::try_from(row.policy.required_approvals).ok()?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
