//! A promotion's claimed targets as the engine runs them: started (pending → running, each
//! with its release), then their deploys' outcomes recorded (running → succeeded or
//! failed), and the promotion's end. One function per transition.
//!
//! The transitions work on a [`TargetBatch`]: one promotion's targets read under its lock,
//! changed in memory, guarded by the transition table and the worker's lease, and stored
//! by [`TargetBatch::write`]. When nothing has to be committed between the start and the
//! outcomes (a deployer that works within the database), the engine writes both at once:
//! each release is then stored once, in its final state, and each target moves from
//! `pending` to its outcome in one write. The events are the same either way.

mod records;
mod write;

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{
    auto_promotion::{record_feeding_triggers, record_triggers, Trigger},
    cancel::cancel_target_of_deleted_app,
    events::{promotion_end, EventDraft, StatusChange},
    subject::Subject,
    Transaction,
};
use crate::{
    domain::{
        promotion::{EventKind, PromotionStatus, TargetStatus},
        status::ReleaseState,
    },
    error::{Error, Result},
    store::{
        self,
        entities::{promotion, promotion_target, release},
        targets::{BatchWrite, TargetMove},
        NewRelease,
    },
    views::{stored_verification, ResourceRef},
};
use records::{
    delivery_trigger, number_releases, outcome_event, release_created_event, running_event,
    OutcomeRecord,
};

/// A claimed target to deploy, with the release it deploys.
#[derive(Debug, Clone)]
pub struct Run {
    pub target: promotion_target::Model,
    pub app: ResourceRef,
    pub release: release::Model,
}

/// What the deployer answered.
#[derive(Debug, Clone)]
pub enum DeployOutcome {
    Deployed,
    Failed(String),
}

/// What became of a deploy's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeRecorded {
    Recorded,
    /// The target was canceled while it deployed; the cancel stands.
    Canceled,
    /// Another worker holds the target now (this one's lease ran out), or it moved on.
    TakenOver,
}

/// One promotion's targets, read under the promotion's lock, with the changes the batch's
/// transitions made to them and not yet written.
pub struct TargetBatch {
    pub subject: Subject,
    worker: String,
    promotion: promotion::Model,
    /// Every target of the promotion, in order, as the batch's transitions left them.
    targets: Vec<promotion_target::Model>,
    /// Every target's app, deleted ones included.
    apps: HashMap<Uuid, ResourceRef>,
    /// The claimed targets, by id.
    claimed: Vec<Uuid>,
    /// The target apps that were live when the batch locked them.
    live_apps: HashSet<Uuid>,
    /// The apps whose releases feed auto-promotion, when the batch locked the apps.
    feeding_auto_promotion: Option<HashSet<Uuid>>,
    /// The verifications of the target apps' couplings, as stored, by app.
    verifications: HashMap<Uuid, String>,
    unwritten: Unwritten,
}

/// Changes made in memory, waiting for [`TargetBatch::write`].
#[derive(Default)]
struct Unwritten {
    moves: Vec<TargetMove>,
    new_releases: Vec<release::Model>,
    release_states: Vec<(Uuid, ReleaseState)>,
    events: Vec<EventDraft>,
    promotion: Option<StatusChange>,
    triggers: Vec<Trigger>,
    /// Targets that began verifying: the verification (JSON) and its deadline.
    verifications: Vec<(Uuid, String, chrono::DateTime<chrono::Utc>)>,
}

impl TargetBatch {
    /// Locks what starting the claimed targets (of one promotion) needs, in the lock
    /// order: their live apps (in id order, with each one's newest release version), then
    /// the promotion; and reads its targets.
    pub async fn lock_to_start(
        tx: &mut Transaction,
        worker: &str,
        claimed: &[promotion_target::Model],
    ) -> Result<Self> {
        let Some(promotion_id) = claimed.first().map(|target| target.promotion_id) else {
            return Err(Error::Internal("a batch without targets".into()));
        };
        let mut app_ids: Vec<Uuid> = claimed.iter().map(|target| target.app_id).collect();
        app_ids.sort();
        app_ids.dedup();
        let mut live_apps = HashSet::new();
        let mut feeding = HashSet::new();
        for app in store::lock_live_apps_for_batch(tx.connection(), &app_ids).await? {
            live_apps.insert(app.id);
            if app.feeds_auto_promotion {
                feeding.insert(app.id);
            }
        }
        let ids: Vec<Uuid> = claimed.iter().map(|target| target.id).collect();
        let mut batch = Self::lock_promotion(tx, worker, promotion_id, &ids).await?;
        batch.live_apps = live_apps;
        batch.feeding_auto_promotion = Some(feeding);
        Ok(batch)
    }

    /// Locks the promotion of claimed targets that are deploying, to record their
    /// outcomes, and reads its targets.
    pub async fn lock_to_record(
        tx: &mut Transaction,
        worker: &str,
        promotion_id: Uuid,
        claimed: &[Uuid],
    ) -> Result<Self> {
        Self::lock_promotion(tx, worker, promotion_id, claimed).await
    }

    /// Locks the promotion row and reads it with its subject; then reads its targets, in a
    /// statement of their own begun once the lock is held. Under read committed a
    /// statement sees what was committed when it began, and a lock it waits for refreshes
    /// only the locked row: targets read by the locking statement would miss what the lock
    /// holder changed (a target canceled with its app's delete, or one another batch
    /// finished), and the promotion would never be seen to end.
    async fn lock_promotion(
        tx: &mut Transaction,
        worker: &str,
        promotion_id: Uuid,
        claimed: &[Uuid],
    ) -> Result<Self> {
        let db = tx.connection();
        let (promotion, subject) = store::promotions::lock_with_subject(db, promotion_id)
            .await?
            .ok_or_else(|| Error::not_found("promotion", &promotion_id.to_string()))?;
        let subject = Subject::from_row(promotion_id, subject);
        let rows = store::targets::targets_with_app_names(db, promotion_id).await?;
        let app_ids: Vec<Uuid> = rows.iter().map(|(target, _)| target.app_id).collect();
        let verifications = store::verifications::verifications_of_apps(db, &app_ids)
            .await?
            .into_iter()
            .collect();
        let mut targets = Vec::with_capacity(rows.len());
        let mut apps = HashMap::with_capacity(rows.len());
        for (target, name) in rows {
            apps.insert(
                target.app_id,
                ResourceRef {
                    id: target.app_id,
                    name,
                },
            );
            targets.push(target);
        }
        Ok(Self {
            subject,
            worker: worker.to_owned(),
            promotion,
            targets,
            apps,
            claimed: claimed.to_vec(),
            live_apps: HashSet::new(),
            feeding_auto_promotion: None,
            verifications,
            unwritten: Unwritten::default(),
        })
    }

    fn promotion_status(&self) -> Result<PromotionStatus> {
        PromotionStatus::parse(&self.promotion.status).ok_or_else(|| {
            Error::Internal(format!(
                "promotion {} has an unknown status",
                self.promotion.id
            ))
        })
    }

    /// The claimed targets still this worker's, in `status`, with their apps.
    fn claimed_in(&self, status: TargetStatus) -> Vec<(promotion_target::Model, ResourceRef)> {
        self.targets
            .iter()
            .filter(|target| {
                self.claimed.contains(&target.id)
                    && target.status == status.as_str()
                    && target.lease_owner.as_deref() == Some(self.worker.as_str())
            })
            .filter_map(|target| {
                let app = self.apps.get(&target.app_id)?.clone();
                Some((target.clone(), app))
            })
            .collect()
    }

    /// Moves a target in memory, guarded by the transition table, and notes the move to
    /// write (merged with one it already made in this batch).
    fn move_target(
        &mut self,
        target_id: Uuid,
        next: TargetStatus,
        error_message: Option<String>,
        link_release: Option<Uuid>,
    ) -> Result<()> {
        let Some(row) = self.targets.iter_mut().find(|row| row.id == target_id) else {
            return Err(Error::Internal(format!(
                "target {target_id} is not in its batch"
            )));
        };
        let current = TargetStatus::parse(&row.status)
            .ok_or_else(|| Error::Internal(format!("target {target_id} has an unknown status")))?;
        if !current.may_become(next) {
            return Err(Error::Internal(format!(
                "target {target_id}: {current} may not become {next}"
            )));
        }
        row.status = next.as_str().to_owned();
        if let Some(message) = &error_message {
            row.error_message = message.clone();
        }
        if row.release_id.is_none() {
            row.release_id = link_release;
        }
        match self
            .unwritten
            .moves
            .iter_mut()
            .find(|m| m.target_id == target_id)
        {
            Some(earlier) => {
                earlier.to = next;
                earlier.error_message = error_message.or(earlier.error_message.take());
                earlier.link_release = earlier.link_release.or(link_release);
            }
            None => self.unwritten.moves.push(TargetMove {
                target_id,
                from: current,
                to: next,
                error_message,
                link_release,
            }),
        }
        Ok(())
    }

    /// Moves the promotion in memory, guarded by the transition table.
    fn move_promotion(&mut self, next: PromotionStatus, finished: bool) -> Result<()> {
        let current = self.promotion_status()?;
        if !current.may_become(next) {
            return Err(Error::Internal(format!(
                "promotion {}: {current} may not become {next}",
                self.promotion.id
            )));
        }
        self.promotion.status = next.as_str().to_owned();
        let finished = finished || self.unwritten.promotion.is_some_and(|c| c.finished);
        self.unwritten.promotion = Some(StatusChange {
            status: next,
            finished,
        });
        Ok(())
    }

    /// Starts the claimed targets: each pending one moves to `running` and gets a new
    /// release (numbered now, stored by [`Self::write`]); one started before a crash
    /// deploys the release it was linked to. The promotion starts running with its first
    /// target. A pending target whose app was deleted is canceled. Returns what to deploy,
    /// in order: not the targets no longer this worker's (canceled, or the lease lost).
    pub async fn start(&mut self, tx: &mut Transaction) -> Result<Vec<Run>> {
        let orphaned: Vec<Uuid> = self
            .claimed_in(TargetStatus::Pending)
            .into_iter()
            .filter(|(target, _)| !self.live_apps.contains(&target.app_id))
            .map(|(target, _)| target.id)
            .collect();
        if !orphaned.is_empty() {
            for target_id in orphaned {
                cancel_target_of_deleted_app(tx, target_id, None).await?;
            }
            let claimed = std::mem::take(&mut self.claimed);
            let live_apps = std::mem::take(&mut self.live_apps);
            let feeding = self.feeding_auto_promotion.take();
            *self =
                Self::lock_promotion(tx, &self.worker.clone(), self.promotion.id, &claimed).await?;
            self.live_apps = live_apps;
            self.feeding_auto_promotion = feeding;
        }

        let mut runs = Vec::new();
        let restarted = self.claimed_in(TargetStatus::Running);
        let linked: Vec<Uuid> = restarted.iter().filter_map(|(t, _)| t.release_id).collect();
        let mut linked: HashMap<Uuid, release::Model> =
            store::releases::releases_by_id(tx.connection(), &linked)
                .await?
                .into_iter()
                .map(|release| (release.id, release))
                .collect();
        let mut to_number = Vec::new();
        for (target, app) in restarted {
            match target.release_id.and_then(|id| linked.remove(&id)) {
                Some(release) => runs.push(Run {
                    target,
                    app,
                    release,
                }),
                None => to_number.push((target, app)),
            }
        }

        let starting = self.claimed_in(TargetStatus::Pending);
        if !starting.is_empty() && self.promotion_status()? == PromotionStatus::Pending {
            self.move_promotion(PromotionStatus::Running, false)?;
        }
        for (target, app) in &starting {
            self.move_target(target.id, TargetStatus::Running, None, None)?;
            self.unwritten.events.push(running_event(target, app));
        }
        to_number.extend(starting);
        let news: Vec<NewRelease> = to_number
            .iter()
            .map(|(target, app)| self.subject.new_release(app, target))
            .collect();
        let numbered: Vec<Uuid> = news.iter().map(|new| new.app_id).collect();
        let newest = store::lock_release_numbering(tx.connection(), &numbered).await?;
        let releases = number_releases(news.iter(), &newest);
        for ((target, app), release) in to_number.into_iter().zip(releases) {
            self.link_new_release(&target, &app, &release)?;
            runs.push(Run {
                target,
                app,
                release,
            });
        }
        // Runs in the order the targets were claimed.
        runs.sort_by_key(|run| self.claimed.iter().position(|id| *id == run.target.id));
        Ok(runs)
    }

    /// Links a new release to a running target, with `target.release_created`.
    fn link_new_release(
        &mut self,
        target: &promotion_target::Model,
        app: &ResourceRef,
        release: &release::Model,
    ) -> Result<()> {
        match self
            .unwritten
            .moves
            .iter_mut()
            .find(|m| m.target_id == target.id)
        {
            Some(earlier) => earlier.link_release = Some(release.id),
            None => self.unwritten.moves.push(TargetMove {
                target_id: target.id,
                from: TargetStatus::Running,
                to: TargetStatus::Running,
                error_message: None,
                link_release: Some(release.id),
            }),
        }
        if let Some(row) = self.targets.iter_mut().find(|row| row.id == target.id) {
            row.release_id = Some(release.id);
        }
        self.unwritten.new_releases.push(release.clone());
        self.unwritten
            .events
            .push(release_created_event(target, app, release));
        Ok(())
    }

    /// Records deploys' outcomes: each target still running under this worker's lease
    /// moves to `succeeded` or `failed`, its release to the same state; then the promotion
    /// ends if they were its last. Returns, per outcome, whether it was recorded: not when
    /// the target was no longer this worker's (canceled by its app's deletion, or the
    /// lease lost).
    pub fn record_outcomes(
        &mut self,
        outcomes: Vec<(Run, DeployOutcome)>,
    ) -> Result<Vec<OutcomeRecorded>> {
        let mut recorded = Vec::with_capacity(outcomes.len());
        let reporting = self.promotion_status()?;
        for (run, outcome) in outcomes {
            let now = self.targets.iter().find(|row| row.id == run.target.id);
            let verdict = match now {
                Some(row)
                    if row.status == TargetStatus::Running.as_str()
                        && row.lease_owner.as_deref() == Some(self.worker.as_str())
                        && row.release_id == Some(run.release.id) =>
                {
                    OutcomeRecorded::Recorded
                }
                Some(row) if row.status == TargetStatus::Canceled.as_str() => {
                    OutcomeRecorded::Canceled
                }
                _ => OutcomeRecorded::TakenOver,
            };
            recorded.push(verdict);
            if verdict != OutcomeRecorded::Recorded {
                continue;
            }
            let verification = self
                .verifications
                .get(&run.app.id)
                .and_then(|stored| Some((stored_verification(Some(stored), run.app.id)?, stored)));
            let record = match (&outcome, verification) {
                (DeployOutcome::Deployed, Some((verification, stored))) => {
                    let deadline = store::now()
                        + chrono::Duration::seconds(i64::from(verification.timeout_seconds));
                    self.unwritten
                        .verifications
                        .push((run.target.id, stored.clone(), deadline));
                    OutcomeRecord::verifying(&run, &verification, deadline)
                }
                _ => OutcomeRecord::of(&run, &outcome),
            };
            self.move_target(
                run.target.id,
                record.target_status,
                Some(record.error_message),
                None,
            )?;
            match self
                .unwritten
                .new_releases
                .iter_mut()
                .find(|release| release.id == run.release.id)
            {
                Some(made) => made.status = record.release_state.as_str().to_owned(),
                None => self
                    .unwritten
                    .release_states
                    .push((run.release.id, record.release_state)),
            }
            // A release that verifies feeds auto-promotion once it is verified.
            if record.target_status == TargetStatus::Succeeded {
                let trigger = delivery_trigger(&self.promotion, &run.app, &run.release);
                self.unwritten.triggers.push(trigger);
            }
            self.unwritten.events.push(
                outcome_event(&run, record.kind, record.target_status, record.message)
                    .reporting(reporting),
            );
        }
        let cancel_requested = self.promotion.cancel_requested_at.is_some();
        if let Some((outcome, message)) = promotion_end(&self.targets, cancel_requested)? {
            self.move_promotion(outcome, true)?;
            self.unwritten.events.push(EventDraft::about_promotion(
                EventKind::PromotionFinished,
                message,
            ));
        }
        Ok(recorded)
    }
}

#[cfg(test)]
mod tests;
