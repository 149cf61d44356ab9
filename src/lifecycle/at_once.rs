//! A claimed batch of fresh targets run start to finish in one transaction, for deployers
//! that work within the database: nothing between the start and the outcome is visible
//! to anyone else, so each target goes from `pending` straight to its outcome, its
//! release made with its final state and linked in the same statement, and the
//! promotion's status and every event (`target.running`, `target.release_created`, the
//! outcome, `promotion.finished`) are written together. The events are the same, in the
//! same order, as when the steps commit one by one.

use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait};
use uuid::Uuid;

use super::{
    auto_promotion::record_feeding_triggers,
    events::{append_changing_status, promotion_end, EventDraft, StatusChange},
    subject::Subject,
    targets::{
        delivery_trigger, number_releases, outcome_event, record_target_outcomes,
        release_created_event, running_event, OutcomeRecord,
    },
    ClaimedTarget, DeployOutcome, DeployedTarget, Transaction,
};
use crate::{
    domain::{
        promotion::{PromotionStatus, TargetStatus},
        status::ReleaseState,
    },
    error::{Error, Result},
    store::{
        self,
        entities::{promotion, promotion_target, release},
    },
    views::ResourceRef,
};

/// What [`start_at_once`] found.
pub enum AtOnce {
    /// Every target started, with its release made: deploy each, then
    /// [`finish_at_once`].
    Started(Box<StartedBatch>),
    /// Not every target is fresh (one started before, was canceled, lost its lease or its
    /// app), so the batch runs step by step, in the same transaction.
    StepByStep {
        subject: Subject,
        claimed: Vec<ClaimedTarget>,
    },
}

/// A batch started by [`start_at_once`], under its locks.
pub struct StartedBatch {
    pub subject: Subject,
    promotion: promotion::Model,
    /// Every target of the promotion, as read under its lock.
    all_targets: Vec<promotion_target::Model>,
    /// The target apps whose releases can trigger an auto-promotion.
    feeding_auto_promotion: HashSet<Uuid>,
    /// The batch's targets with the releases they get, in order: numbered, not stored
    /// until [`finish_at_once`] stores them with their outcomes.
    pub started: Vec<(ClaimedTarget, release::Model)>,
}

/// Locks the batch's apps (live, in id order) and then its promotion, as the lock order
/// requires, reads what its steps need ([`Subject`]), and numbers each target's release if
/// every target is fresh: pending, with no release, leased by `worker`, its app live, and
/// its promotion unfinished.
pub async fn start_at_once(
    tx: &mut Transaction,
    worker: &str,
    targets: Vec<promotion_target::Model>,
) -> Result<AtOnce> {
    let Some(promotion_id) = targets.first().map(|target| target.promotion_id) else {
        return Err(Error::Internal("a batch without targets".into()));
    };
    let mut app_ids: Vec<_> = targets.iter().map(|target| target.app_id).collect();
    app_ids.sort();
    app_ids.dedup();
    let live_apps = lock_live_apps(tx.connection(), &app_ids).await?;
    let locked = lock_promotion_with_targets(tx.connection(), promotion_id).await?;
    let claimed = locked.subject.claim(targets, &locked.apps)?;
    let unfinished = PromotionStatus::parse(&locked.promotion.status).is_some_and(|status| {
        matches!(status, PromotionStatus::Pending | PromotionStatus::Running)
    });
    let fresh = |c: &ClaimedTarget| {
        live_apps.contains(&c.target.app_id)
            && locked.all_targets.iter().any(|row| {
                row.id == c.target.id
                    && row.status == TargetStatus::Pending.as_str()
                    && row.release_id.is_none()
                    && row.lease_owner.as_deref() == Some(worker)
            })
    };
    if !unfinished || !claimed.iter().all(fresh) {
        return Ok(AtOnce::StepByStep {
            subject: locked.subject,
            claimed,
        });
    }
    let releases = number_releases(
        claimed.iter().map(|c| &c.new_release),
        &live_apps.newest_versions,
    );
    Ok(AtOnce::Started(Box::new(StartedBatch {
        subject: locked.subject,
        promotion: locked.promotion,
        all_targets: locked.all_targets,
        feeding_auto_promotion: live_apps.feeding_auto_promotion,
        started: claimed.into_iter().zip(releases).collect(),
    })))
}

/// Records the outcomes of a started batch, one per target in order: the releases are
/// stored in their final states, each target moves from `pending` to its outcome with its
/// release linked and its lease cleared, and the promotion runs on or ends, with every
/// event in one statement. A target taken over meanwhile, or a version another release
/// took meanwhile, fails the whole transaction, which the caller drops, so the batch is
/// retried as it was claimed.
pub async fn finish_at_once(
    tx: &mut Transaction,
    worker: &str,
    batch: Box<StartedBatch>,
    outcomes: Vec<DeployOutcome>,
) -> Result<()> {
    let StartedBatch {
        promotion,
        mut all_targets,
        feeding_auto_promotion,
        started,
        ..
    } = *batch;
    let deployed: Vec<DeployedTarget<'_>> = started
        .iter()
        .zip(outcomes)
        .map(|((c, release), outcome)| DeployedTarget {
            target: &c.target,
            app: &c.app,
            release,
            outcome,
        })
        .collect();
    let described: Vec<OutcomeRecord> = deployed.iter().map(OutcomeRecord::of).collect();
    let moved = store_outcomes(tx, worker, &deployed, &described).await?;
    if moved != deployed.len() {
        return Err(Error::Internal(format!(
            "promotion {}: a target was taken over while it deployed",
            promotion.id
        )));
    }

    let mut events: Vec<EventDraft> = started.iter().map(|(c, _)| running_event(c)).collect();
    events.extend(
        started
            .iter()
            .map(|(c, release)| release_created_event(c, release)),
    );
    let mut triggers = Vec::new();
    for (done, record) in deployed.iter().zip(described) {
        if record.release_state == ReleaseState::Succeeded
            && feeding_auto_promotion.contains(&done.app.id)
        {
            triggers.push(delivery_trigger(&promotion, done.app, done.release));
        }
        if let Some(row) = all_targets.iter_mut().find(|row| row.id == done.target.id) {
            row.status = record.target_status.as_str().to_owned();
        }
        events.push(outcome_event(
            done,
            record.kind,
            record.target_status,
            record.message,
        ));
    }

    // Every event so far reports the promotion running; `promotion.finished`, if it ends
    // now, reports the status it ends with.
    let mut events: Vec<EventDraft> = events
        .into_iter()
        .map(|event| event.reporting(PromotionStatus::Running))
        .collect();
    let end = promotion_end(&all_targets, promotion.cancel_requested_at.is_some())?;
    let change = match end {
        Some((outcome, message)) => {
            events.push(EventDraft::about_promotion(
                crate::domain::promotion::EventKind::PromotionFinished,
                message,
            ));
            StatusChange {
                status: outcome,
                finished: true,
            }
        }
        None => StatusChange {
            status: PromotionStatus::Running,
            finished: false,
        },
    };
    append_changing_status(tx, promotion.id, events, Some(change)).await?;
    if !triggers.is_empty() {
        tx.wake_engine |= record_feeding_triggers(tx.connection(), triggers).await?;
    }
    Ok(())
}

/// The batch's live apps, locked, with each one's newest release version and whether it
/// feeds auto-promotion.
#[derive(Default)]
struct LiveApps {
    newest_versions: HashMap<Uuid, Option<i64>>,
    feeding_auto_promotion: HashSet<Uuid>,
}

impl LiveApps {
    fn contains(&self, app_id: &Uuid) -> bool {
        self.newest_versions.contains_key(app_id)
    }
}

/// Locks the live apps among `app_ids` (sorted), with what their releases need.
async fn lock_live_apps(db: &impl ConnectionTrait, app_ids: &[Uuid]) -> Result<LiveApps> {
    let mut live = LiveApps::default();
    for app in store::lock_live_apps_with_versions(db, app_ids).await? {
        live.newest_versions.insert(app.id, app.newest_version);
        if app.feeds_auto_promotion {
            live.feeding_auto_promotion.insert(app.id);
        }
    }
    Ok(live)
}

/// A promotion read under its lock by [`lock_promotion_with_targets`].
struct LockedPromotion {
    promotion: promotion::Model,
    subject: Subject,
    /// Every target, in order.
    all_targets: Vec<promotion_target::Model>,
    /// Every target's app, deleted ones included.
    apps: HashMap<Uuid, ResourceRef>,
}

/// Locks the promotion row (`FOR UPDATE` on PostgreSQL) and reads it with its
/// [`Subject`], and then reads its targets in order, with their apps.
///
/// The targets are read by a statement of their own, begun once the lock is held. Under
/// read committed a statement sees what was committed when it began, and a lock it waits
/// for refreshes only the locked row: targets read by the locking statement would miss
/// what the lock holder changed (a target canceled with its app's delete, or one that
/// another batch finished), and the promotion would never be seen to end. The subject's
/// rows do not change while a promotion runs, so they are read with the lock.
async fn lock_promotion_with_targets(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<LockedPromotion> {
    let (promotion, subject) = store::promotions::lock_with_subject(db, promotion_id)
        .await?
        .ok_or_else(|| Error::not_found("promotion", &promotion_id.to_string()))?;
    let subject = Subject::from_row(promotion_id, subject);
    let rows = store::targets::targets_with_app_names(db, promotion_id).await?;
    let mut all_targets = Vec::with_capacity(rows.len());
    let mut apps = HashMap::with_capacity(rows.len());
    for (target, name) in rows {
        apps.insert(
            target.app_id,
            ResourceRef {
                id: target.app_id,
                name,
            },
        );
        all_targets.push(target);
    }
    Ok(LockedPromotion {
        promotion,
        subject,
        all_targets,
        apps,
    })
}

/// Stores the batch's releases in their final states and moves its targets from `pending`
/// to their outcomes, each linked to its release with its lease cleared, guarded by the
/// worker's lease. Returns how many targets moved.
///
/// One statement on PostgreSQL, where a version another release took meanwhile leaves its
/// target unmoved; on SQLite, which has one writer, an insert and an update.
async fn store_outcomes(
    tx: &Transaction,
    worker: &str,
    deployed: &[DeployedTarget<'_>],
    described: &[OutcomeRecord],
) -> Result<usize> {
    let releases = deployed
        .iter()
        .zip(described)
        .map(|(done, record)| release::Model {
            status: record.release_state.as_str().to_owned(),
            ..done.release.clone()
        });
    let db = tx.connection();
    if db.get_database_backend() != DbBackend::Postgres {
        release::Entity::insert_many(releases.map(release::ActiveModel::from))
            .exec_without_returning(db)
            .await?;
        let moved =
            record_target_outcomes(tx, worker, deployed, described, TargetStatus::Pending).await?;
        return Ok(moved.len());
    }
    let outcomes = deployed
        .iter()
        .zip(described)
        .zip(releases)
        .map(|((done, record), release)| store::targets::BatchOutcome {
            target_id: done.target.id,
            status: record.target_status,
            error_message: record.error_message.clone(),
            release,
        })
        .collect();
    Ok(store::targets::store_batch_outcomes(db, worker, outcomes).await?)
}
