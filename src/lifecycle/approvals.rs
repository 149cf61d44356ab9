//! Votes on a promotion awaiting approval. Each runs under the promotion's lock, so the
//! rules and the count are checked against the votes already committed: two approvals that
//! reach the count together start the promotion once. An approval also locks the target
//! apps first, as a create does, since it may put the targets in their apps' queues.

use uuid::Uuid;

use super::{
    cancel::cancel_pending_target,
    events::{append, EventDraft},
    lock_promotion, promotion_states_moving_to, Transaction,
};
use crate::{
    domain::{
        policy::{approval_conflict, Verdict},
        promotion::{EventKind, PromotionStatus, TargetStatus},
    },
    error::{Error, Result},
    store::{self, entities::promotion, is_unique_violation},
};

/// Records one token's vote on a promotion awaiting approval. An approval that reaches the
/// required count turns the promotion `pending`, and its targets join their apps' queues
/// now; a rejection ends it `rejected`, its targets `canceled`.
pub async fn vote(
    tx: &mut Transaction,
    promotion_id: Uuid,
    voter: &str,
    verdict: Verdict,
    comment: &str,
) -> Result<()> {
    if verdict == Verdict::Approved {
        // An approval may put the targets in their apps' queues: their apps are locked
        // first, as creates lock them and in the lock order (apps, then the promotion), so
        // that queue places are taken in the order they commit on every replica. A
        // promotion's targets never change, so reading them before the lock is safe.
        let apps = store::targets::target_apps_of_promotion(tx.connection(), promotion_id).await?;
        store::lock_apps_to_join_queues(tx.connection(), &apps).await?;
    }
    let current = lock_promotion(tx, promotion_id).await?;
    let status = PromotionStatus::parse(&current.status).ok_or_else(|| {
        Error::Internal(format!("promotion {promotion_id} has an unknown status"))
    })?;
    if !status.may_become(verdict.moves_promotion_to()) {
        return Err(Error::FailedPrecondition(format!(
            "promotion {promotion_id} is {}; only a promotion awaiting approval can be {}",
            current.status,
            verdict.as_str()
        )));
    }
    if verdict == Verdict::Approved {
        if let Some(reason) =
            approval_conflict(voter, &current.created_by, current.triggered_by.as_deref())
        {
            return Err(Error::PermissionDenied(format!(
                "token '{voter}' {reason}, so it cannot approve it; another token must"
            )));
        }
    }
    if let Some(earlier) = store::votes::vote_of(tx.connection(), promotion_id, voter).await? {
        return Err(already_voted(promotion_id, voter, &earlier.verdict));
    }
    match store::votes::insert_vote(tx.connection(), promotion_id, voter, verdict, comment).await {
        Ok(()) => {}
        Err(error) if is_unique_violation(&error) => {
            return Err(already_voted(promotion_id, voter, verdict.as_str()))
        }
        Err(error) => return Err(error.into()),
    }
    match verdict {
        Verdict::Approved => approve(tx, &current, voter, comment).await,
        Verdict::Rejected => reject(tx, &current, voter, comment).await,
    }
}

fn already_voted(promotion_id: Uuid, voter: &str, verdict: &str) -> Error {
    Error::AlreadyExists(format!(
        "token '{voter}' already voted on promotion {promotion_id} ({verdict}); each token votes once"
    ))
}

async fn approve(
    tx: &mut Transaction,
    current: &promotion::Model,
    voter: &str,
    comment: &str,
) -> Result<()> {
    let approvals = store::votes::approvals(tx.connection(), current.id).await?;
    let required = u64::try_from(current.required_approvals).unwrap_or_default();
    let reached = approvals >= required;
    if reached {
        // The targets join their apps' queues now, by the clock creates use.
        let now = store::queue_clock(tx.connection()).await?;
        let from = promotion_states_moving_to(PromotionStatus::Pending);
        store::promotions::move_status(
            tx.connection(),
            current.id,
            from,
            PromotionStatus::Pending,
            false,
            now,
        )
        .await?;
        store::targets::join_queues(tx.connection(), current.id, now).await?;
    } else {
        store::promotions::touch(tx.connection(), current.id, store::now()).await?;
    }
    let mut message = format!("approved by '{voter}' ({approvals} of {required})");
    if reached {
        message.push_str("; the promotion is pending and joins its apps' queues");
    }
    append(
        tx,
        current.id,
        EventDraft::vote(EventKind::ApprovalGranted, voter, comment, message),
    )
    .await
}

async fn reject(
    tx: &mut Transaction,
    current: &promotion::Model,
    voter: &str,
    comment: &str,
) -> Result<()> {
    let from = promotion_states_moving_to(PromotionStatus::Rejected);
    let rejected = PromotionStatus::Rejected;
    store::promotions::move_status(
        tx.connection(),
        current.id,
        from,
        rejected,
        true,
        store::now(),
    )
    .await?;
    append(
        tx,
        current.id,
        EventDraft::vote(
            EventKind::ApprovalRejected,
            voter,
            comment,
            format!("rejected by '{voter}': {comment}"),
        ),
    )
    .await?;
    let targets =
        store::targets::targets_of_promotion_in(tx.connection(), current.id, TargetStatus::Pending)
            .await?;
    let reason = format!("the promotion was rejected by '{voter}'");
    for target in &targets {
        cancel_pending_target(tx, target, &format!("canceled: {reason}"), Some(&reason)).await?;
    }
    append(
        tx,
        current.id,
        EventDraft::about_promotion(
            EventKind::PromotionFinished,
            format!("promotion rejected by '{voter}'"),
        ),
    )
    .await
}
