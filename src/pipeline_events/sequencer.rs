//! Numbering: one sequencer at a time (across every process sharing the database) moves
//! committed events from the outbox into their pipelines' streams, numbered in the order
//! they became visible to it. A change's transaction never waits for another change to
//! number its events, so changes in one pipeline commit as concurrently as before.

use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, TransactionTrait};

use crate::{error::Result, progress::EventHub, store};

/// Events numbered per transaction.
const BATCH: u64 = 1_000;
/// How often the outbox is looked at when nothing rang: a safety net for events whose
/// process stopped between their commit and ringing its sequencer, since every commit
/// that queues events rings its own process's sequencer.
const SAFETY_TICK: Duration = Duration::from_secs(5);
/// How long a sequencer that just numbered events waits for more before the next round.
const GATHER: Duration = Duration::from_millis(2);

/// Numbers every committed queued event, batch by batch; answers how many pipelines got
/// events.
pub async fn number_everything_queued(db: &DatabaseConnection) -> Result<usize> {
    let mut pipelines = 0;
    loop {
        let txn = db.begin().await?;
        store::pipeline_events::lock_sequencing(&txn).await?;
        let heads = store::pipeline_events::number_queued(&txn, BATCH).await?;
        txn.commit().await?;
        if heads.is_empty() {
            return Ok(pipelines);
        }
        pipelines += heads.len();
    }
}

/// Numbers queued events whenever a change commits in this process (and every few seconds),
/// until `stop`, and tells this process's pipeline streams when there are new ones.
pub async fn keep_numbering(
    db: DatabaseConnection,
    hub: Arc<EventHub>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SAFETY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let busy = match number_everything_queued(&db).await {
            Ok(0) => false,
            Ok(_) => {
                hub.signal_pipeline_events();
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot number pipeline events; trying again");
                false
            }
        };
        tokio::select! {
            _ = hub.read_model.pipeline_events_committed_rung() => {}
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if busy {
            // Under a steady stream of changes, gather a few more into one transaction.
            tokio::time::sleep(GATHER).await;
        }
    }
}
