//! Running one claimed target: mark it running, record its release, deploy, record the
//! outcome, and finish the promotion when it was the last. Each step is committed with its
//! event before the next begins, and each is guarded by the lease, so a step that was
//! already done (before a crash) is skipped on the retry.

use std::sync::Arc;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use uuid::Uuid;

use super::{claim, EngineContext};
use crate::{
    deploy::DeployRequest,
    domain::{
        promotion::{EventKind, PromotionStatus, TargetStatus},
        status::ReleaseState,
    },
    error::{Error, Result},
    progress::{self, EventDraft},
    service::views::{ReleaseRef, ResourceRef},
    store::{
        self,
        entities::{app, pipeline, promotion, promotion_target, release},
        insert_release_with_next_version, NewRelease,
    },
};

/// Runs a claimed target to its end, renewing the lease meanwhile. Errors leave the target
/// as it is; its lease expires and the work is retried.
pub(crate) async fn run_target(context: &Arc<EngineContext>, target: promotion_target::Model) {
    let target_id = target.id;
    let heartbeat = {
        let context = Arc::clone(context);
        tokio::spawn(async move {
            let period = context.settings.lease_ttl / 3;
            loop {
                tokio::time::sleep(period).await;
                if !claim::renew_lease(&context, target_id).await {
                    tracing::warn!(target = %target_id, "lost the lease on a running target");
                    return;
                }
            }
        })
    };
    let outcome = drive(context, target).await;
    heartbeat.abort();
    match outcome {
        Ok(()) => {}
        Err(error) => {
            tracing::warn!(target = %target_id, %error, "target step failed; it will be retried");
            claim::release_lease(context, target_id).await;
        }
    }
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

/// A guarded update of this worker's target: applies only while the worker holds the lease
/// and the target is in `from`.
fn guarded(
    context: &EngineContext,
    target: Uuid,
    from: TargetStatus,
) -> sea_orm::UpdateMany<promotion_target::Entity> {
    promotion_target::Entity::update_many()
        .filter(promotion_target::Column::Id.eq(target))
        .filter(promotion_target::Column::Status.eq(from.as_str()))
        .filter(promotion_target::Column::LeaseOwner.eq(context.settings.worker_id.clone()))
}

async fn drive(context: &EngineContext, target: promotion_target::Model) -> Result<()> {
    let subject = load_subject(context, &target).await?;
    let mut status = TargetStatus::parse(&target.status)
        .ok_or_else(|| Error::Internal(format!("target {} has an unknown status", target.id)))?;

    // Step 1: pending → running.
    if status == TargetStatus::Pending {
        let txn = context.db.begin().await?;
        let moved = guarded(context, target.id, TargetStatus::Pending)
            .col_expr(
                promotion_target::Column::Status,
                TargetStatus::Running.as_str().into(),
            )
            .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
            .exec(&txn)
            .await?;
        if moved.rows_affected == 0 {
            // Canceled meanwhile, or the lease was lost: nothing to do.
            txn.rollback().await?;
            claim::release_lease(context, target.id).await;
            return Ok(());
        }
        promotion::Entity::update_many()
            .col_expr(
                promotion::Column::Status,
                PromotionStatus::Running.as_str().into(),
            )
            .col_expr(promotion::Column::UpdatedAt, store::now().into())
            .filter(promotion::Column::Id.eq(subject.promotion.id))
            .filter(promotion::Column::Status.eq(PromotionStatus::Pending.as_str()))
            .exec(&txn)
            .await?;
        let event = progress::append_event(
            &txn,
            subject.promotion.id,
            EventDraft {
                kind: EventKind::TargetRunning,
                target: Some(target.id),
                app: Some(subject.app.clone()),
                target_status: Some(TargetStatus::Running),
                release: None,
                message: format!("promoting to '{}'", subject.app.name),
                waiting_for: None,
            },
        )
        .await?;
        progress::commit_and_publish(txn, &context.hub, vec![event]).await?;
        status = TargetStatus::Running;
    }
    if status != TargetStatus::Running {
        claim::release_lease(context, target.id).await;
        return Ok(());
    }

    // Step 2: the target's release, exactly once (unique on promotion_target_id).
    let current = promotion_target::Entity::find_by_id(target.id)
        .one(&context.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("target {} vanished", target.id)))?;
    let release = match current.release_id {
        Some(id) => release::Entity::find_by_id(id)
            .one(&context.db)
            .await?
            .ok_or_else(|| Error::Internal(format!("release {id} vanished")))?,
        None => create_target_release(context, &subject, &current).await?,
    };

    // Step 3: deploy. A retry after a crash may deploy the same release again; the
    // request carries the release id so that deployers can recognise the repeat.
    let request = DeployRequest {
        promotion_id: subject.promotion.id,
        target_id: target.id,
        pipeline_id: subject.pipeline.id,
        pipeline_name: subject.pipeline.name.clone(),
        app_id: subject.app.id,
        app_name: subject.app.name.clone(),
        release_id: release.id,
        release_version: release.version,
        image: release.image.clone(),
        source_app_id: subject.source_app.id,
        source_app_name: subject.source_app.name.clone(),
        source_release_id: subject.source_release.id,
    };
    let deployed = context.deployer.deploy(&request).await;

    // Step 4: the outcome, with the release's state, and the promotion's end.
    let txn = context.db.begin().await?;
    let (target_status, release_state, error_message, kind, message) = match &deployed {
        Ok(()) => (
            TargetStatus::Succeeded,
            ReleaseState::Succeeded,
            String::new(),
            EventKind::TargetSucceeded,
            format!(
                "release v{} is now current on '{}'",
                release.version, subject.app.name
            ),
        ),
        Err(error) => (
            TargetStatus::Failed,
            ReleaseState::Failed,
            error.0.clone(),
            EventKind::TargetFailed,
            format!("deploying to '{}' failed: {}", subject.app.name, error.0),
        ),
    };
    let recorded = guarded(context, target.id, TargetStatus::Running)
        .col_expr(
            promotion_target::Column::Status,
            target_status.as_str().into(),
        )
        .col_expr(
            promotion_target::Column::ErrorMessage,
            error_message.clone().into(),
        )
        .col_expr(
            promotion_target::Column::LeaseOwner,
            Option::<String>::None.into(),
        )
        .col_expr(
            promotion_target::Column::LeaseExpiresAt,
            Option::<chrono::DateTime<chrono::Utc>>::None.into(),
        )
        .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
        .exec(&txn)
        .await?;
    if recorded.rows_affected == 0 {
        txn.rollback().await?;
        return Err(Error::Internal(format!(
            "lost the lease on target {} before recording its outcome",
            target.id
        )));
    }
    let mut stored_release: release::ActiveModel = release.clone().into();
    stored_release.status = Set(release_state.as_str().to_owned());
    stored_release.updated_at = Set(store::now());
    stored_release.update(&txn).await?;
    let mut events = vec![
        progress::append_event(
            &txn,
            subject.promotion.id,
            EventDraft {
                kind,
                target: Some(target.id),
                app: Some(subject.app.clone()),
                target_status: Some(target_status),
                release: Some(ReleaseRef {
                    id: release.id,
                    version: release.version,
                }),
                message,
                waiting_for: None,
            },
        )
        .await?,
    ];
    if let Some(finished) = progress::finish_if_complete(&txn, subject.promotion.id).await? {
        events.push(finished);
    }
    progress::commit_and_publish(txn, &context.hub, events).await?;
    Ok(())
}

/// Records the target's release (pending until deployed) and links it to the target, in one
/// transaction with its event.
async fn create_target_release(
    context: &EngineContext,
    subject: &Subject,
    target: &promotion_target::Model,
) -> Result<release::Model> {
    let txn = context.db.begin().await?;
    let created = insert_release_with_next_version(
        &txn,
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
        },
    )
    .await?;
    let linked = guarded(context, target.id, TargetStatus::Running)
        .filter(promotion_target::Column::ReleaseId.is_null())
        .col_expr(promotion_target::Column::ReleaseId, Some(created.id).into())
        .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
        .exec(&txn)
        .await?;
    if linked.rows_affected == 0 {
        txn.rollback().await?;
        return Err(Error::Internal(format!(
            "target {} changed hands before its release was recorded",
            target.id
        )));
    }
    let event = progress::append_event(
        &txn,
        subject.promotion.id,
        EventDraft {
            kind: EventKind::TargetReleaseCreated,
            target: Some(target.id),
            app: Some(subject.app.clone()),
            target_status: Some(TargetStatus::Running),
            release: Some(ReleaseRef {
                id: created.id,
                version: created.version,
            }),
            message: format!(
                "release v{} created on '{}' with image {}",
                created.version, subject.app.name, created.image
            ),
            waiting_for: None,
        },
    )
    .await?;
    progress::commit_and_publish(txn, &context.hub, vec![event]).await?;
    Ok(created)
}
