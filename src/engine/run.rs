//! Running claimed targets of one promotion: start them and link their releases, deploy
//! each, record the outcomes. Each step is a lifecycle transition committed before the
//! next begins, so a step that was already done (before a crash) is skipped on the retry.
//!
//! Targets of one promotion move together: all of them start in one transaction, and the
//! outcomes that arrive together are recorded in one. Every transition of a promotion
//! holds its row lock until it commits, so fewer, larger transactions are what lets a
//! promotion to many apps finish nearly as fast as one to a single app.

use std::{collections::HashMap, sync::Arc};

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::EngineContext;
use crate::{
    deploy::{DeployCause, DeployRequest},
    domain::status::ReleaseState,
    error::{Error, Result},
    lifecycle::{
        self, AtOnce, ClaimedTarget, DeployOutcome, DeployedTarget, LeasedWork, Transaction,
    },
    store::{
        entities::{promotion_target, release},
        NewRelease,
    },
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

/// What the steps need to know of the promotion, loaded once for all its targets.
struct Subject {
    promotion_id: Uuid,
    pipeline: ResourceRef,
    source_app: ResourceRef,
    source_release: SourceRelease,
}

struct SourceRelease {
    id: Uuid,
    version: i64,
    image: String,
}

#[derive(FromQueryResult)]
struct SubjectRow {
    pipeline_id: Uuid,
    pipeline_name: String,
    source_app_id: Uuid,
    source_app_name: String,
    source_release_id: Uuid,
    source_release_version: i64,
    source_release_image: String,
    target_app_id: Uuid,
    target_app_name: String,
}

/// The promotion's pipeline, source app and source release, and the apps of `targets`,
/// in one query (deleted ones included: a promotion under way keeps its names).
async fn load_subject(
    context: &EngineContext,
    promotion_id: Uuid,
    targets: &[promotion_target::Model],
) -> Result<(Subject, HashMap<Uuid, ResourceRef>)> {
    let backend = context.db.get_database_backend();
    let placeholder = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    };
    let target_ids: Vec<String> = (0..targets.len()).map(|n| placeholder(n + 2)).collect();
    let sql = format!(
        "SELECT p.id AS pipeline_id, p.name AS pipeline_name, \
         a.id AS source_app_id, a.name AS source_app_name, \
         r.id AS source_release_id, r.version AS source_release_version, \
         r.image AS source_release_image, ta.id AS target_app_id, ta.name AS target_app_name \
         FROM promotions pr \
         JOIN pipelines p ON p.id = pr.pipeline_id \
         JOIN apps a ON a.id = pr.source_app_id \
         JOIN releases r ON r.id = pr.source_release_id \
         JOIN promotion_targets t ON t.promotion_id = pr.id \
         JOIN apps ta ON ta.id = t.app_id \
         WHERE pr.id = {} AND t.id IN ({})",
        placeholder(1),
        target_ids.join(", ")
    );
    let mut values: Vec<sea_orm::Value> = vec![promotion_id.into()];
    values.extend(targets.iter().map(|target| sea_orm::Value::from(target.id)));
    let rows = SubjectRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
        .all(&context.db)
        .await?;
    let Some(first) = rows.first() else {
        return Err(Error::Internal(format!(
            "promotion {promotion_id}: it, its pipeline, its source app, its release or its targets are missing"
        )));
    };
    let subject = Subject {
        promotion_id,
        pipeline: ResourceRef {
            id: first.pipeline_id,
            name: first.pipeline_name.clone(),
        },
        source_app: ResourceRef {
            id: first.source_app_id,
            name: first.source_app_name.clone(),
        },
        source_release: SourceRelease {
            id: first.source_release_id,
            version: first.source_release_version,
            image: first.source_release_image.clone(),
        },
    };
    let apps: HashMap<Uuid, ResourceRef> = rows
        .into_iter()
        .map(|row| {
            (
                row.target_app_id,
                ResourceRef {
                    id: row.target_app_id,
                    name: row.target_app_name,
                },
            )
        })
        .collect();
    match targets
        .iter()
        .find(|target| !apps.contains_key(&target.app_id))
    {
        Some(target) => Err(Error::Internal(format!(
            "target {}: its app is missing",
            target.id
        ))),
        None => Ok((subject, apps)),
    }
}

async fn drive(
    context: &Arc<EngineContext>,
    targets: Vec<promotion_target::Model>,
) -> Result<Leases> {
    let Some(promotion_id) = targets.first().map(|target| target.promotion_id) else {
        return Ok(Leases::Cleared);
    };
    let (subject, apps) = load_subject(context, promotion_id, &targets).await?;
    let subject = Arc::new(subject);
    let worker = context.settings.worker_id.as_str();

    // Steps 1 and 2, together: pending → running, and each target's release, exactly once
    // (unique on promotion_target_id).
    let claimed = targets
        .iter()
        .map(|target| ClaimedTarget {
            target: target.clone(),
            app: apps[&target.app_id].clone(),
            new_release: new_release(&subject, &apps[&target.app_id], target),
        })
        .collect();
    if context.deployer.deploys_within_the_database() {
        return run_in_one_transaction(context, &subject, targets, &apps, claimed).await;
    }
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
    subject: &Subject,
    targets: Vec<promotion_target::Model>,
    apps: &HashMap<Uuid, ResourceRef>,
    claimed: Vec<ClaimedTarget>,
) -> Result<Leases> {
    let worker = context.settings.worker_id.as_str();
    let promotion_id = subject.promotion_id;
    let started = std::time::Instant::now();
    let mut tx = Transaction::begin(&context.db, &context.hub).await?;
    let claimed = match lifecycle::start_at_once(&mut tx, worker, claimed).await? {
        AtOnce::Started(batch) => {
            let mut outcomes = Vec::with_capacity(batch.started.len());
            for (c, release) in &batch.started {
                outcomes.push(deploy(context, subject, &c.target, &c.app, release).await);
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
        AtOnce::StepByStep(claimed) => claimed,
    };
    let releases = lifecycle::prepare_targets(&mut tx, worker, claimed).await?;
    let mut done = Vec::new();
    for (target, release) in targets.iter().zip(releases) {
        let Some(release) = release else { continue };
        let app = &apps[&target.app_id];
        let outcome = deploy(context, subject, target, app, &release).await;
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
    record_and_commit(context, tx, promotion_id, deployed, started).await?;
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

fn new_release(
    subject: &Subject,
    app: &ResourceRef,
    target: &promotion_target::Model,
) -> NewRelease {
    NewRelease {
        app_id: app.id,
        image: subject.source_release.image.clone(),
        description: format!(
            "promoted from '{}' v{}",
            subject.source_app.name, subject.source_release.version
        ),
        status: ReleaseState::Pending.as_str(),
        promoted_from_app_id: Some(subject.source_app.id),
        promoted_from_release_id: Some(subject.source_release.id),
        promoted_from_promotion_id: Some(subject.promotion_id),
        promotion_target_id: Some(target.id),
    }
}
