//! Promotion and target states with their transition table, the aggregate outcome, the
//! progress-event types, and the safe-promotion config drift.

use std::{collections::BTreeSet, fmt};

use super::ResourceRef;

/// The state of a whole promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionStatus {
    Pending,
    Running,
    /// Every target succeeded.
    Successful,
    /// Every target failed.
    Failed,
    /// Some targets succeeded and some failed.
    PartiallyFailed,
    /// Canceled before it finished.
    Canceled,
    /// Stored, and waiting for the approvals its targets' couplings require; nothing of it
    /// runs, and it holds no place in any app's queue.
    AwaitingApproval,
    /// Refused by an approver.
    Rejected,
}

impl PromotionStatus {
    pub const ALL: [PromotionStatus; 8] = [
        PromotionStatus::Pending,
        PromotionStatus::Running,
        PromotionStatus::Successful,
        PromotionStatus::Failed,
        PromotionStatus::PartiallyFailed,
        PromotionStatus::Canceled,
        PromotionStatus::AwaitingApproval,
        PromotionStatus::Rejected,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PromotionStatus::Pending => "pending",
            PromotionStatus::Running => "running",
            PromotionStatus::Successful => "successful",
            PromotionStatus::Failed => "failed",
            PromotionStatus::PartiallyFailed => "partially_failed",
            PromotionStatus::Canceled => "canceled",
            PromotionStatus::AwaitingApproval => "awaiting_approval",
            PromotionStatus::Rejected => "rejected",
        }
    }

    pub fn parse(value: &str) -> Option<PromotionStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// The transition table: whether a promotion in this state may move to `next`.
    ///
    /// - A promotion that needs approvals waits for them, and is then approved (`pending`)
    ///   or rejected. Canceled, it ends `canceled`; every target's app deleted, `failed`.
    /// - A pending promotion starts running when its first target does. Before that it
    ///   can only be canceled, or fail because every target's app was deleted.
    /// - A running promotion ends with the aggregate of its targets' outcomes.
    /// - Every other state is final.
    pub const fn may_become(self, next: PromotionStatus) -> bool {
        use PromotionStatus::*;
        matches!(
            (self, next),
            (AwaitingApproval, Pending | Rejected | Canceled | Failed)
                | (Pending, Running | Canceled | Failed)
                | (Running, Successful | Failed | PartiallyFailed | Canceled)
        )
    }

    /// Every state a promotion may move to `next` from, by the transition table: what a
    /// guard on that move accepts.
    pub fn sources_of(next: PromotionStatus) -> Vec<PromotionStatus> {
        Self::ALL
            .into_iter()
            .filter(|from| from.may_become(next))
            .collect()
    }

    /// A final state is one the transition table leads nowhere from.
    pub fn is_final(self) -> bool {
        !Self::ALL.into_iter().any(|next| self.may_become(next))
    }

    /// The states of a promotion that still has work to do or to finish: those that are
    /// not final.
    pub fn unfinished() -> impl Iterator<Item = PromotionStatus> {
        Self::ALL.into_iter().filter(|status| !status.is_final())
    }
}

impl fmt::Display for PromotionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one target app within a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetStatus {
    Pending,
    Running,
    /// Deployed into an app whose coupling has a verification, and waiting for its
    /// verdict (and, when it failed, for the rollback): it keeps its app's queue.
    Verifying,
    Succeeded,
    Failed,
    Canceled,
}

impl TargetStatus {
    pub const ALL: [TargetStatus; 6] = [
        TargetStatus::Pending,
        TargetStatus::Running,
        TargetStatus::Verifying,
        TargetStatus::Succeeded,
        TargetStatus::Failed,
        TargetStatus::Canceled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Pending => "pending",
            TargetStatus::Running => "running",
            TargetStatus::Verifying => "verifying",
            TargetStatus::Succeeded => "succeeded",
            TargetStatus::Failed => "failed",
            TargetStatus::Canceled => "canceled",
        }
    }

    pub fn parse(value: &str) -> Option<TargetStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// The transition table: whether a target (or a rollback, which moves the same way) in
    /// this state may move to `next`.
    ///
    /// - A pending target starts running when a worker claims it, or is canceled: by a
    ///   caller, a rejection, a newer auto-promotion, or its app's deletion.
    /// - A running target ends with its deploy's outcome, or starts verifying when its
    ///   coupling has a verification; it is canceled when its app is deleted.
    /// - A verifying target ends with its verification's verdict (after the rollback, when
    ///   it failed), or is canceled when its app is deleted.
    /// - Every other state is final.
    pub const fn may_become(self, next: TargetStatus) -> bool {
        use TargetStatus::*;
        matches!(
            (self, next),
            (Pending, Running | Canceled)
                | (Running, Verifying | Succeeded | Failed | Canceled)
                | (Verifying, Succeeded | Failed | Canceled)
        )
    }

    /// Whether a worker deploys in this state: the states the engine claims targets in.
    /// A verifying target holds its app's queue without a deploy worker.
    pub const fn is_deploying(self) -> bool {
        matches!(self, TargetStatus::Pending | TargetStatus::Running)
    }

    /// Every state a target may move to `next` from, by the transition table: what a guard
    /// on that move accepts.
    pub fn sources_of(next: TargetStatus) -> Vec<TargetStatus> {
        Self::ALL
            .into_iter()
            .filter(|from| from.may_become(next))
            .collect()
    }

    /// A final state is one the transition table leads nowhere from.
    pub fn is_final(self) -> bool {
        !Self::ALL.into_iter().any(|next| self.may_become(next))
    }

    /// The states of a target that still needs a worker: those that are not final.
    pub fn unfinished() -> impl Iterator<Item = TargetStatus> {
        Self::ALL.into_iter().filter(|status| !status.is_final())
    }

    /// How the target counts in its promotion's outcome: a target canceled because its app
    /// was deleted counts as failed, since the release never reached the app.
    pub fn for_outcome(self, app_deleted: bool) -> TargetStatus {
        if self == TargetStatus::Canceled && app_deleted {
            TargetStatus::Failed
        } else {
            self
        }
    }
}

impl fmt::Display for TargetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a promotion whose targets are all final, or `None` while any is not.
/// A promotion that was canceled, or that has a canceled target, ended `canceled`.
pub fn aggregate_status(
    targets: &[TargetStatus],
    cancel_requested: bool,
) -> Option<PromotionStatus> {
    if targets.is_empty() || targets.iter().any(|status| !status.is_final()) {
        return None;
    }
    if cancel_requested {
        return Some(PromotionStatus::Canceled);
    }
    let count = |wanted: TargetStatus| targets.iter().filter(|s| **s == wanted).count();
    let (succeeded, failed, canceled) = (
        count(TargetStatus::Succeeded),
        count(TargetStatus::Failed),
        count(TargetStatus::Canceled),
    );
    Some(if canceled > 0 {
        PromotionStatus::Canceled
    } else if failed == 0 {
        PromotionStatus::Successful
    } else if succeeded == 0 {
        PromotionStatus::Failed
    } else {
        PromotionStatus::PartiallyFailed
    })
}

/// The progress events of a promotion, numbered from 1 in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    PromotionCreated,
    TargetQueued,
    TargetRunning,
    TargetReleaseCreated,
    TargetSucceeded,
    TargetFailed,
    TargetCanceled,
    PromotionFinished,
    PromotionAwaitingApproval,
    ApprovalGranted,
    ApprovalRejected,
    TargetVerifying,
    TargetVerified,
    TargetVerificationFailed,
    TargetRolledBack,
}

impl EventKind {
    pub const ALL: [EventKind; 15] = [
        EventKind::PromotionCreated,
        EventKind::TargetQueued,
        EventKind::TargetRunning,
        EventKind::TargetReleaseCreated,
        EventKind::TargetSucceeded,
        EventKind::TargetFailed,
        EventKind::TargetCanceled,
        EventKind::PromotionFinished,
        EventKind::PromotionAwaitingApproval,
        EventKind::ApprovalGranted,
        EventKind::ApprovalRejected,
        EventKind::TargetVerifying,
        EventKind::TargetVerified,
        EventKind::TargetVerificationFailed,
        EventKind::TargetRolledBack,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::PromotionCreated => "promotion.created",
            EventKind::TargetQueued => "target.queued",
            EventKind::TargetRunning => "target.running",
            EventKind::TargetReleaseCreated => "target.release_created",
            EventKind::TargetSucceeded => "target.succeeded",
            EventKind::TargetFailed => "target.failed",
            EventKind::TargetCanceled => "target.canceled",
            EventKind::PromotionFinished => "promotion.finished",
            EventKind::PromotionAwaitingApproval => "promotion.awaiting_approval",
            EventKind::ApprovalGranted => "approval.granted",
            EventKind::ApprovalRejected => "approval.rejected",
            EventKind::TargetVerifying => "target.verifying",
            EventKind::TargetVerified => "target.verified",
            EventKind::TargetVerificationFailed => "target.verification_failed",
            EventKind::TargetRolledBack => "target.rolled_back",
        }
    }

    pub fn parse(value: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    /// An approver's vote: the event names the voter and carries the comment.
    pub fn is_vote(self) -> bool {
        matches!(
            self,
            EventKind::ApprovalGranted | EventKind::ApprovalRejected
        )
    }

    /// An event after which the target app's current release may be another: a deploy
    /// that succeeded or began verifying, a failed verification (its release marked
    /// failed), and a rollback.
    pub fn changes_current_release(self) -> bool {
        matches!(
            self,
            EventKind::TargetSucceeded
                | EventKind::TargetVerifying
                | EventKind::TargetVerificationFailed
                | EventKind::TargetRolledBack
        )
    }

    /// The last event of every promotion: a stream ends after it.
    pub fn ends_stream(self) -> bool {
        self == EventKind::PromotionFinished
    }
}

/// Config keys that differ between a source app and one target under safe promotion.
/// Values are never compared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyDrift {
    /// Keys the source has and the target lacks.
    pub missing_on_target: Vec<String>,
    /// Keys the target has and the source lacks.
    pub missing_on_source: Vec<String>,
}

impl KeyDrift {
    pub fn between<'a>(
        source: impl IntoIterator<Item = &'a String>,
        target: impl IntoIterator<Item = &'a String>,
    ) -> KeyDrift {
        let source: BTreeSet<&String> = source.into_iter().collect();
        let target: BTreeSet<&String> = target.into_iter().collect();
        KeyDrift {
            missing_on_target: source.difference(&target).map(|k| k.to_string()).collect(),
            missing_on_source: target.difference(&source).map(|k| k.to_string()).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.missing_on_target.is_empty() && self.missing_on_source.is_empty()
    }
}

/// Config keys one target and the source do not share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDrift {
    pub app: ResourceRef,
    pub missing_on_target: Vec<String>,
    pub missing_on_source: Vec<String>,
}

#[cfg(test)]
mod tests;
