//! The rows the read model holds, and the views composed from them. Pure memory: loading
//! and freshness live in the parent module.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use uuid::Uuid;

use crate::{
    domain::{
        freeze::{frozen_stages, Freeze, FrozenStage},
        policy::PromotionPolicy,
        stage::Stage,
    },
    store::Reference,
    views::{AppView, CouplingView, PipelineView, ReleaseSummary, ResourceRef, StatusContext},
};

/// An app's coupling, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouplingRow {
    pub id: Uuid,
    pub pipeline_id: Uuid,
    pub stage: Stage,
    pub required_contexts: Vec<String>,
    pub policy: PromotionPolicy,
    pub verification: Option<crate::domain::verification::Verification>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Everything the hot reads need to know about one live app. An app is in at most one
/// pipeline, so its coupling lives here too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEntry {
    pub app: AppView,
    pub coupling: Option<CouplingRow>,
    pub current_release: Option<ReleaseSummary>,
    /// The distinct (context, name) pairs of statuses on any of the app's releases,
    /// sorted. A vector: most apps have a handful, and a tree node costs half a kilobyte.
    pub status_contexts: Vec<ContextPair>,
}

/// A status context and its display name. The catalog shares one copy of each text among
/// all apps: thousands of apps post the same few contexts.
pub type ContextPair = (Arc<str>, Arc<str>);

/// What the database says about some keys: the live rows found. A key asked for and not
/// found is deleted.
#[derive(Debug, Default)]
pub struct Loaded {
    pub pipelines: Vec<PipelineView>,
    pub apps: Vec<AppEntry>,
    /// The live freezes of the pipelines loaded.
    pub freezes: Vec<Freeze>,
}

/// The frozen stages of the pipelines one read shows, at the read's instant.
struct FrozenAt {
    now: chrono::DateTime<chrono::Utc>,
    by_pipeline: HashMap<Uuid, std::collections::BTreeMap<Stage, FrozenStage>>,
}

impl FrozenAt {
    fn now() -> Self {
        Self {
            now: crate::store::now(),
            by_pipeline: HashMap::new(),
        }
    }
}

/// The current state of every live pipeline and app, with the indexes the reads use.
#[derive(Debug, Default)]
pub struct Catalog {
    pipelines: HashMap<Uuid, PipelineView>,
    pipeline_ids_by_name: HashMap<String, Uuid>,
    /// Boxed: the table keeps spare slots, and a slot then costs a pointer, not an entry.
    apps: HashMap<Uuid, Box<AppEntry>>,
    app_ids_by_name: HashMap<String, Uuid>,
    /// Coupled apps of each pipeline, in no particular order.
    apps_by_pipeline: HashMap<Uuid, Vec<Uuid>>,
    /// The app each coupling belongs to.
    app_ids_by_coupling: HashMap<Uuid, Uuid>,
    /// The live freezes of each pipeline that has any.
    freezes: HashMap<Uuid, Vec<Freeze>>,
    /// One copy of each status context and name text the apps hold.
    texts: HashSet<Arc<str>>,
}

impl Catalog {
    /// A catalog holding exactly what was loaded.
    pub fn from_loaded(loaded: Loaded) -> Self {
        let mut catalog = Self::default();
        for pipeline in loaded.pipelines {
            catalog.put_pipeline(pipeline);
        }
        for app in loaded.apps {
            catalog.put_app(app);
        }
        catalog.put_freezes(loaded.freezes);
        catalog
    }

    fn put_freezes(&mut self, freezes: Vec<Freeze>) {
        for freeze in freezes {
            self.freezes
                .entry(freeze.pipeline_id)
                .or_default()
                .push(freeze);
        }
    }

    /// Replaces what is known of the given pipelines and apps with what was loaded. Asked
    /// for and not loaded means deleted.
    pub fn apply(&mut self, pipeline_ids: &[Uuid], app_ids: &[Uuid], loaded: Loaded) {
        let found_pipelines: BTreeSet<Uuid> = loaded.pipelines.iter().map(|p| p.id).collect();
        let found_apps: BTreeSet<Uuid> = loaded.apps.iter().map(|a| a.app.id).collect();
        for id in pipeline_ids {
            self.freezes.remove(id);
            if !found_pipelines.contains(id) {
                self.remove_pipeline(*id);
            }
        }
        for id in app_ids {
            if !found_apps.contains(id) {
                self.remove_app(*id);
            }
        }
        for pipeline in loaded.pipelines {
            self.put_pipeline(pipeline);
        }
        for app in loaded.apps {
            self.put_app(app);
        }
        self.put_freezes(loaded.freezes);
    }

    fn put_pipeline(&mut self, pipeline: PipelineView) {
        if let Some(previous) = self.pipelines.get(&pipeline.id) {
            if previous.name != pipeline.name {
                self.pipeline_ids_by_name.remove(&previous.name);
            }
        }
        self.pipeline_ids_by_name
            .insert(pipeline.name.clone(), pipeline.id);
        self.pipelines.insert(pipeline.id, pipeline);
    }

    /// A deleted pipeline loses its couplings in the same transaction, so its apps are
    /// uncoupled here too.
    fn remove_pipeline(&mut self, id: Uuid) {
        if let Some(previous) = self.pipelines.remove(&id) {
            if self.pipeline_ids_by_name.get(&previous.name) == Some(&id) {
                self.pipeline_ids_by_name.remove(&previous.name);
            }
        }
        for app_id in self.apps_by_pipeline.remove(&id).unwrap_or_default() {
            if let Some(entry) = self.apps.get_mut(&app_id) {
                if let Some(coupling) = entry.coupling.take() {
                    self.app_ids_by_coupling.remove(&coupling.id);
                }
            }
        }
    }

    /// The catalog's copy of `text`.
    fn shared(&mut self, text: Arc<str>) -> Arc<str> {
        if let Some(shared) = self.texts.get(&text) {
            return Arc::clone(shared);
        }
        self.texts.insert(Arc::clone(&text));
        text
    }

    fn put_app(&mut self, mut entry: AppEntry) {
        entry.status_contexts = std::mem::take(&mut entry.status_contexts)
            .into_iter()
            .map(|(context, name)| (self.shared(context), self.shared(name)))
            .collect();
        self.remove_app(entry.app.id);
        let id = entry.app.id;
        self.app_ids_by_name.insert(entry.app.name.clone(), id);
        if let Some(coupling) = &entry.coupling {
            self.apps_by_pipeline
                .entry(coupling.pipeline_id)
                .or_default()
                .push(id);
            self.app_ids_by_coupling.insert(coupling.id, id);
        }
        self.apps.insert(id, Box::new(entry));
    }

    fn remove_app(&mut self, id: Uuid) {
        let Some(previous) = self.apps.remove(&id) else {
            return;
        };
        if self.app_ids_by_name.get(&previous.app.name) == Some(&id) {
            self.app_ids_by_name.remove(&previous.app.name);
        }
        if let Some(coupling) = previous.coupling {
            self.app_ids_by_coupling.remove(&coupling.id);
            if let Some(apps) = self.apps_by_pipeline.get_mut(&coupling.pipeline_id) {
                apps.retain(|app_id| *app_id != id);
                if apps.is_empty() {
                    self.apps_by_pipeline.remove(&coupling.pipeline_id);
                }
            }
        }
    }

    pub fn pipeline_count(&self) -> usize {
        self.pipelines.len()
    }

    pub fn app_count(&self) -> usize {
        self.apps.len()
    }

    pub fn coupling_count(&self) -> usize {
        self.app_ids_by_coupling.len()
    }

    /// A live pipeline by id or name.
    pub fn pipeline(&self, reference: &str) -> Option<&PipelineView> {
        match Reference::parse(reference) {
            Reference::Id(id) => self.pipelines.get(&id),
            Reference::Name(name) => self
                .pipeline_ids_by_name
                .get(&name)
                .and_then(|id| self.pipelines.get(id)),
        }
    }

    /// Live pipelines, by name.
    pub fn pipelines(&self) -> Vec<PipelineView> {
        let mut all: Vec<PipelineView> = self.pipelines.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// A live app by id or name; an id that matches no app is also tried as a name, as the
    /// database lookup does.
    pub fn app(&self, reference: &str) -> Option<&AppEntry> {
        let by_name = || {
            self.app_ids_by_name
                .get(reference)
                .and_then(|id| self.apps.get(id).map(Box::as_ref))
        };
        match Reference::parse(reference) {
            Reference::Id(id) => self.apps.get(&id).map(Box::as_ref).or_else(by_name),
            Reference::Name(_) => by_name(),
        }
    }

    /// Live apps, by name.
    pub fn apps(&self) -> Vec<AppView> {
        let mut all: Vec<AppView> = self.apps.values().map(|a| a.app.clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The stage's freeze at `frozen`'s instant; a pipeline's frozen stages are computed
    /// once per read, however many of its couplings the read shows.
    fn frozen_stage(
        &self,
        frozen: &mut FrozenAt,
        pipeline: Uuid,
        stage: Stage,
    ) -> Option<FrozenStage> {
        let freezes = self.freezes.get(&pipeline)?;
        frozen
            .by_pipeline
            .entry(pipeline)
            .or_insert_with(|| frozen_stages(freezes, frozen.now))
            .get(&stage)
            .cloned()
    }

    fn coupling_view(&self, entry: &AppEntry, frozen: &mut FrozenAt) -> Option<CouplingView> {
        let coupling = entry.coupling.as_ref()?;
        let pipeline = self.pipelines.get(&coupling.pipeline_id)?;
        Some(CouplingView {
            id: coupling.id,
            app: ResourceRef {
                id: entry.app.id,
                name: entry.app.name.clone(),
            },
            pipeline: ResourceRef {
                id: pipeline.id,
                name: pipeline.name.clone(),
            },
            stage: coupling.stage,
            required_contexts: coupling.required_contexts.clone(),
            policy: coupling.policy,
            verification: coupling.verification.clone(),
            current_release: entry.current_release.clone(),
            frozen: self.frozen_stage(frozen, coupling.pipeline_id, coupling.stage),
            created_at: coupling.created_at,
            updated_at: coupling.updated_at,
        })
    }

    /// The live freezes of a pipeline, oldest first.
    pub fn freezes_of_pipeline(&self, pipeline_id: Uuid) -> Vec<Freeze> {
        self.freezes.get(&pipeline_id).cloned().unwrap_or_default()
    }

    /// A coupling by id.
    pub fn coupling(&self, id: Uuid) -> Option<CouplingView> {
        let app_id = self.app_ids_by_coupling.get(&id)?;
        self.coupling_view(self.apps.get(app_id)?, &mut FrozenAt::now())
    }

    /// The coupling of a live app, `Some(None)` when the app is in no pipeline.
    pub fn coupling_of_app(&self, reference: &str) -> Option<(AppView, Option<CouplingView>)> {
        let entry = self.app(reference)?;
        Some((
            entry.app.clone(),
            self.coupling_view(entry, &mut FrozenAt::now()),
        ))
    }

    /// The live apps coupled to a pipeline, in no particular order.
    pub fn apps_of_pipeline(&self, pipeline_id: Uuid) -> impl Iterator<Item = &AppEntry> + '_ {
        self.apps_by_pipeline
            .get(&pipeline_id)
            .into_iter()
            .flatten()
            .filter_map(|app_id| self.apps.get(app_id).map(Box::as_ref))
    }

    /// The couplings of a pipeline, in no particular order.
    pub fn couplings_of_pipeline(&self, pipeline_id: Uuid) -> Vec<CouplingView> {
        let mut frozen = FrozenAt::now();
        self.apps_by_pipeline
            .get(&pipeline_id)
            .into_iter()
            .flatten()
            .filter_map(|app_id| self.coupling_view(self.apps.get(app_id)?, &mut frozen))
            .collect()
    }

    /// Every coupling, in no particular order.
    pub fn couplings(&self) -> Vec<CouplingView> {
        let mut frozen = FrozenAt::now();
        self.app_ids_by_coupling
            .values()
            .filter_map(|app_id| self.coupling_view(self.apps.get(app_id)?, &mut frozen))
            .collect()
    }

    /// The distinct (context, name) pairs of statuses on releases of the pipeline's
    /// coupled apps, sorted.
    pub fn status_contexts(&self, pipeline_id: Uuid) -> Vec<StatusContext> {
        let pairs: BTreeSet<&ContextPair> = self
            .apps_by_pipeline
            .get(&pipeline_id)
            .into_iter()
            .flatten()
            .filter_map(|app_id| self.apps.get(app_id).map(Box::as_ref))
            .flat_map(|entry| entry.status_contexts.iter())
            .collect();
        pairs
            .into_iter()
            .map(|(context, name)| StatusContext {
                context: context.to_string(),
                name: name.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "state/tests.rs"]
mod tests;
