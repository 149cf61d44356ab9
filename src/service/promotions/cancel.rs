//! Canceling a promotion on a caller's request.

use super::Promotions;
use crate::{
    audit::{Actor, AuditEntry},
    domain::access::{Caller, Role},
    error::Result,
    lifecycle::{self, Transaction},
    service::authorize,
    views::PromotionView,
};

impl Promotions {
    /// Cancels the promotion's pending targets; running ones finish. The promotion ends
    /// `canceled` once nothing runs any more.
    pub async fn cancel(&self, id: &str, caller: &Caller) -> Result<PromotionView> {
        authorize(caller, Role::Write, "canceling a promotion")?;
        let model = self.find(id).await?;
        let mut tx = Transaction::begin(&self.db, &self.hub).await?;
        lifecycle::cancel_promotion(&mut tx, model.id, &caller.name).await?;
        let summary = format!("canceled promotion {}", model.id);
        AuditEntry::about_promotion(tx.connection(), "promotion.cancel", &model, summary)
            .await?
            .record(tx.connection(), &Actor::of(caller))
            .await?;
        tx.commit().await?;
        self.hub.signal_work();
        self.get(id).await
    }
}
