//! What freezes hold, for the engine: which stages are frozen now, telling the targets a
//! freeze holds that they wait for it, and when the engine must look again because a
//! freeze starts or ends. The engine keeps its own copy of the freezes and reads them from
//! the database again only when a pipeline changed, here or on another process (the same
//! notifications as every other write), or the read model resynced; nothing polls for
//! them.

use chrono::{DateTime, Utc};

use super::{claim::by_promotion, EngineContext};
use crate::{
    domain::freeze::{Freeze, FreezeState},
    error::Result,
    lifecycle::{self, Transaction},
    store,
    views::freeze_of_row,
};

/// The engine's own copy of the live freezes, read from the database again only when a
/// change may have touched a pipeline's freezes (see
/// [`crate::read_model::ReadModel::pipeline_changes`]), so that a busy engine never waits
/// on the read model's reloads.
#[derive(Default)]
pub(crate) struct FreezeCopy {
    read_at_change: Option<u64>,
    freezes: Vec<Freeze>,
}

/// Which stages are frozen now, and when that may next change.
pub(crate) async fn freeze_state(
    context: &EngineContext,
    copy: &mut FreezeCopy,
) -> Result<FreezeState> {
    // Read before the query: a change that lands during it moves the count again.
    let changes = context.hub.read_model.pipeline_changes();
    if copy.read_at_change != Some(changes) {
        let rows = store::freezes::live_freezes(&context.db, None, store::now()).await?;
        copy.freezes = rows.iter().map(freeze_of_row).collect::<Result<Vec<_>>>()?;
        copy.read_at_change = Some(changes);
    }
    let now = store::now();
    // A one-off freeze that ended stays in the copy until the next read; it holds nothing.
    Ok(FreezeState::of(&copy.freezes, now))
}

/// Tells each target a freeze holds, once per freeze, that it waits for it.
pub(crate) async fn announce_frozen(context: &EngineContext, state: &FreezeState) -> Result<()> {
    const BATCH: u64 = 256;
    for (pipeline, frozen) in &state.frozen {
        let held = store::queue::unannounced_held(
            &context.db,
            *pipeline,
            frozen.stage,
            frozen.freeze_id,
            BATCH,
        )
        .await?;
        for group in by_promotion(held) {
            let mut tx = Transaction::begin(&context.db, &context.hub).await?;
            lifecycle::announce_frozen(&mut tx, group, frozen).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// How long the engine may sleep: its poll interval, or less when a freeze starts or ends
/// sooner, waking just after the boundary.
pub(crate) fn sleep_until_boundary(
    poll_interval: std::time::Duration,
    next_boundary: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> std::time::Duration {
    const AFTER_BOUNDARY: std::time::Duration = std::time::Duration::from_millis(20);
    match next_boundary {
        Some(boundary) => (boundary - now)
            .to_std()
            .map(|until| (until + AFTER_BOUNDARY).min(poll_interval))
            .unwrap_or(AFTER_BOUNDARY),
        None => poll_interval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_engine_wakes_just_after_a_boundary_sooner_than_its_poll() {
        let now = store::now();
        let poll = Duration::from_millis(500);
        assert_eq!(sleep_until_boundary(poll, None, now), poll);
        let soon = now + chrono::Duration::milliseconds(100);
        assert_eq!(
            sleep_until_boundary(poll, Some(soon), now),
            Duration::from_millis(120)
        );
        let later = now + chrono::Duration::seconds(60);
        assert_eq!(sleep_until_boundary(poll, Some(later), now), poll);
        let passed = now - chrono::Duration::seconds(1);
        assert_eq!(
            sleep_until_boundary(poll, Some(passed), now),
            Duration::from_millis(20)
        );
    }
}
