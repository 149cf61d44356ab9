//! Telling waiting targets what they wait for: `target.queued`, once per target for the
//! work ahead of it, and once per freeze that holds it. Which work waits behind which is
//! the queue's order, read by [`crate::store::queue`].

use uuid::Uuid;

use super::{
    events::{append_all, EventDraft},
    lock_promotion, Transaction,
};
use crate::{
    domain::{
        freeze::FrozenStage,
        promotion::{EventKind, TargetStatus},
    },
    error::Result,
    store::{
        self,
        entities::promotion_target,
        queue::{self, Blocker},
    },
    views::{FreezeRef, ResourceRef},
};

/// Records, once per target, what each of `waiting` waits behind: the earliest unfinished
/// work on its app, with `target.queued`. Targets that started, finished or were announced
/// meanwhile are skipped. Promotions are locked in id order, one event batch each.
pub async fn announce_waiting(
    tx: &mut Transaction,
    waiting: Vec<promotion_target::Model>,
) -> Result<usize> {
    let apps: Vec<Uuid> = waiting.iter().map(|target| target.app_id).collect();
    let entries = queue::queue_entries(tx.connection(), &apps, None, &[]).await?;
    let names = store::apps::app_names(tx.connection(), &apps).await?;
    let mut by_promotion: Vec<(Uuid, Vec<(promotion_target::Model, Blocker)>)> = Vec::new();
    for target in waiting {
        let Some(queued_at) = target.queued_at else {
            continue;
        };
        let key = (queued_at, target.promotion_id);
        let Some(blocker) = entries
            .iter()
            .find(|entry| entry.app == target.app_id && entry.key < key)
            .map(|entry| entry.work)
        else {
            continue;
        };
        match by_promotion
            .iter_mut()
            .find(|(promotion, _)| *promotion == target.promotion_id)
        {
            Some((_, group)) => group.push((target, blocker)),
            None => by_promotion.push((target.promotion_id, vec![(target, blocker)])),
        }
    }
    by_promotion.sort_by_key(|(promotion, _)| *promotion);
    let mut announced = 0;
    for (promotion, group) in by_promotion {
        lock_promotion(tx, promotion).await?;
        let mut events = Vec::new();
        for (target, blocker) in group {
            if queue::mark_queued_behind(tx.connection(), target.id, blocker.id()).await? {
                let app = ResourceRef {
                    id: target.app_id,
                    name: names.get(&target.app_id).cloned().unwrap_or_default(),
                };
                events.push(queued_event(target.id, app, blocker));
            }
        }
        announced += events.len();
        append_all(tx, promotion, events).await?;
    }
    Ok(announced)
}

/// Records, once per target and freeze, that `frozen` holds each of `waiting`, with
/// `target.queued` naming the freeze. Targets that started, finished or were told meanwhile
/// are skipped. Promotions are locked in id order, one event batch each.
pub async fn announce_frozen(
    tx: &mut Transaction,
    waiting: Vec<promotion_target::Model>,
    frozen: &FrozenStage,
) -> Result<usize> {
    let apps: Vec<Uuid> = waiting.iter().map(|target| target.app_id).collect();
    let names = store::apps::app_names(tx.connection(), &apps).await?;
    let mut by_promotion: Vec<(Uuid, Vec<promotion_target::Model>)> = Vec::new();
    for target in waiting {
        match by_promotion
            .iter_mut()
            .find(|(promotion, _)| *promotion == target.promotion_id)
        {
            Some((_, group)) => group.push(target),
            None => by_promotion.push((target.promotion_id, vec![target])),
        }
    }
    by_promotion.sort_by_key(|(promotion, _)| *promotion);
    let mut announced = 0;
    for (promotion, group) in by_promotion {
        lock_promotion(tx, promotion).await?;
        let mut events = Vec::new();
        for target in group {
            if queue::mark_waiting_for_freeze(tx.connection(), target.id, frozen.freeze_id).await? {
                let app = ResourceRef {
                    id: target.app_id,
                    name: names.get(&target.app_id).cloned().unwrap_or_default(),
                };
                events.push(frozen_event(target.id, app, frozen));
            }
        }
        announced += events.len();
        append_all(tx, promotion, events).await?;
    }
    Ok(announced)
}

/// `target.queued`: a freeze of the target's stage holds it.
fn frozen_event(target: Uuid, app: ResourceRef, frozen: &FrozenStage) -> EventDraft {
    EventDraft {
        kind: EventKind::TargetQueued,
        target: Some(target),
        app: Some(app.clone()),
        target_status: Some(TargetStatus::Pending),
        release: None,
        message: format!(
            "'{}' waits: {}",
            app.name,
            frozen.describe_without_pipeline()
        ),
        waiting_for: None,
        waiting_for_freeze: Some(FreezeRef::from(frozen)),
        actor: String::new(),
        comment: String::new(),
        promotion_status: None,
    }
}

/// `target.queued`: the target waits behind `blocker` on its app.
pub(super) fn queued_event(target: Uuid, app: ResourceRef, blocker: Blocker) -> EventDraft {
    let message = match blocker {
        Blocker::Promotion(id) => {
            format!(
                "'{}' is busy with promotion {id}; waiting for it to finish",
                app.name
            )
        }
        Blocker::Rollback(id) => {
            format!(
                "'{}' is being rolled back ({id}); waiting for it to finish",
                app.name
            )
        }
    };
    EventDraft {
        kind: EventKind::TargetQueued,
        target: Some(target),
        app: Some(app),
        target_status: Some(TargetStatus::Pending),
        release: None,
        message,
        waiting_for: match blocker {
            Blocker::Promotion(id) => Some(id),
            Blocker::Rollback(_) => None,
        },
        waiting_for_freeze: None,
        actor: String::new(),
        comment: String::new(),
        promotion_status: None,
    }
}
