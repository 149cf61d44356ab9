//! Claiming work: free targets, oldest promotion first, skipping (and announcing) those
//! queued behind another promotion on the same app. The lease and queueing rules live in
//! [`crate::lifecycle`]; this decides only which targets to try.

use std::collections::HashMap;

use uuid::Uuid;

use super::EngineContext;
use crate::{
    error::Result,
    lifecycle::{self, Transaction},
    store::entities::promotion_target,
};

/// Claims up to `limit` free targets.
pub(crate) async fn claim_targets(
    context: &EngineContext,
    limit: usize,
) -> Result<Vec<promotion_target::Model>> {
    let candidates = lifecycle::claimable_targets(&context.db, (limit * 4 + 16) as u64).await?;
    let mut claimed = Vec::new();
    let mut blocked_apps: HashMap<Uuid, Uuid> = HashMap::new();
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
                    Some((candidate.created_at, candidate.promotion_id)),
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
        if lifecycle::try_claim(
            &context.db,
            candidate.id,
            &settings.worker_id,
            settings.lease_ttl,
        )
        .await?
        {
            // Later targets on this app in later promotions must wait for this one.
            blocked_apps.insert(candidate.app_id, candidate.promotion_id);
            claimed.push(candidate);
        }
    }
    Ok(claimed)
}
