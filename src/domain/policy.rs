//! Promotion policies: what a coupling asks of promotions into its app (auto-promotion and
//! approvals), who may change that, and who may vote on a promotion awaiting approval.

use super::{access::Role, InvalidField};

/// The most approvals a coupling can require.
pub const MAX_REQUIRED_APPROVALS: u32 = 5;

/// The name recorded as the creator of promotions the service makes itself.
pub const AUTO_PROMOTION_CREATOR: &str = "auto-promotion";

/// A coupling's promotion policy. Both parts are off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PromotionPolicy {
    /// Eligible releases of the previous stage are promoted here without anyone asking.
    pub auto_promote: bool,
    /// Approvals a promotion into this app needs before it runs.
    pub required_approvals: u32,
}

/// The parts of a policy a request changes; absent parts stay as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyChange {
    pub auto_promote: Option<bool>,
    pub required_approvals: Option<u32>,
}

impl PolicyChange {
    pub fn is_empty(&self) -> bool {
        self.auto_promote.is_none() && self.required_approvals.is_none()
    }

    /// Refuses an approval count out of range, naming the field under `prefix`.
    pub fn check(&self, prefix: &str) -> Result<(), InvalidField> {
        match self.required_approvals {
            Some(count) if count > MAX_REQUIRED_APPROVALS => Err(InvalidField::new(
                format!("{prefix}.required_approvals"),
                format!("must be between 0 and {MAX_REQUIRED_APPROVALS}, not {count}"),
            )),
            _ => Ok(()),
        }
    }

    /// `policy` with this change applied.
    pub fn applied_to(&self, policy: PromotionPolicy) -> PromotionPolicy {
        PromotionPolicy {
            auto_promote: self.auto_promote.unwrap_or(policy.auto_promote),
            required_approvals: self.required_approvals.unwrap_or(policy.required_approvals),
        }
    }
}

/// The role a change from `current` to `next` needs: lowering the approvals weakens a gate
/// and needs elevated access; anything else, `write`.
pub fn role_to_change(current: PromotionPolicy, next: PromotionPolicy) -> Role {
    if next.required_approvals < current.required_approvals {
        Role::Admin
    } else {
        Role::Write
    }
}

/// A vote on a promotion awaiting approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    Rejected,
}

impl Verdict {
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
        }
    }

    pub fn parse(value: &str) -> Option<Verdict> {
        [Verdict::Approved, Verdict::Rejected]
            .into_iter()
            .find(|verdict| verdict.as_str() == value)
    }

    /// The state a vote with this verdict may move its promotion to: a promotion takes
    /// votes only while it may still move there.
    pub const fn moves_promotion_to(self) -> super::promotion::PromotionStatus {
        match self {
            Verdict::Approved => super::promotion::PromotionStatus::Pending,
            Verdict::Rejected => super::promotion::PromotionStatus::Rejected,
        }
    }
}

/// Why a token may not approve a promotion: it created it, or triggered the
/// auto-promotion. Admins get no exemption.
pub fn approval_conflict(
    voter: &str,
    created_by: &str,
    triggered_by: Option<&str>,
) -> Option<&'static str> {
    if triggered_by == Some(voter) {
        Some("triggered this auto-promotion")
    } else if created_by == voter {
        Some("created this promotion")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(auto_promote: bool, required_approvals: u32) -> PromotionPolicy {
        PromotionPolicy {
            auto_promote,
            required_approvals,
        }
    }

    #[test]
    fn lowering_approvals_needs_elevated_access_and_anything_else_write() {
        assert_eq!(
            role_to_change(policy(false, 2), policy(false, 1)),
            Role::Admin
        );
        assert_eq!(
            role_to_change(policy(false, 2), policy(false, 3)),
            Role::Write
        );
        assert_eq!(
            role_to_change(policy(true, 2), policy(false, 2)),
            Role::Write
        );
        assert_eq!(
            role_to_change(policy(false, 0), policy(true, 0)),
            Role::Write
        );
    }

    #[test]
    fn a_change_keeps_what_it_leaves_out() {
        let change = PolicyChange {
            auto_promote: Some(true),
            required_approvals: None,
        };
        assert_eq!(change.applied_to(policy(false, 3)), policy(true, 3));
        assert!(PolicyChange::default().is_empty());
    }

    #[test]
    fn approvals_above_the_maximum_are_refused_by_field() {
        let change = PolicyChange {
            auto_promote: None,
            required_approvals: Some(6),
        };
        let error = change.check("promotion_policy").unwrap_err();
        assert_eq!(error.field, "promotion_policy.required_approvals");
        assert!(PolicyChange {
            required_approvals: Some(5),
            ..Default::default()
        }
        .check("promotion_policy")
        .is_ok());
    }

    #[test]
    fn creators_and_triggerers_cannot_approve() {
        assert!(approval_conflict("ci", "ci", None).is_some());
        assert!(approval_conflict("ci", AUTO_PROMOTION_CREATOR, Some("ci")).is_some());
        assert!(approval_conflict("alice", AUTO_PROMOTION_CREATOR, Some("ci")).is_none());
        assert_eq!(Verdict::parse("rejected"), Some(Verdict::Rejected));
    }
}
