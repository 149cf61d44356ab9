//! Auto-promotion. A change that can make a release eligible (a release becoming current,
//! a status turning `success`) writes a trigger row in its own transaction, so none is
//! lost if the process dies right after. The engine evaluates triggers: each in one
//! transaction that deletes it, so exactly one process evaluates it, reads eligibility
//! from the database, claims each (release, target) pair under a primary key, so a release
//! reaches a target automatically at most once ever, and stores the promotion.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{
    cancel::cancel_superseded_targets, create::create_promotion, PromotionRecord, Transaction,
};
use crate::{
    audit::Actor,
    domain::{policy::AUTO_PROMOTION_CREATOR, stage::Stage, status::unmet_contexts},
    error::{Error, Result},
    store::{
        self,
        entities::{app, auto_promotion_claim, auto_promotion_trigger, coupling, release},
    },
    views::{coupling_contexts, coupling_policy, ResourceRef},
};

/// A change that may make `release_id` of `app_id` eligible for auto-promotion.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub app_id: Uuid,
    pub release_id: Uuid,
    /// The token whose release or status it was.
    pub triggered_by: String,
    /// What happened, in words.
    pub reason: String,
}

/// Writes the triggers whose app feeds an auto-promote coupling, in the caller's
/// transaction. Returns whether any was written, so the caller can wake the engine.
pub async fn record_triggers(db: &impl ConnectionTrait, triggers: Vec<Trigger>) -> Result<bool> {
    let apps: Vec<Uuid> = triggers.iter().map(|t| t.app_id).collect();
    let feeding = store::triggers::apps_feeding_auto_promotion(db, &apps).await?;
    record_feeding_triggers(
        db,
        triggers
            .into_iter()
            .filter(|trigger| feeding.contains(&trigger.app_id))
            .collect(),
    )
    .await
}

/// Writes triggers already known to feed auto-promotion (see [`store::triggers::feeds_auto_promotion`]),
/// like [`record_triggers`].
pub(super) async fn record_feeding_triggers(
    db: &impl ConnectionTrait,
    triggers: Vec<Trigger>,
) -> Result<bool> {
    let now = store::now();
    let rows: Vec<auto_promotion_trigger::Model> = triggers
        .into_iter()
        .map(|trigger| auto_promotion_trigger::Model {
            id: Uuid::new_v4(),
            app_id: trigger.app_id,
            release_id: trigger.release_id,
            triggered_by: trigger.triggered_by,
            reason: trigger.reason,
            created_at: now,
        })
        .collect();
    if rows.is_empty() {
        return Ok(false);
    }
    store::triggers::insert_triggers(db, rows).await?;
    Ok(true)
}

/// Triggers not yet evaluated, oldest first.
pub async fn pending_triggers(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<auto_promotion_trigger::Model>> {
    Ok(store::triggers::pending_triggers(db, limit).await?)
}

/// A target app eligible for the release, with what its coupling requires.
struct EligibleTarget {
    app: ResourceRef,
    required_approvals: u32,
}

/// Evaluates one trigger, and stores the auto-promotion it makes eligible, if any. The
/// trigger is deleted in the same transaction: if another process already took it, this
/// does nothing.
pub async fn evaluate_trigger(
    tx: &mut Transaction,
    trigger: &auto_promotion_trigger::Model,
) -> Result<Option<Uuid>> {
    if !store::triggers::take_trigger(tx.connection(), trigger.id).await? {
        return Ok(None);
    }
    let db = tx.connection();
    let Some((source, source_coupling, pipeline)) =
        store::triggers::live_source(db, trigger.app_id).await?
    else {
        return Ok(None);
    };
    // Eligible only while it is the app's current release; a newer one has its own trigger.
    let current = store::releases::current_releases_of_apps(db, &[source.id]).await?;
    let Some(release) = current
        .into_iter()
        .find(|current| current.id == trigger.release_id)
    else {
        return Ok(None);
    };
    // A release delivered into a verifying app flows on only once verified, and never
    // after its verification failed; `target.verified` writes the trigger that lets it.
    if store::verifications::release_is_unverified(db, release.id).await? {
        return Ok(None);
    }
    let Some(next_stage) = Stage::parse("stage", &source_coupling.stage)
        .ok()
        .and_then(Stage::next)
    else {
        return Ok(None);
    };
    let eligible = eligible_targets(db, &release, &source_coupling, next_stage).await?;
    if eligible.is_empty() {
        return Ok(None);
    }

    // At most once per (release, target), ever: a concurrent evaluation of another trigger
    // for the same release waits for this one's claims and then takes only what is left.
    let promotion_id = Uuid::new_v4();
    let now = store::now();
    let mut claimed = Vec::new();
    for target in eligible {
        let claim = auto_promotion_claim::Model {
            source_release_id: release.id,
            target_app_id: target.app.id,
            promotion_id,
            created_at: now,
        };
        let inserted = store::triggers::claim_release_for_app(tx.connection(), claim).await?;
        if inserted {
            claimed.push(target);
        }
    }
    if claimed.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = claimed.iter().map(|t| t.app.name.as_str()).collect();
    let record = PromotionRecord {
        id: promotion_id,
        pipeline: ResourceRef {
            id: pipeline.id,
            name: pipeline.name.clone(),
        },
        source_app: ResourceRef {
            id: source.id,
            name: source.name.clone(),
        },
        source_release_id: release.id,
        targets: claimed.iter().map(|t| t.app.clone()).collect(),
        safe: false,
        created_by: AUTO_PROMOTION_CREATOR.to_owned(),
        author: crate::domain::access::Author::system(),
        overridden_checks: "[]".to_owned(),
        overridden_freezes: "[]".to_owned(),
        freeze_exempt: false,
        actor: Actor::system(),
        idempotency: None,
        message: format!(
            "auto-promoting release v{} of '{}' to {} ({})",
            release.version,
            source.name,
            names.join(", "),
            trigger.reason
        ),
        required_approvals: claimed
            .iter()
            .map(|t| t.required_approvals)
            .max()
            .unwrap_or_default(),
        triggered_by: Some(trigger.triggered_by.clone()),
    };
    if create_promotion(tx, record).await?.is_none() {
        return Err(Error::Internal(format!(
            "auto-promotion {promotion_id} could not be stored"
        )));
    }
    for target in &claimed {
        cancel_superseded_targets(tx, target.app.id, promotion_id).await?;
    }
    Ok(Some(promotion_id))
}

/// The apps at `stage` of the source's pipeline with `auto_promote`, live, whose required
/// status checks the release meets (the rule the create's gate applies:
/// [`unmet_contexts`]), and that do not already run its image.
async fn eligible_targets(
    db: &impl ConnectionTrait,
    release: &release::Model,
    source_coupling: &coupling::Model,
    stage: Stage,
) -> Result<Vec<EligibleTarget>> {
    let couplings =
        store::triggers::auto_promoting_couplings(db, source_coupling.pipeline_id, stage).await?;
    if couplings.is_empty() {
        return Ok(Vec::new());
    }
    let statuses = store::release_statuses::states_of_release(db, release.id).await?;
    let candidate_ids: Vec<Uuid> = couplings.iter().map(|c| c.app_id).collect();
    let apps: HashMap<Uuid, app::Model> = store::apps::live_apps(db, &candidate_ids)
        .await?
        .into_iter()
        .map(|app| (app.id, app))
        .collect();
    let app_ids: Vec<Uuid> = apps.keys().copied().collect();
    let running_images: HashMap<Uuid, String> =
        store::releases::current_releases_of_apps(db, &app_ids)
            .await?
            .into_iter()
            .map(|current| (current.app_id, current.image))
            .collect();
    let mut eligible = Vec::new();
    for candidate in couplings {
        let Some(app) = apps.get(&candidate.app_id) else {
            continue;
        };
        let required = coupling_contexts(&candidate)?;
        if !unmet_contexts(&required, &statuses).is_empty() {
            continue;
        }
        if running_images.get(&app.id) == Some(&release.image) {
            continue;
        }
        eligible.push(EligibleTarget {
            app: ResourceRef {
                id: app.id,
                name: app.name.clone(),
            },
            required_approvals: coupling_policy(&candidate).required_approvals,
        });
    }
    Ok(eligible)
}
