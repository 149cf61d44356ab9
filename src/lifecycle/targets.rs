//! A target's steps as the engine runs them: start, link its release, record the deploy's
//! outcome, or wait behind another promotion. Each step is guarded by the worker's lease
//! and the state it expects, so a step already done (before a crash) is a no-op. The
//! engine runs a promotion's claimed targets together, so each step works on a batch.

use std::collections::{HashMap, HashSet};

use sea_orm::{sea_query::OnConflict, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{
    auto_promotion::{record_triggers, Trigger},
    cancel::cancel_target_of_deleted_app,
    events::{append_all, finish_if_complete, EventDraft},
    leases::clearing_lease,
    lock_promotion, Transaction,
};
use crate::{
    domain::{
        promotion::{EventKind, PromotionStatus, TargetStatus},
        status::ReleaseState,
    },
    error::Result,
    store::{
        self,
        entities::{promotion, promotion_target, release},
        insert_release_with_next_version, NewRelease,
    },
    views::{ReleaseRef, ResourceRef},
};

/// A claimed target of one promotion, with what its steps need.
pub struct ClaimedTarget {
    pub target: promotion_target::Model,
    pub app: ResourceRef,
    /// The release to create for it, when it has none yet.
    pub new_release: NewRelease,
}

/// Prepares claimed targets of one promotion for deployment in one transaction: the
/// pending ones start, and each gets its release (created now, or the one linked before a
/// crash). The apps are locked live first, in id order, then the promotion, as the lock
/// order requires; every step is one statement for the whole batch. Returns each target's
/// release, in order, or `None` when the target is not to be deployed (canceled, its app
/// deleted, or the lease lost).
pub async fn prepare_targets(
    tx: &mut Transaction,
    worker: &str,
    claimed: Vec<ClaimedTarget>,
) -> Result<Vec<Option<release::Model>>> {
    let Some(promotion_id) = claimed.first().map(|c| c.target.promotion_id) else {
        return Ok(Vec::new());
    };
    let ids: Vec<Uuid> = claimed.iter().map(|c| c.target.id).collect();
    let mut app_ids: Vec<Uuid> = claimed.iter().map(|c| c.target.app_id).collect();
    app_ids.sort();
    app_ids.dedup();
    let live_apps = store::lock_live_apps(tx.connection(), &app_ids).await?;
    lock_promotion(tx, promotion_id).await?;

    // pending → running, with the promotion.
    let pending: Vec<Uuid> = claimed
        .iter()
        .filter(|c| c.target.status == TargetStatus::Pending.as_str())
        .map(|c| c.target.id)
        .collect();
    if !pending.is_empty() {
        promotion::Entity::update_many()
            .col_expr(
                promotion::Column::Status,
                PromotionStatus::Running.as_str().into(),
            )
            .col_expr(promotion::Column::UpdatedAt, store::now().into())
            .filter(promotion::Column::Id.eq(promotion_id))
            .filter(promotion::Column::Status.eq(PromotionStatus::Pending.as_str()))
            .exec(tx.connection())
            .await?;
        promotion_target::Entity::update_many()
            .col_expr(
                promotion_target::Column::Status,
                TargetStatus::Running.as_str().into(),
            )
            .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
            .filter(promotion_target::Column::Id.is_in(pending.iter().copied()))
            .filter(promotion_target::Column::Status.eq(TargetStatus::Pending.as_str()))
            .filter(promotion_target::Column::LeaseOwner.eq(worker.to_owned()))
            .exec(tx.connection())
            .await?;
    }

    // What each target is now, under the promotion's lock: only running targets whose
    // lease this worker holds go on.
    let current: HashMap<Uuid, promotion_target::Model> = promotion_target::Entity::find()
        .filter(promotion_target::Column::Id.is_in(ids.iter().copied()))
        .all(tx.connection())
        .await?
        .into_iter()
        .filter(|row| {
            row.status == TargetStatus::Running.as_str()
                && row.lease_owner.as_deref() == Some(worker)
        })
        .map(|row| (row.id, row))
        .collect();
    // `target.running` and `target.release_created` are stored together at the end, in one
    // statement; a cancel's event in between is stored after the ones before it.
    let mut events: Vec<EventDraft> = claimed
        .iter()
        .filter(|c| pending.contains(&c.target.id) && current.contains_key(&c.target.id))
        .map(running_event)
        .collect();

    // Releases linked before a crash are deployed again; a deleted app's target is
    // canceled; the others get a new release.
    let linked_ids: Vec<Uuid> = current.values().filter_map(|row| row.release_id).collect();
    let mut linked: HashMap<Uuid, release::Model> = if linked_ids.is_empty() {
        HashMap::new()
    } else {
        release::Entity::find()
            .filter(release::Column::Id.is_in(linked_ids))
            .all(tx.connection())
            .await?
            .into_iter()
            .map(|release| (release.id, release))
            .collect()
    };
    let mut releases: HashMap<Uuid, release::Model> = HashMap::new();
    let mut to_create = Vec::new();
    for c in claimed {
        let Some(row) = current.get(&c.target.id) else {
            continue;
        };
        if let Some(release_id) = row.release_id {
            if let Some(release) = linked.remove(&release_id) {
                releases.insert(c.target.id, release);
            }
        } else if !live_apps.contains(&c.target.app_id) {
            append_all(tx, promotion_id, std::mem::take(&mut events)).await?;
            cancel_target_of_deleted_app(tx, c.target.id, None).await?;
        } else {
            to_create.push(c);
        }
    }
    let created = create_releases(
        tx,
        to_create.iter().map(|c| c.new_release.clone()).collect(),
    )
    .await?;
    link_releases(tx, worker, &to_create).await?;
    for (c, release) in to_create.iter().zip(created) {
        events.push(release_created_event(c, &release));
        releases.insert(c.target.id, release);
    }
    append_all(tx, promotion_id, events).await?;
    Ok(ids.iter().map(|id| releases.remove(id)).collect())
}

/// `target.running` for a claimed target that starts.
pub(super) fn running_event(c: &ClaimedTarget) -> EventDraft {
    EventDraft::about_target(
        EventKind::TargetRunning,
        &c.target,
        c.app.clone(),
        TargetStatus::Running,
        format!("promoting to '{}'", c.app.name),
    )
}

/// `target.release_created` for the release made for a claimed target.
pub(super) fn release_created_event(c: &ClaimedTarget, release: &release::Model) -> EventDraft {
    EventDraft::about_target(
        EventKind::TargetReleaseCreated,
        &c.target,
        c.app.clone(),
        TargetStatus::Running,
        format!(
            "release v{} created on '{}' with image {}",
            release.version, c.app.name, release.image
        ),
    )
    .with_release(ReleaseRef {
        id: release.id,
        version: release.version,
    })
}

/// Creates releases with each app's next version, in one statement; if a release raced in
/// on one of the apps, one at a time instead.
pub(super) async fn create_releases(
    tx: &Transaction,
    news: Vec<NewRelease>,
) -> Result<Vec<release::Model>> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let db = tx.connection();
    let newest: HashMap<Uuid, Option<i64>> = release::Entity::find()
        .select_only()
        .column(release::Column::AppId)
        .column_as(release::Column::Version.max(), "newest")
        .filter(release::Column::AppId.is_in(news.iter().map(|new| new.app_id)))
        .group_by(release::Column::AppId)
        .into_tuple::<(Uuid, Option<i64>)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let models = number_releases(news.iter(), &newest);
    // A version another release took meanwhile is skipped here, and that release is
    // created again with the next free version.
    let inserted: HashSet<Uuid> =
        release::Entity::insert_many(models.iter().cloned().map(release::ActiveModel::from))
            .on_conflict(
                OnConflict::columns([release::Column::AppId, release::Column::Version])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_with_returning_keys(db)
            .await?
            .into_iter()
            .collect();
    let mut created = Vec::with_capacity(models.len());
    for (model, new) in models.into_iter().zip(news) {
        if inserted.contains(&model.id) {
            created.push(model);
        } else {
            created.push(insert_release_with_next_version(db, new).await?);
        }
    }
    Ok(created)
}

/// Releases for `news`, numbered from each app's `newest` version on (none: from 1),
/// in order; not stored.
pub(super) fn number_releases<'a>(
    news: impl Iterator<Item = &'a NewRelease>,
    newest: &HashMap<Uuid, Option<i64>>,
) -> Vec<release::Model> {
    let mut next: HashMap<Uuid, i64> = HashMap::new();
    let now = store::now();
    news.map(|new| {
        let version = next
            .entry(new.app_id)
            .or_insert_with(|| newest.get(&new.app_id).copied().flatten().unwrap_or(0) + 1);
        let model = release::Model {
            id: Uuid::new_v4(),
            app_id: new.app_id,
            version: *version,
            image: new.image.clone(),
            description: new.description.clone(),
            status: new.status.to_owned(),
            promoted_from_app_id: new.promoted_from_app_id,
            promoted_from_release_id: new.promoted_from_release_id,
            promoted_from_promotion_id: new.promoted_from_promotion_id,
            promotion_target_id: new.promotion_target_id,
            created_at: now,
            updated_at: now,
        };
        *version += 1;
        model
    })
    .collect()
}

/// Links each target to the release created for it, in one statement, guarded like every
/// step by the worker's lease.
async fn link_releases(tx: &Transaction, worker: &str, targets: &[ClaimedTarget]) -> Result<()> {
    let ids: Vec<Uuid> = targets.iter().map(|claimed| claimed.target.id).collect();
    store::releases::link_target_releases(tx.connection(), worker, &ids).await?;
    Ok(())
}

/// What one deployment of a target came to, to be recorded.
pub struct DeployedTarget<'a> {
    pub target: &'a promotion_target::Model,
    pub app: &'a ResourceRef,
    pub release: &'a release::Model,
    pub outcome: DeployOutcome,
}

/// Records the outcomes of deployments of one promotion's targets in one transaction:
/// running → succeeded or failed, with the releases' states, then the promotion's end if
/// they were its last. Returns, per outcome, whether it was recorded: not when the target
/// was no longer this worker's (canceled by its app's deletion, or the lease lost).
pub async fn record_outcomes(
    tx: &mut Transaction,
    worker: &str,
    promotion_id: Uuid,
    deployed: Vec<DeployedTarget<'_>>,
) -> Result<Vec<bool>> {
    let promotion = lock_promotion(tx, promotion_id).await?;
    let described: Vec<OutcomeRecord> = deployed.iter().map(OutcomeRecord::of).collect();
    let recordable =
        record_target_outcomes(tx, worker, &deployed, &described, TargetStatus::Running).await?;
    let mut recorded = Vec::with_capacity(deployed.len());
    let mut triggers = Vec::new();
    let mut release_states: HashMap<ReleaseState, Vec<Uuid>> = HashMap::new();
    let mut events = Vec::new();
    for (done, outcome) in deployed.into_iter().zip(described) {
        let OutcomeRecord {
            target_status,
            release_state,
            kind,
            message,
            ..
        } = outcome;
        if !recordable.contains(&done.target.id) {
            recorded.push(false);
            continue;
        }
        recorded.push(true);
        if release_state == ReleaseState::Succeeded {
            triggers.push(delivery_trigger(&promotion, done.app, done.release));
        }
        release_states
            .entry(release_state)
            .or_default()
            .push(done.release.id);
        events.push(outcome_event(&done, kind, target_status, message));
    }
    set_release_states(tx, release_states).await?;
    append_all(tx, promotion_id, events).await?;
    finish_if_complete(tx, promotion_id).await?;
    tx.wake_engine |= record_triggers(tx.connection(), triggers).await?;
    Ok(recorded)
}

/// The auto-promotion trigger of a release delivered by a promotion.
pub(super) fn delivery_trigger(
    promotion: &promotion::Model,
    app: &ResourceRef,
    release: &release::Model,
) -> Trigger {
    Trigger {
        app_id: app.id,
        release_id: release.id,
        triggered_by: promotion
            .triggered_by
            .clone()
            .unwrap_or_else(|| promotion.created_by.clone()),
        reason: format!(
            "release v{} delivered to '{}' by promotion {}",
            release.version, app.name, promotion.id
        ),
    }
}

/// The event that tells a deployment's outcome.
pub(super) fn outcome_event(
    done: &DeployedTarget<'_>,
    kind: EventKind,
    status: TargetStatus,
    message: String,
) -> EventDraft {
    EventDraft::about_target(kind, done.target, done.app.clone(), status, message).with_release(
        ReleaseRef {
            id: done.release.id,
            version: done.release.version,
        },
    )
}

/// Sets the releases' states, one statement per state.
pub(super) async fn set_release_states(
    tx: &Transaction,
    states: HashMap<ReleaseState, Vec<Uuid>>,
) -> Result<()> {
    for (state, ids) in states {
        release::Entity::update_many()
            .col_expr(release::Column::Status, state.as_str().into())
            .col_expr(release::Column::UpdatedAt, store::now().into())
            .filter(release::Column::Id.is_in(ids))
            .exec(tx.connection())
            .await?;
    }
    Ok(())
}

/// What an outcome makes of its target and release, and the event that tells it.
pub(super) struct OutcomeRecord {
    pub target_status: TargetStatus,
    pub release_state: ReleaseState,
    pub error_message: String,
    pub kind: EventKind,
    pub message: String,
}

impl OutcomeRecord {
    pub(super) fn of(done: &DeployedTarget<'_>) -> Self {
        match &done.outcome {
            DeployOutcome::Deployed => Self {
                target_status: TargetStatus::Succeeded,
                release_state: ReleaseState::Succeeded,
                error_message: String::new(),
                kind: EventKind::TargetSucceeded,
                message: format!(
                    "release v{} is now current on '{}'",
                    done.release.version, done.app.name
                ),
            },
            DeployOutcome::Failed(reason) => Self {
                target_status: TargetStatus::Failed,
                release_state: ReleaseState::Failed,
                error_message: reason.clone(),
                kind: EventKind::TargetFailed,
                message: format!("deploying to '{}' failed: {reason}", done.app.name),
            },
        }
    }
}

/// Moves targets in status `from` to their outcomes, one statement per distinct outcome
/// (every success shares one), each guarded by the worker's lease. Targets that had no
/// release linked get the one made for them. Returns the targets it moved: one canceled or
/// taken over meanwhile is not among them.
pub(super) async fn record_target_outcomes(
    tx: &Transaction,
    worker: &str,
    deployed: &[DeployedTarget<'_>],
    described: &[OutcomeRecord],
    from: TargetStatus,
) -> Result<HashSet<Uuid>> {
    let mut by_outcome: Vec<((TargetStatus, &str), Vec<Uuid>)> = Vec::new();
    for (done, outcome) in deployed.iter().zip(described) {
        let key = (outcome.target_status, outcome.error_message.as_str());
        match by_outcome.iter_mut().find(|(existing, _)| *existing == key) {
            Some((_, ids)) => ids.push(done.target.id),
            None => by_outcome.push((key, vec![done.target.id])),
        }
    }
    let mut moved = HashSet::new();
    for ((status, error_message), ids) in by_outcome {
        let rows = clearing_lease(promotion_target::Entity::update_many())
            .col_expr(promotion_target::Column::Status, status.as_str().into())
            .col_expr(promotion_target::Column::ErrorMessage, error_message.into())
            .col_expr(promotion_target::Column::UpdatedAt, store::now().into())
            .col_expr(
                promotion_target::Column::ReleaseId,
                store::releases::linked_or_made_release(),
            )
            .filter(promotion_target::Column::Id.is_in(ids))
            .filter(promotion_target::Column::Status.eq(from.as_str()))
            .filter(promotion_target::Column::LeaseOwner.eq(worker.to_owned()))
            .exec_with_returning(tx.connection())
            .await?;
        moved.extend(rows.into_iter().map(|row| row.id));
    }
    Ok(moved)
}

/// What the deployer answered.
#[derive(Debug, Clone)]
pub enum DeployOutcome {
    Deployed,
    Failed(String),
}
