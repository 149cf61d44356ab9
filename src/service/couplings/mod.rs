//! Coupling apps to pipelines at a stage, and the status checks that guard promotions into
//! them.

use std::{collections::HashMap, sync::Arc};

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

mod rules;

use self::rules::{
    check_contexts_for_stage, check_policy_for_stage, encode_contexts, encode_verification,
    verification_after,
};
use super::{
    authorize,
    lookup::{
        app_ref, apps_by_id, coupling_contexts, coupling_policy, coupling_stage,
        coupling_verification, find_app, find_pipeline, parse_uuid, release_summary,
    },
    paging::{compound_key, Page, PageRequest},
    views::{CouplingView, ResourceRef},
};
use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::{Caller, Role},
        policy::{role_to_change, PolicyChange, PromotionPolicy},
        stage::Stage,
        status::removed_contexts,
        verification::{self, AllowedHosts, VerificationChange},
    },
    error::{Error, Result},
    read_model::{Key, ReadModel},
    store::{
        self,
        entities::{coupling, pipeline, release},
        is_unique_violation,
    },
};

const MAX_UPDATE_ATTEMPTS: usize = 10;

/// A coupling to create. `stage` is `None` when the request left it out.
#[derive(Debug, Clone, Default)]
pub struct NewCoupling {
    pub app: String,
    pub pipeline: String,
    pub stage: Option<Stage>,
    pub required_contexts: Vec<String>,
    /// The promotion policy; parts left out are off.
    pub policy: PolicyChange,
    /// The verification after deploy; left out or removed: none.
    pub verification: VerificationChange,
}

/// What a coupling update changes; parts left out stay as they are.
#[derive(Debug, Clone, Default)]
pub struct CouplingChange {
    /// Moves the app to another stage of its pipeline (elevated access).
    pub stage: Option<Stage>,
    /// Replaces the required contexts whole.
    pub required_contexts: Option<Vec<String>>,
    pub policy: PolicyChange,
    pub verification: VerificationChange,
}

#[derive(Clone)]
pub struct Couplings {
    db: DatabaseConnection,
    read_model: Arc<ReadModel>,
    verification_hosts: AllowedHosts,
}

/// Turns coupling rows into views, resolving apps, pipelines and current releases.
async fn coupling_views(
    db: &impl ConnectionTrait,
    rows: Vec<coupling::Model>,
) -> Result<Vec<CouplingView>> {
    let apps = apps_by_id(db, rows.iter().map(|row| row.app_id)).await?;
    let pipeline_ids: Vec<Uuid> = rows.iter().map(|row| row.pipeline_id).collect();
    let pipelines: HashMap<Uuid, pipeline::Model> =
        store::pipelines::pipelines_by_id(db, pipeline_ids)
            .await?
            .into_iter()
            .map(|model| (model.id, model))
            .collect();
    let app_ids: Vec<Uuid> = rows.iter().map(|row| row.app_id).collect();
    let mut current: HashMap<Uuid, release::Model> =
        store::releases::current_releases_of_apps(db, &app_ids)
            .await?
            .into_iter()
            .map(|release| (release.app_id, release))
            .collect();
    let frozen = super::frozen_stages_of(
        db,
        &pipelines.keys().copied().collect::<Vec<_>>(),
        store::now(),
    )
    .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let app = apps
            .get(&row.app_id)
            .ok_or_else(|| Error::Internal(format!("coupling {} lost its app", row.id)))?;
        let pipeline = pipelines
            .get(&row.pipeline_id)
            .ok_or_else(|| Error::Internal(format!("coupling {} lost its pipeline", row.id)))?;
        let release = current.remove(&row.app_id);
        views.push(CouplingView {
            id: row.id,
            app: app_ref(app),
            pipeline: ResourceRef {
                id: pipeline.id,
                name: pipeline.name.clone(),
            },
            stage: coupling_stage(&row)?,
            required_contexts: coupling_contexts(&row)?,
            policy: coupling_policy(&row),
            verification: coupling_verification(&row),
            current_release: release.as_ref().map(release_summary),
            frozen: frozen
                .get(&row.pipeline_id)
                .and_then(|stages| stages.get(&coupling_stage(&row).ok()?).cloned()),
            created_at: row.created_at,
            updated_at: row.updated_at,
        });
    }
    Ok(views)
}

/// An entry about a coupling, in its pipeline and about its app.
fn coupling_entry(action: &'static str, view: &CouplingView, summary: String) -> AuditEntry {
    AuditEntry::new(action, "coupling", view.id, &view.app.name, summary)
        .in_pipeline(view.pipeline.id, &view.pipeline.name)
        .about_known_app(view.app.id, &view.app.name)
}

async fn coupling_view(db: &impl ConnectionTrait, row: coupling::Model) -> Result<CouplingView> {
    coupling_views(db, vec![row])
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("coupling view went missing".into()))
}

/// ALREADY_EXISTS in the Akkeris wording, naming the app and the pipeline it is in.
async fn already_pipelined(db: &impl ConnectionTrait, app: &str, pipeline_id: Uuid) -> Error {
    let pipeline = store::pipelines::pipelines_by_id(db, vec![pipeline_id])
        .await
        .ok()
        .and_then(|found| found.into_iter().next())
        .map(|found| found.name)
        .unwrap_or_else(|| pipeline_id.to_string());
    Error::AlreadyExists(format!(
        "the application already is pipelined: app '{app}' is in pipeline '{pipeline}'"
    ))
}

/// Orders couplings by pipeline name, stage and app name, and pages them.
fn page_for_listing(mut views: Vec<CouplingView>, page: &PageRequest) -> Page<CouplingView> {
    views.sort_by(|a, b| {
        (&a.pipeline.name, a.stage, &a.app.name).cmp(&(&b.pipeline.name, b.stage, &b.app.name))
    });
    page.page_of_sorted(views, |view| {
        let stage = Stage::ALL
            .iter()
            .position(|stage| *stage == view.stage)
            .unwrap_or_default()
            .to_string();
        compound_key(&[&view.pipeline.name, &stage, &view.app.name])
    })
}

impl Couplings {
    pub fn new(
        db: DatabaseConnection,
        read_model: Arc<ReadModel>,
        verification_hosts: AllowedHosts,
    ) -> Self {
        Self {
            db,
            read_model,
            verification_hosts,
        }
    }

    async fn find(&self, id: &str) -> Result<coupling::Model> {
        let uuid = parse_uuid("id", id)?;
        store::couplings::coupling_by_id(&self.db, uuid)
            .await?
            .ok_or_else(|| Error::not_found("coupling", id))
    }

    pub async fn create(&self, request: NewCoupling, caller: &Caller) -> Result<CouplingView> {
        authorize(caller, Role::Write, "coupling an app")?;
        let stage = request
            .stage
            .ok_or_else(|| Error::invalid("stage", "is required"))?;
        check_contexts_for_stage(stage, &request.required_contexts)?;
        let policy = request.policy.applied_to(PromotionPolicy::default());
        check_policy_for_stage(stage, &request.policy, policy)?;
        let verification =
            verification_after(stage, None, &request.verification, &self.verification_hosts)?;
        let pipeline = find_pipeline(&self.db, "pipeline", &request.pipeline).await?;
        let app = find_app(&self.db, "app", &request.app).await?;
        // Both rows stay locked live until the coupling commits, so a delete of either
        // waits and then removes the coupling, or ran first and the coupling is refused.
        let txn = self.db.begin().await?;
        let pipeline = store::lock_live::<pipeline::Entity>(&txn, pipeline.id)
            .await?
            .ok_or_else(|| Error::not_found("pipeline", &request.pipeline))?;
        let app = store::lock_live::<store::entities::app::Entity>(&txn, app.id)
            .await?
            .ok_or_else(|| Error::not_found("app", &request.app))?;
        if let Some(existing) = store::couplings::coupling_of_app(&txn, app.id).await? {
            return Err(already_pipelined(&txn, &app.name, existing.pipeline_id).await);
        }
        let now = crate::store::now();
        let row = coupling::Model {
            id: Uuid::new_v4(),
            pipeline_id: pipeline.id,
            app_id: app.id,
            stage: stage.as_str().to_owned(),
            required_contexts: encode_contexts(&request.required_contexts)?,
            auto_promote: policy.auto_promote,
            required_approvals: policy.required_approvals as i32,
            verification: encode_verification(&verification)?,
            created_at: now,
            updated_at: now,
        };
        let model = match store::couplings::insert_coupling(&txn, row).await {
            Ok(model) => model,
            Err(error) if is_unique_violation(&error) => {
                return Err(Error::AlreadyExists(format!(
                    "the application already is pipelined: app '{}' joined a pipeline concurrently",
                    app.name
                )))
            }
            Err(error) => return Err(error.into()),
        };
        let view = coupling_view(&txn, model).await?;
        coupling_entry(
            "coupling.create",
            &view,
            format!(
                "coupled {} to {} at {}",
                app.name, pipeline.name, view.stage
            ),
        )
        .coupling_change(None, Some((&view).into()))
        .record(&txn, &Actor::of(caller))
        .await?;
        txn.commit().await?;
        self.read_model.changed(&[Key::App(app.id)]).await;
        Ok(view)
    }

    pub async fn get(&self, id: &str) -> Result<CouplingView> {
        let uuid = parse_uuid("id", id)?;
        if let Some(view) = self.read_model.read(|catalog| catalog.coupling(uuid)).await {
            return Ok(view);
        }
        let row = self.find(id).await?;
        coupling_view(&self.db, row).await
    }

    /// Every coupling, ordered by pipeline name, stage and app name.
    pub async fn list(&self, page: &PageRequest) -> Result<Page<CouplingView>> {
        let views = match self
            .read_model
            .read(|catalog| Some(catalog.couplings()))
            .await
        {
            Some(views) => views,
            None => {
                let rows = store::couplings::all_couplings(&self.db).await?;
                coupling_views(&self.db, rows).await?
            }
        };
        Ok(page_for_listing(views, page))
    }

    /// The couplings of one pipeline, ordered by stage and app name.
    pub async fn list_for_pipeline(
        &self,
        pipeline: &str,
        page: &PageRequest,
    ) -> Result<Page<CouplingView>> {
        let remembered = self.read_model.read(|catalog| {
            let found = catalog.pipeline(pipeline)?;
            Some(catalog.couplings_of_pipeline(found.id))
        });
        if let Some(views) = remembered.await {
            return Ok(page_for_listing(views, page));
        }
        let found = find_pipeline(&self.db, "pipeline", pipeline).await?;
        let rows = store::couplings::couplings_of_pipeline(&self.db, found.id, None).await?;
        let views = coupling_views(&self.db, rows).await?;
        Ok(page_for_listing(views, page))
    }

    /// The coupling of one app.
    pub async fn get_for_app(&self, app: &str) -> Result<CouplingView> {
        let not_coupled = |name: &str| {
            Error::NotFound(format!(
                "coupling of app '{name}' not found: the app is in no pipeline"
            ))
        };
        if let Some((found, coupling)) = self
            .read_model
            .read(|catalog| catalog.coupling_of_app(app))
            .await
        {
            return coupling.ok_or_else(|| not_coupled(&found.name));
        }
        let found = find_app(&self.db, "app", app).await?;
        let row = store::couplings::coupling_of_app(&self.db, found.id)
            .await?
            .ok_or_else(|| not_coupled(&found.name))?;
        coupling_view(&self.db, row).await
    }

    /// Changes the stage, the required contexts (replaced whole), the promotion policy and
    /// the verification. Moving the app between stages, and weakening a gate (dropping a
    /// context, lowering the approvals), need elevated access. The coupling must suit its
    /// stage afterwards: moving one to review is refused unless its contexts, policy and
    /// verification are empty or emptied by the same change. Promotions already created
    /// keep the targets they resolved.
    pub async fn update(
        &self,
        id: &str,
        change: CouplingChange,
        caller: &Caller,
    ) -> Result<CouplingView> {
        authorize(caller, Role::Write, "updating a coupling")?;
        if change.stage.is_none()
            && change.required_contexts.is_none()
            && change.policy.is_empty()
            && change.verification == VerificationChange::Unchanged
        {
            return Err(Error::invalid(
                "required_status_checks",
                "stage, promotion_policy or verification is required: the update changes \
                 nothing",
            ));
        }
        // Optimistic concurrency: the update only applies if the coupling is still the one
        // the permission checks saw, so a concurrent change cannot slip a weakening past them.
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let row = self.find(id).await?;
            let current_stage = coupling_stage(&row)?;
            let stage = change.stage.unwrap_or(current_stage);
            if stage != current_stage {
                authorize(
                    caller,
                    Role::Admin,
                    &format!("moving an app from stage {current_stage} to {stage}"),
                )?;
            }
            let current = coupling_contexts(&row)?;
            let contexts = change.required_contexts.clone().unwrap_or(current.clone());
            check_contexts_for_stage(stage, &contexts)?;
            let removed = removed_contexts(&current, &contexts);
            if !removed.is_empty() {
                authorize(
                    caller,
                    Role::Admin,
                    &format!("removing required contexts ({})", removed.join(", ")),
                )?;
            }
            let current_policy = coupling_policy(&row);
            let policy = change.policy.applied_to(current_policy);
            check_policy_for_stage(stage, &change.policy, policy)?;
            if role_to_change(current_policy, policy) == Role::Admin {
                authorize(
                    caller,
                    Role::Admin,
                    &format!(
                        "lowering required approvals from {} to {}",
                        current_policy.required_approvals, policy.required_approvals
                    ),
                )?;
            }
            let current_verification = coupling_verification(&row);
            let verification = verification_after(
                stage,
                current_verification.clone(),
                &change.verification,
                &self.verification_hosts,
            )?;
            if let Some(weakening) =
                verification::weakening(current_verification.as_ref(), verification.as_ref())
            {
                authorize(caller, Role::Admin, &weakening)?;
            }
            let txn = self.db.begin().await?;
            let updated = store::couplings::update_coupling_if_unchanged(
                &txn,
                &row,
                store::couplings::CouplingSettings {
                    stage: stage.as_str().to_owned(),
                    required_contexts: encode_contexts(&contexts)?,
                    auto_promote: policy.auto_promote,
                    required_approvals: policy.required_approvals as i32,
                    verification: encode_verification(&verification)?,
                },
            )
            .await?;
            if updated {
                let before = coupling_view(&txn, row.clone()).await?;
                let after = CouplingView {
                    stage,
                    required_contexts: contexts,
                    policy,
                    verification,
                    ..before.clone()
                };
                let summary = if stage == current_stage {
                    format!(
                        "updated the coupling of {} in {}",
                        before.app.name, before.pipeline.name
                    )
                } else {
                    format!(
                        "moved {} in {} from stage {current_stage} to {stage}",
                        before.app.name, before.pipeline.name
                    )
                };
                coupling_entry("coupling.update", &before, summary)
                    .coupling_change(Some((&before).into()), Some((&after).into()))
                    .record(&txn, &Actor::of(caller))
                    .await?;
                txn.commit().await?;
                self.read_model.changed(&[Key::App(row.app_id)]).await;
                return self.get(id).await;
            }
        }
        Err(Error::Unavailable(format!(
            "coupling '{id}' kept changing concurrently; retry the update"
        )))
    }

    /// Removes an app from its pipeline. Only an elevated caller may do it.
    pub async fn delete(&self, id: &str, caller: &Caller) -> Result<CouplingView> {
        authorize(caller, Role::Admin, "deleting a coupling")?;
        let row = self.find(id).await?;
        let txn = self.db.begin().await?;
        let view = coupling_view(&txn, row.clone()).await?;
        if !store::couplings::delete_coupling(&txn, row.id).await? {
            return Err(Error::not_found("coupling", id));
        }
        let summary = format!("removed {} from {}", view.app.name, view.pipeline.name);
        coupling_entry("coupling.delete", &view, summary)
            .coupling_change(Some((&view).into()), None)
            .record(&txn, &Actor::of(caller))
            .await?;
        txn.commit().await?;
        self.read_model.changed(&[Key::App(row.app_id)]).await;
        Ok(view)
    }
}
