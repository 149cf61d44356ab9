//! A verifying target's transitions: its verdict (verifying → succeeded, or the failure,
//! which ends it `failed` or starts its rollback), and the rollback's outcome (verifying →
//! failed). Each is guarded by the verification's stored state, so that however many
//! replicas race, a target is decided once and rolled back once.

use uuid::Uuid;

use super::{
    auto_promotion::{record_triggers, Trigger},
    events::{append, finish_if_complete, EventDraft},
    lock_promotion, DeployOutcome, Transaction,
};
use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::Author,
        promotion::{EventKind, TargetStatus},
        status::ReleaseState,
        verification::{
            rollback_description, CheckResult, OnFailure, Verdict, Verification, VerificationState,
        },
    },
    error::{Error, Result},
    pipeline_events::{PipelineEventDraft, Scope},
    store::{
        self,
        entities::{promotion_target, release},
        verifications::VerificationWrite,
        NewRelease,
    },
    views::{stored_verification, ReleaseRef, ResourceRef},
};

/// A verifying target as a transition reads it under its promotion's lock.
struct Verifying {
    target: promotion_target::Model,
    app: ResourceRef,
    verification: Verification,
    release: release::Model,
}

/// Locks the target's live app, then its promotion, and reads the target: `None` when the
/// app was deleted or the target no longer verifies in `state`.
async fn lock_verifying(
    tx: &mut Transaction,
    target_id: Uuid,
    state: VerificationState,
) -> Result<Option<Verifying>> {
    let db = tx.connection();
    let Some(seen) = store::targets::target_by_id(db, target_id).await? else {
        return Ok(None);
    };
    if store::lock_live_apps_for_batch(db, &[seen.app_id])
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    lock_promotion(tx, seen.promotion_id).await?;
    let db = tx.connection();
    let Some(target) = store::targets::target_by_id(db, target_id).await? else {
        return Ok(None);
    };
    if target.status != TargetStatus::Verifying.as_str()
        || target.verification_state.as_deref() != Some(state.as_str())
    {
        return Ok(None);
    }
    let missing = |what: &str| Error::Internal(format!("verifying target {target_id}: {what}"));
    let verification = stored_verification(target.verification.as_deref(), target.id)
        .ok_or_else(|| missing("its verification is unreadable"))?;
    let release_id = target.release_id.ok_or_else(|| missing("no release"))?;
    let release = store::releases::release_by_id(db, release_id)
        .await?
        .ok_or_else(|| missing("its release is missing"))?;
    let app = store::apps::app_by_id(db, target.app_id)
        .await?
        .ok_or_else(|| missing("its app is missing"))?;
    Ok(Some(Verifying {
        app: ResourceRef {
            id: app.id,
            name: app.name,
        },
        target,
        verification,
        release,
    }))
}

fn results_json(results: &[CheckResult]) -> Result<String> {
    serde_json::to_string(results).map_err(|error| Error::Internal(error.to_string()))
}

fn release_ref(release: &release::Model) -> ReleaseRef {
    ReleaseRef {
        id: release.id,
        version: release.version,
    }
}

/// What failed, one context or check per clause: "smoke/checkout: failure (500s on /cart);
/// http/health: missing".
fn describe_failures(results: &[CheckResult]) -> String {
    results
        .iter()
        .map(CheckResult::describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Records a decided verification. Passed: the target ends `succeeded` (`target.verified`,
/// `target.succeeded`) and its release feeds auto-promotion. Failed: `target.verification_failed`,
/// then with `keep` the target ends `failed`; with `rollback` the release is marked failed
/// and the app's previous release is stored again as a pending rollback release for the
/// engine to deploy, or, when there is none, `target.rolled_back` says so and the target
/// ends `failed`. Returns whether this call decided it.
pub async fn record_verdict(
    tx: &mut Transaction,
    target_id: Uuid,
    verdict: Verdict,
) -> Result<bool> {
    let Some(verifying) = lock_verifying(tx, target_id, VerificationState::Pending).await? else {
        return Ok(false);
    };
    let Verifying {
        target,
        app,
        verification,
        release,
    } = verifying;
    let promotion_id = target.promotion_id;
    let new_release = release_ref(&release);
    match verdict {
        Verdict::Undecided(_) => Ok(false),
        Verdict::Passed(results) => {
            let write = VerificationWrite {
                status: Some(TargetStatus::Succeeded),
                from: VerificationState::Pending,
                to: VerificationState::Passed,
                results: Some(results_json(&results)?),
                error_message: None,
                rollback_release_id: None,
                held_by: None,
            };
            if !store::verifications::write_verification(tx.connection(), target_id, write).await? {
                return Ok(false);
            }
            let verified = format!(
                "release v{} verified on '{}': {}",
                release.version,
                app.name,
                results
                    .iter()
                    .map(|result| result.context.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let event = |kind, message: String| {
                EventDraft::about_target(
                    kind,
                    &target,
                    app.clone(),
                    TargetStatus::Succeeded,
                    message,
                )
                .with_release(new_release)
            };
            append(tx, promotion_id, event(EventKind::TargetVerified, verified)).await?;
            let succeeded = format!(
                "release v{} is now current on '{}'",
                release.version, app.name
            );
            append(
                tx,
                promotion_id,
                event(EventKind::TargetSucceeded, succeeded),
            )
            .await?;
            let promotion =
                store::promotions::promotion_by_id(tx.connection(), promotion_id).await?;
            let triggered_by = promotion
                .map(|p| p.triggered_by.unwrap_or(p.created_by))
                .unwrap_or_default();
            tx.wake_engine |= record_triggers(
                tx.connection(),
                vec![Trigger {
                    app_id: app.id,
                    release_id: release.id,
                    triggered_by,
                    reason: format!(
                        "release v{} verified on '{}' by promotion {promotion_id}",
                        release.version, app.name
                    ),
                }],
            )
            .await?;
            crate::metrics::record_verification("passed");
            finish_if_complete(tx, promotion_id).await?;
            Ok(true)
        }
        Verdict::Failed(results) => {
            let failures = describe_failures(&results);
            let error_message = crate::domain::bounded_message(format!(
                "verification of v{} failed: {failures}",
                release.version
            ));
            let rollback = verification.on_failure == OnFailure::Rollback;
            // With a rollback to deploy, the target keeps verifying (and its queue) until
            // the rollback's deploy has ended.
            let mut rollback_release = None;
            if rollback {
                store::releases::set_state(
                    tx.connection(),
                    release.id,
                    ReleaseState::Failed,
                    Some(ReleaseState::Succeeded),
                )
                .await?;
                let previous =
                    store::releases::current_releases_of_apps(tx.connection(), &[app.id])
                        .await?
                        .into_iter()
                        .next();
                if let Some(previous) = previous {
                    let made = store::insert_release_with_next_version(
                        tx.connection(),
                        NewRelease {
                            app_id: app.id,
                            image: previous.image.clone(),
                            description: rollback_description(previous.version, release.version),
                            status: ReleaseState::Pending.as_str(),
                            promoted_from_app_id: None,
                            promoted_from_release_id: None,
                            promoted_from_promotion_id: None,
                            promotion_target_id: None,
                            created_by_id: None,
                            created_by_email: Author::system().email,
                        },
                    )
                    .await?;
                    AuditEntry::about_release(
                        tx.connection(),
                        "release.rollback",
                        (made.id, made.version),
                        (app.id, &app.name),
                        format!(
                            "rolled {} back to v{} as v{}: verification of v{} failed",
                            app.name, previous.version, made.version, release.version
                        ),
                    )
                    .await?
                    .with("to_version", previous.version)
                    .with("image", &made.image)
                    .with("failed_release", release.id)
                    .with("promotion", promotion_id)
                    .record_in(tx, &Actor::system())
                    .await?;
                    rollback_release = Some((previous, made));
                }
            }
            let ends_now = !rollback || rollback_release.is_none();
            let write = VerificationWrite {
                status: ends_now.then_some(TargetStatus::Failed),
                from: VerificationState::Pending,
                to: VerificationState::Failed,
                results: Some(results_json(&results)?),
                error_message: Some(error_message.clone()),
                rollback_release_id: rollback_release.as_ref().map(|(_, made)| made.id),
                held_by: None,
            };
            if !store::verifications::write_verification(tx.connection(), target_id, write).await? {
                return Err(Error::Internal(format!(
                    "target {target_id} changed while its verification was decided"
                )));
            }
            crate::metrics::record_verification("failed");
            let status_now = if ends_now {
                TargetStatus::Failed
            } else {
                TargetStatus::Verifying
            };
            let event = |kind, status, message: String| {
                EventDraft::about_target(kind, &target, app.clone(), status, message)
                    .with_release(new_release)
            };
            append(
                tx,
                promotion_id,
                event(
                    EventKind::TargetVerificationFailed,
                    status_now,
                    format!(
                        "verification of v{} on '{}' failed: {failures}",
                        release.version, app.name
                    ),
                ),
            )
            .await?;
            match (&rollback_release, rollback) {
                (Some((previous, made)), _) => {
                    crate::metrics::record_rollback("verification_failed");
                    tracing::info!(
                        target = %target_id,
                        rollback_release = %made.id,
                        "verification failed; rolling back to v{}",
                        previous.version
                    );
                    tx.wake_verification = true;
                    Ok(true)
                }
                (None, true) => {
                    let message = format!(
                        "'{}' had no release before v{}; nothing was rolled back",
                        app.name, release.version
                    );
                    append(
                        tx,
                        promotion_id,
                        event(EventKind::TargetRolledBack, TargetStatus::Failed, message),
                    )
                    .await?;
                    end_failed(tx, &target, &app, new_release, error_message).await?;
                    Ok(true)
                }
                (None, false) => {
                    end_failed(tx, &target, &app, new_release, error_message).await?;
                    Ok(true)
                }
            }
        }
    }
}

/// `target.failed`, then the promotion's end if it was the last target.
async fn end_failed(
    tx: &mut Transaction,
    target: &promotion_target::Model,
    app: &ResourceRef,
    release: ReleaseRef,
    error_message: String,
) -> Result<()> {
    append(
        tx,
        target.promotion_id,
        EventDraft::about_target(
            EventKind::TargetFailed,
            target,
            app.clone(),
            TargetStatus::Failed,
            error_message,
        )
        .with_release(release),
    )
    .await?;
    finish_if_complete(tx, target.promotion_id).await
}

/// The rollback release a failed verification left to deploy, with the target.
pub struct RollbackToDeploy {
    pub target: promotion_target::Model,
    pub app: ResourceRef,
    pub release: release::Model,
}

/// The rollback a verifying target whose verification failed still has to deploy:
/// `None` when there is none (or it is no longer pending).
pub async fn rollback_to_deploy(
    db: &impl sea_orm::ConnectionTrait,
    target: &promotion_target::Model,
) -> Result<Option<RollbackToDeploy>> {
    let Some(release_id) = target.rollback_release_id else {
        return Ok(None);
    };
    let Some(release) = store::releases::release_by_id(db, release_id).await? else {
        return Ok(None);
    };
    if release.status != ReleaseState::Pending.as_str() {
        return Ok(None);
    }
    let Some(app) = store::apps::app_by_id(db, target.app_id).await? else {
        return Ok(None);
    };
    Ok(Some(RollbackToDeploy {
        target: target.clone(),
        app: ResourceRef {
            id: app.id,
            name: app.name,
        },
        release,
    }))
}

/// Records the rollback's deploy: its release succeeds (and becomes current) or fails,
/// `target.rolled_back` says which, and the target ends `failed`. Only while `worker`
/// holds the target's lease. Returns whether it was recorded.
pub async fn record_rollback_deploy(
    tx: &mut Transaction,
    target_id: Uuid,
    worker: &str,
    outcome: DeployOutcome,
) -> Result<bool> {
    let Some(verifying) = lock_verifying(tx, target_id, VerificationState::Failed).await? else {
        return Ok(false);
    };
    let Verifying {
        target,
        app,
        release,
        ..
    } = verifying;
    let Some(rollback_id) = target.rollback_release_id else {
        return Ok(false);
    };
    let db = tx.connection();
    let Some(rollback) = store::releases::release_by_id(db, rollback_id).await? else {
        return Ok(false);
    };
    let write = VerificationWrite {
        status: Some(TargetStatus::Failed),
        from: VerificationState::Failed,
        to: VerificationState::Failed,
        results: None,
        error_message: None,
        rollback_release_id: None,
        held_by: Some(worker.to_owned()),
    };
    if !store::verifications::write_verification(db, target_id, write).await? {
        return Ok(false);
    }
    let (state, how) = match &outcome {
        DeployOutcome::Deployed => (ReleaseState::Succeeded, "deployed".to_owned()),
        DeployOutcome::Failed(reason) => {
            (ReleaseState::Failed, format!("its deploy failed: {reason}"))
        }
    };
    store::releases::set_state(db, rollback.id, state, Some(ReleaseState::Pending)).await?;
    tx.add_pipeline_event(PipelineEventDraft::new(
        Scope::App(app.id),
        "release.updated",
        rollback.id,
        Some((app.id, &app.name)),
    ));
    let message = format!(
        "rolled '{}' back to image {} as v{}: {how}",
        app.name, rollback.image, rollback.version
    );
    append(
        tx,
        target.promotion_id,
        EventDraft::about_target(
            EventKind::TargetRolledBack,
            &target,
            app.clone(),
            TargetStatus::Failed,
            message,
        )
        .with_release(release_ref(&rollback)),
    )
    .await?;
    if state == ReleaseState::Succeeded {
        tx.wake_engine |= record_triggers(
            tx.connection(),
            vec![Trigger {
                app_id: app.id,
                release_id: rollback.id,
                triggered_by: target.promotion_id.to_string(),
                reason: format!(
                    "rollback to v{} after verification of v{} failed",
                    rollback.version, release.version
                ),
            }],
        )
        .await?;
    }
    let error_message = target.error_message.clone();
    end_failed(tx, &target, &app, release_ref(&release), error_message).await?;
    Ok(true)
}
