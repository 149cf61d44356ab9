//! Creating, reading and deleting pipelines, and what a pipeline knows of its statuses.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, TransactionTrait};

use super::{
    authorize,
    lookup::{find_pipeline, pipeline_view},
    paging::{compound_key, Page, PageRequest},
    views::{PipelineView, StatusContext},
};
use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::{Caller, Role},
        names::{check_description, PipelineName},
        stage::Stage,
    },
    error::{Error, Result},
    read_model::{Key, ReadModel},
    store::{self, entities::pipeline},
};

#[derive(Clone)]
pub struct Pipelines {
    db: DatabaseConnection,
    read_model: Arc<ReadModel>,
}

impl Pipelines {
    pub fn new(db: DatabaseConnection, read_model: Arc<ReadModel>) -> Self {
        Self { db, read_model }
    }

    pub async fn create(
        &self,
        name: &str,
        description: &str,
        caller: &Caller,
    ) -> Result<PipelineView> {
        authorize(caller, Role::Write, "creating a pipeline")?;
        let name = PipelineName::parse("name", name)?;
        check_description("description", description)?;
        let txn = self.db.begin().await?;
        let model = store::pipelines::insert_pipeline(&txn, name.as_str(), description)
            .await
            .map_err(|error| {
                store::taken_or(error, || {
                    format!("pipeline '{}' already exists", name.as_str())
                })
            })?;
        AuditEntry::new(
            "pipeline.create",
            "pipeline",
            model.id,
            &model.name,
            format!("created pipeline {}", model.name),
        )
        .in_pipeline(model.id, &model.name)
        .record(&txn, &Actor::of(caller))
        .await?;
        txn.commit().await?;
        self.read_model.changed(&[Key::Pipeline(model.id)]).await;
        Ok(pipeline_view(model))
    }

    pub async fn get(&self, pipeline: &str) -> Result<PipelineView> {
        let remembered = self
            .read_model
            .read(|catalog| catalog.pipeline(pipeline).cloned());
        if let Some(view) = remembered.await {
            return Ok(view);
        }
        Ok(pipeline_view(
            find_pipeline(&self.db, "pipeline", pipeline).await?,
        ))
    }

    /// Live pipelines, sorted by name.
    pub async fn list(&self, page: &PageRequest) -> Result<Page<PipelineView>> {
        let by_name = |view: &PipelineView| view.name.clone();
        if let Some(all) = self
            .read_model
            .read(|catalog| Some(catalog.pipelines()))
            .await
        {
            return Ok(page.page_of_sorted(all, by_name));
        }
        let rows =
            store::pipelines::live_pipelines_by_name(&self.db, page.after(), page.fetch_limit())
                .await?;
        Ok(page.finish(rows.into_iter().map(pipeline_view).collect(), by_name))
    }

    /// The live pipeline of exactly this name, as a list of it or of none: Heroku clients
    /// find a pipeline by name with a filter. An id is not a name, and a value no pipeline
    /// name could have matches none.
    pub async fn named(&self, name: &str, page: &PageRequest) -> Result<Page<PipelineView>> {
        let found = match PipelineName::parse("eq[name]", name) {
            Err(_) => Vec::new(),
            Ok(valid) => match self.get(valid.as_str()).await {
                Ok(view) if view.name == valid.as_str() => vec![view],
                Ok(_) | Err(Error::NotFound(_)) => Vec::new(),
                Err(error) => return Err(error),
            },
        };
        Ok(page.page_of_sorted(found, |view| view.name.clone()))
    }

    /// Renames a pipeline or changes its description, under the rules a new pipeline's
    /// name and description follow. Absent fields stay as they are.
    pub async fn update(
        &self,
        pipeline: &str,
        name: Option<&str>,
        description: Option<&str>,
        caller: &Caller,
    ) -> Result<PipelineView> {
        authorize(caller, Role::Write, "changing a pipeline")?;
        if name.is_none() && description.is_none() {
            return Err(Error::invalid(
                "name",
                "name or description is required: the update changes nothing",
            ));
        }
        let name = name
            .map(|name| PipelineName::parse("name", name))
            .transpose()?;
        if let Some(description) = description {
            check_description("description", description)?;
        }
        let found = find_pipeline(&self.db, "pipeline", pipeline).await?;
        let new_name = name
            .as_ref()
            .map_or(found.name.as_str(), |name| name.as_str());
        let new_description = description.unwrap_or(&found.description);
        let txn = self.db.begin().await?;
        let model = store::pipelines::update_pipeline(&txn, found.id, new_name, new_description)
            .await
            .map_err(|error| {
                store::taken_or(error, || format!("pipeline '{new_name}' already exists"))
            })?
            .ok_or_else(|| Error::not_found("pipeline", pipeline))?;
        let summary = if model.name == found.name {
            format!("changed the description of pipeline {}", model.name)
        } else {
            format!("renamed pipeline {} to {}", found.name, model.name)
        };
        AuditEntry::new(
            "pipeline.update",
            "pipeline",
            model.id,
            &model.name,
            summary,
        )
        .in_pipeline(model.id, &model.name)
        .record(&txn, &Actor::of(caller))
        .await?;
        txn.commit().await?;
        self.read_model.changed(&[Key::Pipeline(model.id)]).await;
        Ok(pipeline_view(model))
    }

    /// Deletes a pipeline with its couplings. The row is kept, marked deleted, so that past
    /// promotions can still name it; its name becomes free again.
    pub async fn delete(&self, pipeline: &str, caller: &Caller) -> Result<PipelineView> {
        authorize(caller, Role::Admin, "deleting a pipeline")?;
        let found = find_pipeline(&self.db, "pipeline", pipeline).await?;
        let txn = self.db.begin().await?;
        // Marking the row first takes its lock: a racing coupling either committed before
        // and is removed here, or waits and then finds no pipeline.
        if !store::mark_deleted::<pipeline::Entity>(&txn, found.id).await? {
            return Err(Error::not_found("pipeline", pipeline));
        }
        store::couplings::delete_couplings_of_pipeline(&txn, found.id).await?;
        AuditEntry::new(
            "pipeline.delete",
            "pipeline",
            found.id,
            &found.name,
            format!("deleted pipeline {} with its couplings", found.name),
        )
        .in_pipeline(found.id, &found.name)
        .record(&txn, &Actor::of(caller))
        .await?;
        txn.commit().await?;
        self.read_model.changed(&[Key::Pipeline(found.id)]).await;
        Ok(pipeline_view(found))
    }

    /// Each stage with the stage that follows it.
    pub fn stages(&self) -> Vec<(Stage, Option<Stage>)> {
        Stage::ALL
            .into_iter()
            .map(|stage| (stage, stage.next()))
            .collect()
    }

    /// The distinct (context, name) pairs of statuses on releases of the apps currently
    /// coupled to the pipeline, sorted.
    pub async fn statuses(
        &self,
        pipeline: &str,
        page: &PageRequest,
    ) -> Result<Page<StatusContext>> {
        let by_pair = |status: &StatusContext| compound_key(&[&status.context, &status.name]);
        let remembered = self.read_model.read(|catalog| {
            let found = catalog.pipeline(pipeline)?;
            Some(catalog.status_contexts(found.id))
        });
        if let Some(contexts) = remembered.await {
            return Ok(page.page_of_sorted(contexts, by_pair));
        }
        let found = find_pipeline(&self.db, "pipeline", pipeline).await?;
        let pairs = store::release_statuses::contexts_of_pipeline(&self.db, found.id).await?;
        let contexts = pairs
            .into_iter()
            .map(|(context, name)| StatusContext { context, name })
            .collect();
        Ok(page.page_of_sorted(contexts, by_pair))
    }
}
