//! Running claimed targets of one promotion: start them and link their releases, deploy
//! each, record the outcomes. Each step is a lifecycle transition guarded by the state it
//! expects, so a step that was already done (before a crash) is skipped on the retry.
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
    lifecycle::{DeployOutcome, OutcomeRecorded, Run, Subject, TargetBatch, Transaction},
    store::entities::promotion_target,
    store::leases::{self, LeasedWork},
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
    leases::release_leases::<promotion_target::Entity>(
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
            let kept =
                leases::renew_lease::<E>(&context.db, id, &settings.worker_id, settings.lease_ttl)
                    .await;
            crate::metrics::record_lease_renewal(kept);
            if !kept {
                tracing::warn!(%id, "lost the lease on running work");
                return;
            }
        }
    })
}

/// Starts the targets, deploys them, and records their outcomes. A deployer that reaches
/// another system gets the start committed before it deploys, and each group of outcomes
/// that arrive together is recorded in a transaction of its own. For a deployer that works
/// within the database, nothing is committed in between: start, deploys and outcomes
/// commit together, or the batch runs again as it was claimed.
async fn drive(
    context: &Arc<EngineContext>,
    targets: Vec<promotion_target::Model>,
) -> Result<Leases> {
    let Some(promotion_id) = targets.first().map(|target| target.promotion_id) else {
        return Ok(Leases::Cleared);
    };
    let worker = context.settings.worker_id.as_str();
    let started = std::time::Instant::now();
    let mut tx = Transaction::begin(&context.db, &context.hub).await?;
    let mut batch = TargetBatch::lock_to_start(&mut tx, worker, &targets).await?;
    let runs = batch.start(&mut tx).await?;
    let subject = Arc::new(batch.subject.clone());

    if context.deployer.deploys_within_the_database() {
        // Every claimed target deployed and recorded: each outcome gave its lease back.
        let every_claim_ran = runs.len() == targets.len();
        let mut outcomes = Vec::with_capacity(runs.len());
        for run in runs {
            let outcome = deploy(context, &subject, &run).await;
            outcomes.push((run, outcome));
        }
        let recorded = batch.record_outcomes(outcomes)?;
        batch.write(&mut tx).await?;
        tx.commit().await?;
        tracing::debug!(
            %promotion_id,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "targets run in one transaction and committed"
        );
        return Ok(
            if every_claim_ran
                && recorded
                    .iter()
                    .all(|done| *done == OutcomeRecorded::Recorded)
            {
                Leases::Cleared
            } else {
                Leases::MayBeHeld
            },
        );
    }

    batch.write(&mut tx).await?;
    tx.commit().await?;
    tracing::debug!(
        %promotion_id,
        targets = runs.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "targets started with their releases"
    );

    // Deploy every started target at once, unless its app was deleted or the target taken
    // away meanwhile, checked for all of them right before.
    let started_ids: Vec<Uuid> = runs.iter().map(|run| run.target.id).collect();
    let deployable = leases::deployable_targets(&context.db, &started_ids, worker).await?;
    let mut deploys = JoinSet::new();
    for run in runs {
        if !deployable.contains(&run.target.id) {
            continue;
        }
        let context = Arc::clone(context);
        let subject = Arc::clone(&subject);
        deploys.spawn(async move {
            let outcome = deploy(&context, &subject, &run).await;
            (run, outcome)
        });
    }

    // The outcomes, with the releases' states, and the promotion's end. Outcomes that
    // arrive while one batch commits are recorded together in the next.
    while let Some(first) = deploys.join_next().await {
        let mut done = vec![first];
        while let Some(more) = deploys.try_join_next() {
            done.push(more);
        }
        let mut outcomes = Vec::new();
        for finished in done {
            match finished {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => tracing::warn!(%error, "a deploy task ended abnormally"),
            }
        }
        if outcomes.is_empty() {
            continue;
        }
        let ids: Vec<Uuid> = outcomes.iter().map(|(run, _)| run.target.id).collect();
        let started = std::time::Instant::now();
        let mut tx = Transaction::begin(&context.db, &context.hub).await?;
        let mut batch = TargetBatch::lock_to_record(&mut tx, worker, promotion_id, &ids).await?;
        let recorded = batch.record_outcomes(outcomes)?;
        batch.write(&mut tx).await?;
        tx.commit().await?;
        tracing::debug!(
            %promotion_id,
            targets = recorded.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "outcomes recorded and committed"
        );
        for (id, recorded) in ids.into_iter().zip(recorded) {
            match recorded {
                OutcomeRecorded::Recorded => {}
                OutcomeRecorded::Canceled => tracing::info!(
                    target = %id,
                    "the target was canceled while it deployed; the cancel stands and the deploy's outcome is not recorded"
                ),
                OutcomeRecorded::TakenOver => tracing::warn!(
                    target = %id,
                    "this process's lease on the target ran out while it deployed, and the target moved on; the deploy's outcome is not recorded"
                ),
            }
        }
    }
    Ok(Leases::MayBeHeld)
}

/// Deploys one target's release. A retry after a crash may deploy the same release again;
/// the request carries the release id so that deployers can recognise the repeat.
async fn deploy(context: &EngineContext, subject: &Subject, run: &Run) -> DeployOutcome {
    let Run {
        target,
        app,
        release,
    } = run;
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
