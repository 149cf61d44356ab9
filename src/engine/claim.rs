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
    let mut claimed = Vec::new();
    let mut blocked_apps: HashMap<Uuid, Blocker> = HashMap::new();
    for candidate in candidates {
        if claimed.len() >= limit {
            break;
        }
        let blocker = match blocked_apps.get(&candidate.app_id).copied() {
            Some(blocker) => Some(blocker),
            None => {
                lifecycle::queued_behind(
                    &context.db,
                    candidate.app_id,
                    QueuePlace::Promotion {
                        created_at: candidate.created_at,
                        promotion: candidate.promotion_id,
                    },
                )
                .await?
            }
        };
        if let Some(blocker) = blocker {
            blocked_apps.insert(candidate.app_id, blocker);
            let mut tx = Transaction::begin(&context.db).await?;
            lifecycle::mark_queued(&mut tx, &candidate, blocker).await?;
            tx.commit(&context.hub).await?;
            continue;
        }
        let settings = &context.settings;
        if lifecycle::try_claim::<promotion_target::Entity>(
            &context.db,
            candidate.id,
            &settings.worker_id,
            settings.lease_ttl,
        )
        .await?
        {
            // Later targets on this app in later promotions must wait for this one.
            blocked_apps.insert(candidate.app_id, Blocker::Promotion(candidate.promotion_id));
            claimed.push(candidate);
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
