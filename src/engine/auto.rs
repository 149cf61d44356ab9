//! Evaluating auto-promotion triggers: the rules are in [`crate::lifecycle`]; this takes
//! the triggers in order, one transaction each, so that one failing is retried on a later
//! pass without holding up the others.

use super::EngineContext;
use crate::{
    error::Result,
    lifecycle::{self, Transaction},
};

/// Triggers evaluated per pass.
const TRIGGERS_PER_PASS: u64 = 32;

/// Evaluates pending triggers. Returns how many auto-promotions were stored.
pub(crate) async fn evaluate_triggers(context: &EngineContext) -> Result<usize> {
    let triggers = lifecycle::pending_triggers(&context.db, TRIGGERS_PER_PASS).await?;
    let mut created = 0;
    for trigger in triggers {
        let mut tx = Transaction::begin(&context.db, &context.hub).await?;
        match lifecycle::evaluate_trigger(&mut tx, &trigger).await {
            Ok(promotion) => {
                tx.commit().await?;
                if let Some(promotion) = promotion {
                    created += 1;
                    crate::metrics::record_promotion_created("auto");
                    tracing::info!(
                        %promotion,
                        app = %trigger.app_id,
                        release = %trigger.release_id,
                        triggered_by = %trigger.triggered_by,
                        "auto-promotion created"
                    );
                }
            }
            Err(error) => {
                drop(tx);
                tracing::warn!(
                    error = ?error,
                    trigger = %trigger.id,
                    "evaluating an auto-promotion trigger failed; it will be retried"
                );
            }
        }
    }
    if created > 0 {
        context.hub.signal_work();
    }
    Ok(created)
}
