//! Claiming work: free targets first in their apps' queues, oldest promotion first; free
//! rollbacks, likewise queued; and announcing the targets that wait. The lease and
//! queueing rules live in [`crate::lifecycle`]; this decides only which work to try.

use uuid::Uuid;

use super::EngineContext;
use crate::{
    domain::stage::Stage,
    error::Result,
    lifecycle::{self, Transaction},
    store::entities::{promotion_target, rollback},
    store::{leases, queue, queue::QueuePlace},
};

/// Claims up to `limit` free targets first in their apps' queues, oldest promotion first,
/// passing those a freeze of the `frozen` stages holds.
pub(crate) async fn claim_targets(
    context: &EngineContext,
    limit: usize,
    frozen: &[(Uuid, Stage)],
) -> Result<Vec<promotion_target::Model>> {
    let heads = queue::queue_heads(&context.db, limit as u64, frozen).await?;
    let ids: Vec<Uuid> = heads.iter().map(|head| head.id).collect();
    let settings = &context.settings;
    let taken =
        leases::try_claim_targets(&context.db, &ids, &settings.worker_id, settings.lease_ttl)
            .await?;
    Ok(heads
        .into_iter()
        .filter(|head| taken.contains(&head.id))
        .collect())
}

/// Targets grouped by promotion, in the order each promotion first appears.
pub(super) fn by_promotion(
    targets: Vec<promotion_target::Model>,
) -> Vec<Vec<promotion_target::Model>> {
    let mut groups: Vec<Vec<promotion_target::Model>> = Vec::new();
    for target in targets {
        match groups
            .iter_mut()
            .find(|group| group[0].promotion_id == target.promotion_id)
        {
            Some(group) => group.push(target),
            None => groups.push(vec![target]),
        }
    }
    groups
}

/// Announces, once each, the pending targets that wait behind earlier work on their app.
pub(crate) async fn announce_waiting(context: &EngineContext) -> Result<()> {
    const BATCH: u64 = 256;
    let waiting = queue::unannounced_waiting(&context.db, BATCH).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    // One short transaction per promotion: holding many promotions' locks at once would
    // stall the engine's transactions on them.
    for group in by_promotion(waiting) {
        let mut tx = Transaction::begin(&context.db, &context.hub).await?;
        lifecycle::announce_waiting(&mut tx, group).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Claims up to `limit` free rollbacks whose app has no earlier unfinished work. A rollback
/// is a fix: targets a freeze holds do not hold it up.
pub(crate) async fn claim_rollbacks(
    context: &EngineContext,
    limit: usize,
    frozen: &[(Uuid, Stage)],
) -> Result<Vec<rollback::Model>> {
    let settings = &context.settings;
    let mut claimed = Vec::new();
    for candidate in leases::claimable::<rollback::Entity>(&context.db, limit as u64 * 2).await? {
        if claimed.len() >= limit {
            break;
        }
        let place = QueuePlace::Rollback {
            created_at: candidate.created_at,
            rollback: candidate.id,
        };
        if queue::queued_behind(&context.db, candidate.app_id, place, frozen)
            .await?
            .is_some()
        {
            continue;
        }
        if leases::try_claim::<rollback::Entity>(
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
