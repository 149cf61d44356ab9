//! Approving and rejecting a promotion awaiting approval.

use super::Promotions;
use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::{Caller, Role},
        policy::Verdict,
    },
    error::{Error, Result},
    lifecycle::{self, Transaction},
    service::authorize,
    views::PromotionView,
};

const COMMENT_MAX_CHARS: usize = 1000;

/// The comment, trimmed; at most [`COMMENT_MAX_CHARS`] characters.
fn checked_comment(comment: Option<&str>, required: bool) -> Result<String> {
    let comment = comment.map(str::trim).unwrap_or_default();
    if required && comment.is_empty() {
        return Err(Error::invalid(
            "comment",
            "is required: say why the promotion is rejected",
        ));
    }
    if comment.chars().count() > COMMENT_MAX_CHARS {
        return Err(Error::invalid(
            "comment",
            format!("must be at most {COMMENT_MAX_CHARS} characters"),
        ));
    }
    Ok(comment.to_owned())
}

impl Promotions {
    /// Counts the caller's approval. The rules are checked in the contract's order: the
    /// promotion exists, the caller's role, the promotion awaits approval, the caller did not
    /// create or trigger it, and has not voted yet.
    pub async fn approve(
        &self,
        id: &str,
        comment: Option<&str>,
        caller: &Caller,
    ) -> Result<PromotionView> {
        self.vote(id, Verdict::Approved, comment, caller).await
    }

    /// Rejects the promotion: it ends `rejected`, its targets `canceled`. A comment is
    /// required.
    pub async fn reject(
        &self,
        id: &str,
        comment: Option<&str>,
        caller: &Caller,
    ) -> Result<PromotionView> {
        self.vote(id, Verdict::Rejected, comment, caller).await
    }

    async fn vote(
        &self,
        id: &str,
        verdict: Verdict,
        comment: Option<&str>,
        caller: &Caller,
    ) -> Result<PromotionView> {
        let model = self.find(id).await?;
        let action = match verdict {
            Verdict::Approved => "approving a promotion",
            Verdict::Rejected => "rejecting a promotion",
        };
        authorize(caller, Role::Write, action)?;
        let comment = checked_comment(comment, verdict == Verdict::Rejected)?;
        let mut tx = Transaction::begin(&self.db, &self.hub).await?;
        lifecycle::vote(&mut tx, model.id, &caller.name, verdict, &comment).await?;
        let (action, verb) = match verdict {
            Verdict::Approved => ("approval.grant", "approved"),
            Verdict::Rejected => ("approval.reject", "rejected"),
        };
        let summary = format!("{verb} promotion {}", model.id);
        AuditEntry::about_promotion(tx.connection(), action, &model, summary)
            .await?
            .with("comment", &comment)
            .record(tx.connection(), &Actor::of(caller))
            .await?;
        tx.commit().await?;
        self.hub.signal_work();
        self.get(id).await
    }
}
