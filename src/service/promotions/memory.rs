//! Resolving a promotion's pipeline, source and targets from the read model, the hot path
//! of a create: the names and couplings it validates against, with no database round
//! trip when memory holds all of them, fresh. Memory only ever answers yes: anything it
//! does not hold, or would refuse, is resolved again from the database, which has the
//! authoritative rows and words each refusal. The gates (status checks, config drift, the
//! queue) and the locks that keep the pipeline and apps live until the promotion commits
//! still read the database.

use std::collections::HashSet;

use super::{NewPromotion, Resolution, ResolvedTarget};
use crate::{
    read_model::{AppEntry, Catalog, ReadModel},
    views::ResourceRef,
};

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
        pipeline: ResourceRef {
            id: pipeline.id,
            name: pipeline.name.clone(),
        },
        source: app_ref(source),
        source_stage,
        target_stage,
        targets: targets
            .into_iter()
            .map(|entry| {
                let coupling = entry.coupling.as_ref()?;
                Some(ResolvedTarget {
                    app: app_ref(entry),
                    required_contexts: coupling.required_contexts.clone(),
                    policy: coupling.policy,
                    verification: coupling.verification.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?,
    })
}

fn app_ref(entry: &AppEntry) -> ResourceRef {
    ResourceRef {
        id: entry.app.id,
        name: entry.app.name.clone(),
    }
}
