//! Claiming work: free targets, oldest promotion first, skipping (and announcing) those
//! queued behind earlier work on the same app; and free rollbacks, likewise queued. The lease and queueing rules live in
//! [`crate::lifecycle`]; this decides only which targets to try.

use std::collections::HashMap;

use uuid::Uuid;

use super::EngineContext;
use crate::{
    error::Result,
    lifecycle::{self, Blocker, QueuePlace, Transaction},
    store::entities::{promotion_target, rollback},
};

/// Claims up to `limit` free targets.
pub(crate) async fn claim_targets(
    context: &EngineContext,
    limit: usize,
) -> Result<Vec<promotion_target::Model>> {
    let candidates = lifecycle::claimable_targets(&context.db, (limit * 4 + 16) as u64).await?;
    let settings = &context.settings;
    let mut claimed = Vec::new();
    let mut blocked_apps: HashMap<Uuid, Blocker> = HashMap::new();
    // Candidates come in queue order; those with one place in it (one promotion's targets
    // created together) are checked and claimed together.
    let mut rest = candidates.as_slice();
    while let Some(first) = rest.first() {
        if claimed.len() >= limit {
            break;
        }
        let same_place = rest
            .iter()
            .take_while(|c| c.promotion_id == first.promotion_id && c.queued_at == first.queued_at)
            .count();
        let (group, later) = rest.split_at(same_place);
        rest = later;
        let unknown: Vec<Uuid> = group
            .iter()
            .map(|c| c.app_id)
            .filter(|app| !blocked_apps.contains_key(app))
            .collect();
        let Some(queued_at) = first.queued_at else {
            continue;
        };
        let place = QueuePlace::Promotion {
            queued_at,
            promotion: first.promotion_id,
        };
        let found = lifecycle::queued_behind_each(&context.db, &unknown, place).await?;
        let mut free = Vec::new();
        for candidate in group {
            let blocker = blocked_apps
                .get(&candidate.app_id)
                .or(found.get(&candidate.app_id))
                .copied();
            if let Some(blocker) = blocker {
                blocked_apps.insert(candidate.app_id, blocker);
                let mut tx = Transaction::begin(&context.db).await?;
                lifecycle::mark_queued(&mut tx, candidate, blocker).await?;
                tx.commit(&context.hub).await?;
            } else if claimed.len() + free.len() < limit {
                free.push(candidate);
            }
        }
        let ids: Vec<Uuid> = free.iter().map(|c| c.id).collect();
        let taken = lifecycle::try_claim_targets(
            &context.db,
            &ids,
            &settings.worker_id,
            settings.lease_ttl,
        )
        .await?;
        for candidate in free {
            // Later targets on this app in later promotions must wait for this one.
            blocked_apps.insert(candidate.app_id, Blocker::Promotion(candidate.promotion_id));
            if taken.contains(&candidate.id) {
                claimed.push(candidate.clone());
            }
        }
    }
    Ok(claimed)
}

/// Claims up to `limit` free rollbacks whose app has no earlier unfinished work.
pub(crate) async fn claim_rollbacks(
    context: &EngineContext,
    limit: usize,
) -> Result<Vec<rollback::Model>> {
    let settings = &context.settings;
    let mut claimed = Vec::new();
    for candidate in lifecycle::claimable::<rollback::Entity>(&context.db, limit as u64 * 2).await?
    {
        if claimed.len() >= limit {
            break;
        }
        let place = QueuePlace::Rollback {
            created_at: candidate.created_at,
            rollback: candidate.id,
        };
        if lifecycle::queued_behind(&context.db, candidate.app_id, place)
            .await?
            .is_some()
        {
            continue;
        }
        if lifecycle::try_claim::<rollback::Entity>(
            &context.db,
            candidate.id,
            &settings.worker_id,
            settings.lease_ttl,
        )
        .await?
        {
            claimed.push(candidate);
        }
    }
    Ok(claimed)
}
