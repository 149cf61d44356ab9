//! Running one claimed target: start it, link its release, deploy, record the outcome.
//! Each step is a lifecycle transition committed before the next begins, so a step that
//! was already done (before a crash) is skipped on the retry.

use std::sync::Arc;

use sea_orm::EntityTrait;

use super::EngineContext;
use crate::{
    deploy::{DeployCause, DeployRequest},
    domain::{promotion::TargetStatus, status::ReleaseState},
    error::{Error, Result},
    lifecycle::{self, DeployOutcome, LeasedWork, LinkedRelease, Transaction},
    store::{
        entities::{app, pipeline, promotion, promotion_target, release},
        NewRelease,
    },
    views::ResourceRef,
};

/// Runs a claimed target to its end, renewing the lease meanwhile. Errors leave the target
/// as it is; its lease is given back and the work is retried.
pub(crate) async fn run_target(context: &Arc<EngineContext>, target: promotion_target::Model) {
    let target_id = target.id;
    let heartbeat = keep_lease::<promotion_target::Entity>(context, target_id);
    let outcome = drive(context, target).await;
    heartbeat.abort();
    if let Err(error) = outcome {
        tracing::warn!(target = %target_id, error = ?error, "target step failed; it will be retried");
    }
    // A no-op once the outcome was recorded, which clears the lease itself.
    lifecycle::release_lease::<promotion_target::Entity>(
        &context.db,
        target_id,
        &context.settings.worker_id,
    )
    .await;
}

/// Renews the lease on held work every third of its lifetime until aborted or lost.
pub(super) fn keep_lease<E: LeasedWork>(
    context: &Arc<EngineContext>,
    id: uuid::Uuid,
) -> tokio::task::JoinHandle<()> {
    let context = Arc::clone(context);
    tokio::spawn(async move {
        let settings = &context.settings;
        loop {
            tokio::time::sleep(settings.lease_ttl / 3).await;
            if !lifecycle::renew_lease::<E>(
                &context.db,
                id,
                &settings.worker_id,
                settings.lease_ttl,
            )
            .await
            {
                tracing::warn!(%id, "lost the lease on running work");
                return;
            }
        }
    })
}

/// What the steps need to know, loaded once.
struct Subject {
    promotion: promotion::Model,
    pipeline: pipeline::Model,
    app: ResourceRef,
    source_app: app::Model,
    source_release: release::Model,
}

async fn load_subject(
    context: &EngineContext,
    target: &promotion_target::Model,
) -> Result<Subject> {
    let missing = |what: &str| Error::Internal(format!("target {}: {what} is missing", target.id));
    let promotion = promotion::Entity::find_by_id(target.promotion_id)
        .one(&context.db)
        .await?
        .ok_or_else(|| missing("promotion"))?;
    let pipeline = pipeline::Entity::find_by_id(promotion.pipeline_id)
        .one(&context.db)
        .await?
        .ok_or_else(|| missing("pipeline"))?;
    let app = app::Entity::find_by_id(target.app_id)
        .one(&context.db)
        .await?
        .ok_or_else(|| missing("app"))?;
    let source_app = app::Entity::find_by_id(promotion.source_app_id)
        .one(&context.db)
        .await?
        .ok_or_else(|| missing("source app"))?;
    let source_release = release::Entity::find_by_id(promotion.source_release_id)
        .one(&context.db)
        .await?
        .ok_or_else(|| missing("source release"))?;
    Ok(Subject {
        promotion,
        pipeline,
        app: ResourceRef {
            id: app.id,
            name: app.name,
        },
        source_app,
        source_release,
    })
}

async fn drive(context: &EngineContext, target: promotion_target::Model) -> Result<()> {
    let subject = load_subject(context, &target).await?;
    let worker = context.settings.worker_id.as_str();
    let status = TargetStatus::parse(&target.status)
        .ok_or_else(|| Error::Internal(format!("target {} has an unknown status", target.id)))?;

    // Step 1: pending → running.
    if status == TargetStatus::Pending {
        let mut tx = Transaction::begin(&context.db).await?;
        let started = lifecycle::start_target(&mut tx, &target, &subject.app, worker).await?;
        tx.commit(&context.hub).await?;
        if !started {
            return Ok(());
        }
    } else if status != TargetStatus::Running {
        return Ok(());
    }

    // Step 2: the target's release, exactly once (unique on promotion_target_id).
    let Some(release) = target_release(context, &subject, target.id).await? else {
        return Ok(());
    };

    // Step 3: deploy, unless the app was deleted or the target taken away meanwhile. A
    // retry after a crash may deploy the same release again; the request carries the
    // release id so that deployers can recognise the repeat.
    if !lifecycle::is_deployable::<promotion_target::Entity>(&context.db, target.id, worker).await?
    {
        return Ok(());
    }
    let request = DeployRequest {
        cause: DeployCause::Promotion {
            promotion_id: subject.promotion.id,
            target_id: target.id,
            pipeline_id: subject.pipeline.id,
            pipeline_name: subject.pipeline.name.clone(),
        },
        app_id: subject.app.id,
        app_name: subject.app.name.clone(),
        release_id: release.id,
        release_version: release.version,
        image: release.image.clone(),
        source_app_id: subject.source_app.id,
        source_app_name: subject.source_app.name.clone(),
        source_release_id: subject.source_release.id,
    };
    let outcome = match context.deployer.deploy(&request).await {
        Ok(()) => DeployOutcome::Deployed,
        Err(error) => DeployOutcome::Failed(error.0),
    };

    // Step 4: the outcome, with the release's state, and the promotion's end.
    let mut tx = Transaction::begin(&context.db).await?;
    let recorded =
        lifecycle::record_outcome(&mut tx, &target, &subject.app, worker, &release, outcome)
            .await?;
    tx.commit(&context.hub).await?;
    if !recorded {
        tracing::info!(
            target = %target.id,
            "the target was canceled or taken over while deploying; its outcome is not recorded"
        );
    }
    Ok(())
}

/// The target's release: the one already linked (a retry), or a new one. `None` when the
/// target is no longer to be run (its app was deleted, or it changed hands).
async fn target_release(
    context: &EngineContext,
    subject: &Subject,
    target: uuid::Uuid,
) -> Result<Option<release::Model>> {
    let current = promotion_target::Entity::find_by_id(target)
        .one(&context.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("target {target} vanished")))?;
    if let Some(id) = current.release_id {
        return release::Entity::find_by_id(id)
            .one(&context.db)
            .await?
            .map(Some)
            .ok_or_else(|| Error::Internal(format!("release {id} vanished")));
    }
    let worker = context.settings.worker_id.as_str();
    let mut tx = Transaction::begin(&context.db).await?;
    let linked =
        lifecycle::link_release(&mut tx, &current, worker, new_release(subject, &current)).await?;
    tx.commit(&context.hub).await?;
    Ok(match linked {
        LinkedRelease::Created(release) => Some(*release),
        LinkedRelease::AppDeleted | LinkedRelease::NotHeld => None,
    })
}

fn new_release(subject: &Subject, target: &promotion_target::Model) -> NewRelease {
    NewRelease {
        app_id: subject.app.id,
        image: subject.source_release.image.clone(),
        description: format!(
            "promoted from '{}' v{}",
            subject.source_app.name, subject.source_release.version
        ),
        status: ReleaseState::Pending.as_str(),
        promoted_from_app_id: Some(subject.source_app.id),
        promoted_from_release_id: Some(subject.source_release.id),
        promoted_from_promotion_id: Some(subject.promotion.id),
        promotion_target_id: Some(target.id),
    }
}
