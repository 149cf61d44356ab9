//! Writing a batch: the releases and moves in one store call, then the events with the
//! promotion's change, the verifications that began, and the auto-promotion triggers.

use super::{
    record_feeding_triggers, record_triggers, store, BatchWrite, Error, Result, TargetBatch,
    Transaction, Unwritten,
};
use crate::lifecycle::events::append_changing_status;

impl TargetBatch {
    /// Writes what the batch's transitions changed: the releases and the targets' moves
    /// together, then the events with the promotion's change, then the auto-promotion
    /// triggers of the releases delivered. A target taken over meanwhile, or a version
    /// another release took meanwhile, fails the whole transaction, which the caller
    /// drops, so the batch is retried as it was claimed.
    pub async fn write(&mut self, tx: &mut Transaction) -> Result<()> {
        let mut unwritten = std::mem::take(&mut self.unwritten);
        let expected = unwritten.moves.len();
        let written = store::targets::write_batch(
            tx.connection(),
            &self.worker,
            BatchWrite {
                new_releases: std::mem::take(&mut unwritten.new_releases),
                release_states: std::mem::take(&mut unwritten.release_states),
                moves: std::mem::take(&mut unwritten.moves),
            },
        )
        .await?;
        if !written.versions_taken.is_empty() {
            return Err(Error::Internal(format!(
                "promotion {}: another release took the version of a release it made; the batch will be numbered again",
                self.promotion.id
            )));
        }
        if written.moved.len() != expected {
            return Err(Error::Internal(format!(
                "promotion {}: a target was taken over while its batch ran",
                self.promotion.id
            )));
        }
        self.write_events(tx, unwritten).await
    }

    async fn write_events(&mut self, tx: &mut Transaction, unwritten: Unwritten) -> Result<()> {
        let promotion_id = self.promotion.id;
        if !unwritten.verifications.is_empty() {
            for (target_id, verification, deadline) in unwritten.verifications {
                store::verifications::begin_verification(
                    tx.connection(),
                    target_id,
                    verification,
                    deadline,
                )
                .await?;
            }
            tx.wake_verification = true;
        }
        append_changing_status(tx, promotion_id, unwritten.events, unwritten.promotion).await?;
        if unwritten.triggers.is_empty() {
            return Ok(());
        }
        tx.wake_engine |= match &self.feeding_auto_promotion {
            Some(feeding) => {
                let triggers = unwritten
                    .triggers
                    .into_iter()
                    .filter(|trigger| feeding.contains(&trigger.app_id))
                    .collect();
                record_feeding_triggers(tx.connection(), triggers).await?
            }
            None => record_triggers(tx.connection(), unwritten.triggers).await?,
        };
        Ok(())
    }
}
