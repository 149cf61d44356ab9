//! Running claimed targets of one promotion: start them and link their releases, deploy
//! each, record the outcomes. Each step is a lifecycle transition committed before the
//! next begins, so a step that was already done (before a crash) is skipped on the retry.
//!
//! Targets of one promotion move together: all of them start in one transaction, and the
//! outcomes that arrive together are recorded in one. Every transition of a promotion
//! holds its row lock until it commits, so fewer, larger transactions are what lets a
//! promotion to many apps finish nearly as fast as one to a single app.

use std::sync::Arc;

use tokio::task::JoinSet;
use uuid::Uuid;

use super::EngineContext;
use crate::{
    deploy::{DeployCause, DeployRequest},
    error::Result,
    lifecycle::{self, AtOnce, DeployOutcome, DeployedTarget, LeasedWork, Subject, Transaction},
    store::entities::{promotion_target, release},
    views::ResourceRef,
};

/// Runs claimed targets of one promotion to their end, renewing their leases meanwhile.
/// Errors leave the targets as they are; their leases are given back and the work is
/// retried.
pub(crate) async fn run_targets(
    context: &Arc<EngineContext>,
    targets: Vec<promotion_target::Model>,
) {
    let ids: Vec<Uuid> = targets.iter().map(|target| target.id).collect();
    let heartbeats: Vec<_> = ids
        .iter()
        .map(|id| keep_lease::<promotion_target::Entity>(context, *id))
        .collect();
    let leases = drive(context, targets).await;
    for heartbeat in heartbeats {
        heartbeat.abort();
    }
    match leases {
        Ok(Leases::Cleared) => {}
        Ok(Leases::MayBeHeld) => give_back(context, &ids).await,
        Err(error) => {
            tracing::warn!(targets = ?ids, error = ?error, "target step failed; it will be retried");
            give_back(context, &ids).await;
        }
    }
}

/// Whether a run left leases behind.
enum Leases {
    /// Every target's outcome was recorded, which cleared its lease.
    Cleared,
    /// Some targets may still be leased to this worker.
    MayBeHeld,
}

/// Gives the leases on `ids` back; a no-op for targets whose outcome was recorded.
async fn give_back(context: &EngineContext, ids: &[Uuid]) {
    lifecycle::release_leases::<promotion_target::Entity>(
        &context.db,
        ids,
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
            let kept = lifecycle::renew_lease::<E>(
                &context.db,
                id,
                &settings.worker_id,
                settings.lease_ttl,
            )
            .await;
            crate::metrics::record_lease_renewal(kept);
            if !kept {
                tracing::warn!(%id, "lost the lease on running work");
                return;
            }
        }
    })
}

async fn drive(
    context: &Arc<EngineContext>,
    targets: Vec<promotion_target::Model>,
) -> Result<Leases> {
    let Some(promotion_id) = targets.first().map(|target| target.promotion_id) else {
        return Ok(Leases::Cleared);
    };
    if context.deployer.deploys_within_the_database() {
        return run_in_one_transaction(context, targets).await;
    }
    let (subject, apps) = lifecycle::load_subject(&context.db, promotion_id, &targets).await?;
    let subject = Arc::new(subject);
    let worker = context.settings.worker_id.as_str();

    // Steps 1 and 2, together: pending → running, and each target's release, exactly once
    // (unique on promotion_target_id).
    let claimed = subject.claim(targets.clone(), &apps)?;
    let started = std::time::Instant::now();
    let mut tx = Transaction::begin(&context.db, &context.hub).await?;
    let releases = lifecycle::prepare_targets(&mut tx, worker, claimed).await?;
    tx.commit().await?;
    tracing::debug!(
        %promotion_id,
        targets = releases.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "targets started with their releases"
    );

    // Step 3: deploy every prepared target at once, unless its app was deleted or the
    // target taken away meanwhile, checked for all of them right before.
    let prepared: Vec<Uuid> = targets
        .iter()
        .zip(&releases)
        .filter(|(_, release)| release.is_some())
        .map(|(target, _)| target.id)
        .collect();
    let deployable = lifecycle::deployable_targets(&context.db, &prepared, worker).await?;
    let mut deploys = JoinSet::new();
    for (target, release) in targets.into_iter().zip(releases) {
        let Some(release) = release else { continue };
        if !deployable.contains(&target.id) {
            continue;
        }
        let app = apps[&target.app_id].clone();
        let context = Arc::clone(context);
        let subject = Arc::clone(&subject);
        deploys.spawn(async move {
            let outcome = deploy(&context, &subject, &target, &app, &release).await;
            (target, app, release, outcome)
        });
    }

    // Step 4: the outcomes, with the releases' states, and the promotion's end. Outcomes
    // that arrive while one batch commits are recorded together in the next.
    while let Some(first) = deploys.join_next().await {
        let mut done = vec![first];
        while let Some(more) = deploys.try_join_next() {
            done.push(more);
        }
        let mut deployed = Vec::new();
        for finished in &done {
            match finished {
                Ok((target, app, release, outcome)) => deployed.push(DeployedTarget {
                    target,
                    app,
                    release,
                    outcome: outcome.clone(),
                }),
                Err(error) => tracing::warn!(%error, "a deploy task ended abnormally"),
            }
        }
        if deployed.is_empty() {
            continue;
        }
        let ids: Vec<Uuid> = deployed.iter().map(|done| done.target.id).collect();
        let started = std::time::Instant::now();
        let tx = Transaction::begin(&context.db, &context.hub).await?;
        let recorded = record_and_commit(context, tx, promotion_id, deployed, started).await?;
        for (id, recorded) in ids.into_iter().zip(recorded) {
            if !recorded {
                tracing::info!(
                    target = %id,
                    "the target was canceled or taken over while deploying; its outcome is not recorded"
                );
            }
        }
    }
    Ok(Leases::MayBeHeld)
}

/// All steps for a deployer that works within the database: start, releases, deploy and
/// outcomes commit together, so a crash leaves the batch as it was claimed. Fresh targets
/// go straight from `pending` to their outcomes; others (started before a crash, say) take
/// the steps one by one, still in this one transaction.
async fn run_in_one_transaction(
    context: &Arc<EngineContext>,
    targets: Vec<promotion_target::Model>,
) -> Result<Leases> {
    let worker = context.settings.worker_id.as_str();
    let started = std::time::Instant::now();
    let mut tx = Transaction::begin(&context.db, &context.hub).await?;
    let (subject, claimed) = match lifecycle::start_at_once(&mut tx, worker, targets).await? {
        AtOnce::Started(batch) => {
            let promotion_id = batch.subject.promotion_id;
            let mut outcomes = Vec::with_capacity(batch.started.len());
            for (c, release) in &batch.started {
                outcomes.push(deploy(context, &batch.subject, &c.target, &c.app, release).await);
            }
            lifecycle::finish_at_once(&mut tx, worker, batch, outcomes).await?;
            tx.commit().await?;
            tracing::debug!(
                %promotion_id,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "targets run in one transaction and committed"
            );
            return Ok(Leases::Cleared);
        }
        AtOnce::StepByStep { subject, claimed } => (subject, claimed),
    };
    let runs: Vec<(promotion_target::Model, ResourceRef)> = claimed
        .iter()
        .map(|c| (c.target.clone(), c.app.clone()))
        .collect();
    let releases = lifecycle::prepare_targets(&mut tx, worker, claimed).await?;
    let mut done = Vec::new();
    for ((target, app), release) in runs.iter().zip(releases) {
        let Some(release) = release else { continue };
        let outcome = deploy(context, &subject, target, app, &release).await;
        done.push((target, app, release, outcome));
    }
    let deployed = done
        .iter()
        .map(|(target, app, release, outcome)| DeployedTarget {
            target,
            app,
            release,
            outcome: outcome.clone(),
        })
        .collect();
    record_and_commit(context, tx, subject.promotion_id, deployed, started).await?;
    Ok(Leases::MayBeHeld)
}

/// Records the outcomes and commits the transaction, the last step of both paths. Returns,
/// per outcome, whether it was recorded.
async fn record_and_commit(
    context: &EngineContext,
    mut tx: Transaction,
    promotion_id: Uuid,
    deployed: Vec<DeployedTarget<'_>>,
    started: std::time::Instant,
) -> Result<Vec<bool>> {
    let worker = context.settings.worker_id.as_str();
    let recorded = lifecycle::record_outcomes(&mut tx, worker, promotion_id, deployed).await?;
    tx.commit().await?;
    tracing::debug!(
        %promotion_id,
        targets = recorded.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "outcomes recorded and committed"
    );
    Ok(recorded)
}

/// Deploys one target's release. A retry after a crash may deploy the same release again;
/// the request carries the release id so that deployers can recognise the repeat.
async fn deploy(
    context: &EngineContext,
    subject: &Subject,
    target: &promotion_target::Model,
    app: &ResourceRef,
    release: &release::Model,
) -> DeployOutcome {
    let request = DeployRequest {
        cause: DeployCause::Promotion {
            promotion_id: subject.promotion_id,
            target_id: target.id,
            pipeline_id: subject.pipeline.id,
            pipeline_name: subject.pipeline.name.clone(),
        },
        app_id: app.id,
        app_name: app.name.clone(),
        release_id: release.id,
        release_version: release.version,
        image: release.image.clone(),
        source_app_id: subject.source_app.id,
        source_app_name: subject.source_app.name.clone(),
        source_release_id: subject.source_release.id,
    };
    super::deploy(context, &request).await
}
