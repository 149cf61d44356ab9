//! Verification after deploy, driven from the database: a pass over the verifying targets
//! decides each one its release's statuses (or its stored deadline) decide, runs the
//! built-in HTTP checks of those that need them, and deploys the rollbacks that failed
//! verifications left. A pass runs when a status is posted or a target begins verifying on
//! this process, and otherwise at the engine's poll interval, so that any replica decides
//! a deadline within a poll of its passing, including one that never saw the promotion.
//! Deciding is a guarded transition, so a target is decided once however many replicas
//! race; probing and deploying hold the target's lease.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinSet};
use uuid::Uuid;

use super::{run::keep_lease, EngineContext};
use sea_orm::TransactionTrait;

use crate::{
    audit::{Actor, AuditEntry},
    deploy::{DeployCause, DeployRequest},
    domain::{
        status::StatusState,
        verification::{
            decide, CheckResult, HttpCheck, SeenStatus, Verdict, Verification, VerificationState,
            HOSTS_SETTING, MEASUREMENT_TIMEOUT_SECONDS,
        },
    },
    error::Result,
    lifecycle::{self, RollbackToDeploy, Transaction},
    read_model::Key,
    store::{
        self,
        entities::{promotion_target, release_status},
        leases,
    },
    views::stored_verification,
};

/// The most of a probed answer's body that is read; the rest is not waited for.
const PROBE_BODY_LIMIT: usize = 64 * 1024;

/// Runs verification passes until `stop` turns true; then stops its probes, whose leases
/// expire so that another process resumes them.
pub(crate) async fn run_verifications(
    context: Arc<EngineContext>,
    mut stop: watch::Receiver<bool>,
) {
    let client = match probe_client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the HTTP client of verification checks");
            return;
        }
    };
    let mut work = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        while work.try_join_next().is_some() {}
        if let Err(error) = pass(&context, &client, &mut work).await {
            tracing::warn!(error = ?error, "a verification pass failed; the next one retries");
        }
        tokio::select! {
            _ = context.hub.verification_signalled() => {}
            _ = tokio::time::sleep(context.settings.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
    work.abort_all();
}

fn probe_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(MEASUREMENT_TIMEOUT_SECONDS))
        .connect_timeout(Duration::from_secs(MEASUREMENT_TIMEOUT_SECONDS))
        .no_proxy()
        .build()
}

fn lease_is_free(target: &promotion_target::Model, now: chrono::DateTime<chrono::Utc>) -> bool {
    target.lease_expires_at.is_none_or(|expires| expires < now)
}

/// One pass over every verifying target.
async fn pass(
    context: &Arc<EngineContext>,
    client: &reqwest::Client,
    work: &mut JoinSet<()>,
) -> Result<()> {
    let db = &context.db;
    let verifying = store::verifications::verifying_targets(db).await?;
    if verifying.is_empty() {
        return Ok(());
    }
    let now = store::now();
    let releases: Vec<Uuid> = verifying.iter().filter_map(|t| t.release_id).collect();
    let mut statuses: HashMap<Uuid, HashMap<String, SeenStatus>> = HashMap::new();
    for status in store::verifications::statuses_of_releases(db, &releases).await? {
        let Ok(state) = StatusState::parse("state", &status.state) else {
            continue;
        };
        statuses.entry(status.release_id).or_default().insert(
            status.context,
            SeenStatus {
                state,
                description: status.description,
            },
        );
    }
    let no_statuses = HashMap::new();
    for target in verifying {
        let state = target
            .verification_state
            .as_deref()
            .and_then(VerificationState::parse);
        let Some(verification) = stored_verification(target.verification.as_deref(), target.id)
        else {
            continue;
        };
        match state {
            Some(VerificationState::Pending) => {
                let seen = target
                    .release_id
                    .and_then(|release| statuses.get(&release))
                    .unwrap_or(&no_statuses);
                let deadline_passed = target.verification_deadline.is_some_and(|d| d <= now);
                match decide(&verification, seen, deadline_passed) {
                    Verdict::Undecided(results) => {
                        show_results(context, &target, &results).await?;
                        let unprobed: Vec<HttpCheck> = verification
                            .http_checks
                            .iter()
                            .filter(|check| !seen.contains_key(&check.context()))
                            .cloned()
                            .collect();
                        if !unprobed.is_empty() && lease_is_free(&target, now) {
                            start_probes(context, client, work, target, verification, unprobed)
                                .await?;
                        }
                    }
                    verdict => {
                        let mut tx = Transaction::begin(db, &context.hub).await?;
                        let decided =
                            lifecycle::record_verdict(&mut tx, target.id, verdict).await?;
                        tx.commit().await?;
                        if decided {
                            context
                                .hub
                                .read_model
                                .changed(&[Key::App(target.app_id)])
                                .await;
                        }
                    }
                }
            }
            Some(VerificationState::Failed) if lease_is_free(&target, now) => {
                if let Some(rollback) = lifecycle::rollback_to_deploy(db, &target).await? {
                    start_rollback(context, work, rollback).await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Writes an undecided verification's results onto its target when they changed, so that
/// the target shows each status as it arrives.
async fn show_results(
    context: &EngineContext,
    target: &promotion_target::Model,
    results: &[CheckResult],
) -> Result<()> {
    let shown = serde_json::to_string(results)
        .map_err(|error| crate::error::Error::Internal(error.to_string()))?;
    if target.verification_results.as_deref() == Some(shown.as_str()) {
        return Ok(());
    }
    if store::verifications::show_pending_results(&context.db, target.id, shown).await? {
        let hub = &context.hub;
        hub.read_model.promotion_changed(target.promotion_id);
        store::announce_promotion_changed(&context.db, target.promotion_id, hub.origin()).await?;
    }
    Ok(())
}

/// Claims the target and runs its unprobed HTTP checks under the lease.
async fn start_probes(
    context: &Arc<EngineContext>,
    client: &reqwest::Client,
    work: &mut JoinSet<()>,
    target: promotion_target::Model,
    verification: Verification,
    checks: Vec<HttpCheck>,
) -> Result<()> {
    let worker = &context.settings.worker_id;
    let ttl = context.settings.lease_ttl;
    if !store::verifications::try_claim_verifying(&context.db, target.id, worker, ttl).await? {
        return Ok(());
    }
    let context = Arc::clone(context);
    let client = client.clone();
    work.spawn(async move {
        let heartbeat = keep_lease::<promotion_target::Entity>(&context, target.id);
        let mut probes = JoinSet::new();
        for check in checks {
            let context = Arc::clone(&context);
            let client = client.clone();
            let target = target.clone();
            let verification = verification.clone();
            probes.spawn(async move {
                if let Err(error) = probe(&context, &client, &target, &verification, check).await
                {
                    tracing::warn!(target = %target.id, error = ?error, "an HTTP check failed to run; it will be retried");
                }
            });
        }
        while probes.join_next().await.is_some() {}
        heartbeat.abort();
        leases::release_leases::<promotion_target::Entity>(
            &context.db,
            &[target.id],
            &context.settings.worker_id,
        )
        .await;
        context.hub.signal_verification();
    });
    Ok(())
}

/// Whether this worker still holds the target's lease while its verification is pending:
/// a decision (or a lost lease) stops the probes.
async fn still_probing(context: &EngineContext, target_id: Uuid) -> Result<bool> {
    Ok(store::targets::target_by_id(&context.db, target_id)
        .await?
        .is_some_and(|target| {
            target.status == crate::domain::promotion::TargetStatus::Verifying.as_str()
                && target.verification_state.as_deref() == Some(VerificationState::Pending.as_str())
                && target.lease_owner.as_deref() == Some(context.settings.worker_id.as_str())
        }))
}

/// One measurement's answer, in words, and whether it succeeded.
async fn measure(context: &EngineContext, client: &reqwest::Client, url: &str) -> (bool, String) {
    // The allowlist is checked again before every request: an operator who narrowed it
    // stops checks already configured.
    if let Err(refused) = context.settings.verification_hosts.check_url("url", url) {
        tracing::warn!(%url, reason = %refused.reason, "an HTTP check's host is no longer allowed");
        return (false, format!("host not allowed by {HOSTS_SETTING}"));
    }
    let response = match client.get(url).send().await {
        Ok(response) => response,
        Err(error) if error.is_timeout() => {
            return (
                false,
                format!("no answer within {MEASUREMENT_TIMEOUT_SECONDS} s"),
            )
        }
        Err(error) if error.is_connect() => return (false, "connection failed".to_owned()),
        Err(_) => return (false, "request failed".to_owned()),
    };
    let status = response.status();
    let words = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
    .trim()
    .to_owned();
    if status.is_redirection() {
        return (false, format!("{words} (redirects are not followed)"));
    }
    // Read a bounded part of the body, so that a slow or huge answer cannot hold the probe.
    let mut response = response;
    let mut read = 0usize;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                if read >= PROBE_BODY_LIMIT {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => return (false, format!("{words}; the body could not be read")),
        }
    }
    (status.is_success(), words)
}

/// Runs one HTTP check and posts its result as the release status `http/<name>`.
async fn probe(
    context: &EngineContext,
    client: &reqwest::Client,
    target: &promotion_target::Model,
    verification: &Verification,
    check: HttpCheck,
) -> Result<()> {
    let Some(release_id) = target.release_id else {
        return Ok(());
    };
    let (mut succeeded, mut failed, mut last) = (0u32, 0u32, String::new());
    for measurement in 0..check.count {
        if measurement > 0 {
            tokio::time::sleep(Duration::from_secs(u64::from(check.interval_seconds))).await;
        }
        if !still_probing(context, target.id).await? {
            return Ok(());
        }
        let (ok, words) = measure(context, client, &check.url).await;
        if ok {
            succeeded += 1;
        } else {
            failed += 1;
        }
        last = words;
        // Once more measurements failed than the check allows, it cannot pass.
        if failed > check.failure_limit {
            break;
        }
    }
    if !still_probing(context, target.id).await? {
        return Ok(());
    }
    let passed = check.passes(succeeded, failed);
    let made = succeeded + failed;
    let mut description = format!("{succeeded} of {made} succeeded; last: {last}");
    if made < check.count {
        description.push_str(&format!(" (stopped after {made} of {})", check.count));
    }
    let now = store::now();
    let row = release_status::Model {
        id: Uuid::new_v4(),
        release_id,
        context: check.context(),
        name: format!("HTTP check {}", check.name),
        state: if passed {
            StatusState::Success
        } else {
            StatusState::Failure
        }
        .as_str()
        .to_owned(),
        description: description.chars().take(900).collect(),
        target_url: check.url.chars().take(2000).collect(),
        image_url: String::new(),
        created_at: now,
        updated_at: now,
    };
    let txn = context.db.begin().await?;
    match store::release_statuses::insert_status(&txn, row).await {
        Ok(status) => {
            let owner = store::apps::app_by_id(&txn, target.app_id).await?;
            let release = store::releases::release_by_id(&txn, release_id).await?;
            if let (Some(owner), Some(release)) = (owner, release) {
                AuditEntry::about_status(&txn, "status.create", &owner, &release, &status)
                    .await?
                    .record(&txn, &Actor::system())
                    .await?;
            }
            txn.commit().await?;
        }
        Err(error) if store::is_unique_violation(&error) => {}
        Err(error) => return Err(error.into()),
    }
    tracing::debug!(target = %target.id, check = %check.name, passed, timeout = verification.timeout_seconds, "HTTP check posted");
    context
        .hub
        .read_model
        .changed(&[Key::App(target.app_id)])
        .await;
    context.hub.signal_verification();
    Ok(())
}

/// Claims the target and deploys the rollback its failed verification left.
async fn start_rollback(
    context: &Arc<EngineContext>,
    work: &mut JoinSet<()>,
    rollback: RollbackToDeploy,
) -> Result<()> {
    let worker = &context.settings.worker_id;
    let ttl = context.settings.lease_ttl;
    let id = rollback.target.id;
    if !store::verifications::try_claim_verifying(&context.db, id, worker, ttl).await? {
        return Ok(());
    }
    let context = Arc::clone(context);
    work.spawn(async move {
        let heartbeat = keep_lease::<promotion_target::Entity>(&context, id);
        if let Err(error) = deploy_rollback(&context, rollback).await {
            tracing::warn!(target = %id, error = ?error, "a verification's rollback failed to run; it will be retried");
        }
        heartbeat.abort();
        leases::release_leases::<promotion_target::Entity>(
            &context.db,
            &[id],
            &context.settings.worker_id,
        )
        .await;
    });
    Ok(())
}

async fn deploy_rollback(context: &EngineContext, rollback: RollbackToDeploy) -> Result<()> {
    let RollbackToDeploy {
        target,
        app,
        release,
    } = rollback;
    let db = &context.db;
    if store::apps::live_apps(db, &[app.id]).await?.is_empty() {
        return Ok(());
    }
    let promotion = store::promotions::promotion_by_id(db, target.promotion_id).await?;
    let Some(promotion) = promotion else {
        return Ok(());
    };
    let pipeline_name = store::pipelines::pipelines_by_id(db, vec![promotion.pipeline_id])
        .await?
        .into_iter()
        .next()
        .map(|pipeline| pipeline.name)
        .unwrap_or_default();
    // The release it repeats is the app's current one now that the failed one is not.
    let repeated = store::releases::current_releases_of_apps(db, &[app.id])
        .await?
        .into_iter()
        .next()
        .map(|current| current.id)
        .unwrap_or(release.id);
    let request = DeployRequest {
        cause: DeployCause::VerificationRollback {
            promotion_id: promotion.id,
            target_id: target.id,
            pipeline_id: promotion.pipeline_id,
            pipeline_name,
        },
        app_id: app.id,
        app_name: app.name.clone(),
        release_id: release.id,
        release_version: release.version,
        image: release.image.clone(),
        source_app_id: app.id,
        source_app_name: app.name.clone(),
        source_release_id: repeated,
    };
    let outcome = super::deploy(context, &request).await;
    let mut tx = Transaction::begin(db, &context.hub).await?;
    let recorded =
        lifecycle::record_rollback_deploy(&mut tx, target.id, &context.settings.worker_id, outcome)
            .await?;
    tx.commit().await?;
    if recorded {
        context.hub.read_model.changed(&[Key::App(app.id)]).await;
    }
    Ok(())
}
