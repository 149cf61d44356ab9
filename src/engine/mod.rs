//! The promotion engine: stores the auto-promotions that triggers made eligible, claims
//! targets from the database with expiring leases, runs each one (release, deploy,
//! outcome) writing every step before the next, and finishes promotions. Nothing lives only in memory, so a restarted process, or another one on the
//! same PostgreSQL, picks up where a dead one stopped.

mod auto;
mod claim;
mod freezes;
mod rollback;
mod run;
mod verify;

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use tokio::{
    sync::{watch, Semaphore},
    task::JoinSet,
};

use crate::{
    deploy::Deployer,
    domain::verification::AllowedHosts,
    lifecycle::DeployOutcome,
    progress::EventHub,
    store::entities::{promotion_target, rollback as rollback_row},
    store::leases::LeasedWork,
};

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Identifies this process in leases.
    pub worker_id: String,
    /// Targets run at the same time, across all promotions.
    pub max_parallel_targets: usize,
    /// How long a claim holds without renewal; a dead worker's targets are free after it.
    pub lease_ttl: Duration,
    /// How often the engine looks for work it was not told about (other processes, expired
    /// leases, queued targets).
    pub poll_interval: Duration,
    /// How long running targets may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// The hosts verifications' HTTP checks may probe (`--verification-hosts`).
    pub verification_hosts: AllowedHosts,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            worker_id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            max_parallel_targets: 8,
            lease_ttl: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(20),
            verification_hosts: AllowedHosts::default(),
        }
    }
}

/// Shared by the engine's tasks.
pub(crate) struct EngineContext {
    pub db: DatabaseConnection,
    pub hub: Arc<EventHub>,
    pub deployer: Arc<dyn Deployer>,
    pub settings: EngineSettings,
}

/// Deploys through the configured deployer, counting attempts and failures.
async fn deploy(context: &EngineContext, request: &crate::deploy::DeployRequest) -> DeployOutcome {
    let deployer = context.deployer.name();
    crate::metrics::record_deploy_attempt(deployer);
    match context.deployer.deploy(request).await {
        Ok(()) => DeployOutcome::Deployed,
        Err(error) => {
            crate::metrics::record_deploy_failure(deployer);
            DeployOutcome::Failed(error.0)
        }
    }
}

/// Runs claimed work on free slots, one per item, or gives the leases back when too few
/// are free.
async fn spawn_work<E, F>(
    context: &Arc<EngineContext>,
    slots: &Arc<Semaphore>,
    running: &mut JoinSet<()>,
    ids: &[uuid::Uuid],
    work: impl FnOnce(Arc<EngineContext>) -> F,
) where
    E: LeasedWork,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let wanted = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    let Ok(permit) = Arc::clone(slots).try_acquire_many_owned(wanted) else {
        crate::store::leases::release_leases::<E>(&context.db, ids, &context.settings.worker_id)
            .await;
        return;
    };
    let future = work(Arc::clone(context));
    let context = Arc::clone(context);
    running.spawn(async move {
        future.await;
        drop(permit);
        context.hub.signal_work();
    });
}

pub struct Engine {
    context: Arc<EngineContext>,
}

impl Engine {
    pub fn new(
        db: DatabaseConnection,
        hub: Arc<EventHub>,
        deployer: Arc<dyn Deployer>,
        settings: EngineSettings,
    ) -> Self {
        Self {
            context: Arc::new(EngineContext {
                db,
                hub,
                deployer,
                settings,
            }),
        }
    }

    /// Claims and runs targets until `stop` turns true. Then it claims nothing more, lets
    /// running targets finish within the grace period, and leaves the rest (with their
    /// leases released) for the next process.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let context = self.context;
        let slots = Arc::new(Semaphore::new(context.settings.max_parallel_targets.max(1)));
        let mut running = JoinSet::new();
        let mut announcing: Option<tokio::task::JoinHandle<()>> = None;
        let mut freeze_copy = freezes::FreezeCopy::default();
        let verifications = tokio::spawn(verify::run_verifications(
            Arc::clone(&context),
            stop.clone(),
        ));
        tracing::info!(
            worker = %context.settings.worker_id,
            parallel = context.settings.max_parallel_targets,
            "promotion engine started"
        );
        loop {
            if *stop.borrow() {
                break;
            }
            while running.try_join_next().is_some() {}
            if let Err(error) = auto::evaluate_triggers(&context).await {
                tracing::warn!(error = ?error, "reading auto-promotion triggers failed");
            }
            // Nothing new starts while it is unknown what freezes hold.
            let freeze_state = match freezes::freeze_state(&context, &mut freeze_copy).await {
                Ok(state) => Some(state),
                Err(error) => {
                    tracing::warn!(error = ?error, "reading freezes failed");
                    None
                }
            };
            let frozen: Vec<(uuid::Uuid, crate::domain::stage::Stage)> = freeze_state
                .iter()
                .flat_map(|state| &state.frozen)
                .map(|(pipeline, stage)| (*pipeline, stage.stage))
                .collect();
            if slots.available_permits() > 0 && freeze_state.is_some() {
                let started = std::time::Instant::now();
                match claim::claim_targets(&context, slots.available_permits(), &frozen).await {
                    Ok(claimed) => {
                        if !claimed.is_empty() {
                            tracing::debug!(
                                targets = claimed.len(),
                                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                                "targets claimed"
                            );
                        }
                        // Targets of one promotion run together (see `run`).
                        for targets in claim::by_promotion(claimed) {
                            let ids: Vec<_> = targets.iter().map(|target| target.id).collect();
                            spawn_work::<promotion_target::Entity, _>(
                                &context,
                                &slots,
                                &mut running,
                                &ids,
                                |context| async move { run::run_targets(&context, targets).await },
                            )
                            .await;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = ?error, "claiming promotion targets failed")
                    }
                }
            }
            if slots.available_permits() > 0 && freeze_state.is_some() {
                match claim::claim_rollbacks(&context, slots.available_permits(), &frozen).await {
                    Ok(claimed) => {
                        for claimed_rollback in claimed {
                            let id = claimed_rollback.id;
                            spawn_work::<rollback_row::Entity, _>(
                                &context,
                                &slots,
                                &mut running,
                                &[id],
                                |context| async move {
                                    rollback::run_rollback(&context, claimed_rollback).await
                                },
                            )
                            .await;
                        }
                    }
                    Err(error) => tracing::warn!(error = ?error, "claiming rollbacks failed"),
                }
            }
            // Announcing waiting targets runs beside the claims, so a deep queue never
            // delays the start of work that is free.
            if announcing.as_ref().is_none_or(|task| task.is_finished()) {
                let context = Arc::clone(&context);
                let freeze_state = freeze_state.clone();
                announcing = Some(tokio::spawn(async move {
                    if let Err(error) = claim::announce_waiting(&context).await {
                        tracing::warn!(error = ?error, "announcing queued targets failed");
                    }
                    if let Some(state) = freeze_state {
                        if let Err(error) = freezes::announce_frozen(&context, &state).await {
                            tracing::warn!(error = ?error, "announcing frozen targets failed");
                        }
                    }
                }));
            }
            let pause = freezes::sleep_until_boundary(
                context.settings.poll_interval,
                freeze_state.and_then(|state| state.next_boundary),
                crate::store::now(),
            );
            tokio::select! {
                _ = context.hub.work_signalled() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
        if let Err(error) = verifications.await {
            tracing::warn!(%error, "the verification passes ended abnormally");
        }
        let grace = context.settings.shutdown_grace;
        let drained = tokio::time::timeout(grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "targets still running after the shutdown grace period; their leases will expire and another process will resume them"
            );
            running.abort_all();
        }
        tracing::info!("promotion engine stopped");
    }
}
