//! Promotions: validating a request in the contract's order and storing it for the engine
//! (`create`, resolving its names from memory when it can: `memory`), the gates it must
//! pass (`gates`), approvals, canceling (`cancel`), and reading promotions, their targets
//! and their progress (`reads`). The types a create's parts share live here.

mod approvals;
mod cancel;
mod create;
mod gates;
mod memory;
mod reads;

pub use reads::{promotion_view, PromotionPage};

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};

use crate::{
    domain::{policy::PromotionPolicy, stage::Stage},
    progress::EventHub,
    views::{PromotionPlan, PromotionView, ResourceRef},
};

/// A create's pipeline, source and targets, resolved from memory ([`memory`]) or from the
/// database ([`create`]): the same typed values either way.
pub(super) struct Resolution {
    pub pipeline: ResourceRef,
    pub source: ResourceRef,
    pub source_stage: Stage,
    pub target_stage: Stage,
    pub targets: Vec<ResolvedTarget>,
}

/// A target app with what its coupling requires.
#[derive(Debug, Clone)]
pub(super) struct ResolvedTarget {
    pub app: ResourceRef,
    pub required_contexts: Vec<String>,
    pub policy: PromotionPolicy,
    pub verification: Option<crate::domain::verification::Verification>,
}

/// The approvals a promotion into these targets needs: the most any of their couplings
/// requires.
pub(super) fn required_approvals(targets: &[ResolvedTarget]) -> u32 {
    targets
        .iter()
        .map(|target| target.policy.required_approvals)
        .max()
        .unwrap_or_default()
}

/// What a promotion request asks of the gates, from the wire's optional `safe` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Safety {
    /// `safe` left out: status checks are enforced, config drift is not checked.
    #[default]
    Unspecified,
    /// `safe: true`: refuse when config var keys differ between source and targets.
    CheckConfigDrift,
    /// `safe: false`: an elevated caller bypasses unmet status checks.
    BypassStatusChecks,
}

impl Safety {
    pub fn from_flag(safe: Option<bool>) -> Self {
        match safe {
            None => Safety::Unspecified,
            Some(true) => Safety::CheckConfigDrift,
            Some(false) => Safety::BypassStatusChecks,
        }
    }

    fn fingerprint_part(self) -> &'static str {
        match self {
            Safety::Unspecified => "",
            Safety::CheckConfigDrift => "safe",
            Safety::BypassStatusChecks => "unsafe",
        }
    }
}

/// A promotion request as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct NewPromotion {
    pub pipeline: String,
    pub source_app: String,
    /// The release to promote; `None` promotes the source app's current release.
    pub source_release: Option<String>,
    /// The target apps; empty means every app at the next stage.
    pub targets: Vec<String>,
    pub safety: Safety,
    pub dry_run: bool,
    pub request_id: Option<String>,
}

impl NewPromotion {
    /// Identifies the request for idempotent retries: the same key must come with the same
    /// request.
    fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.pipeline.as_str(),
            self.source_app.as_str(),
            self.source_release.as_deref().unwrap_or(""),
            &self.targets.join("\u{1f}"),
            self.safety.fingerprint_part(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0x1e]);
        }
        hex::encode(hasher.finalize())
    }
}

/// What creating a promotion produced.
#[derive(Debug, Clone)]
pub enum CreatedPromotion {
    /// A new promotion, stored and queued for the engine.
    Created(PromotionView),
    /// The promotion an earlier request with the same `request_id` created.
    Replayed(PromotionView),
    /// A dry run's plan; nothing was written.
    Planned(PromotionPlan),
}

#[derive(Clone)]
pub struct Promotions {
    db: DatabaseConnection,
    hub: Arc<EventHub>,
}

impl Promotions {
    /// The database the use cases read, for reads that span several of them.
    pub(crate) fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn new(db: DatabaseConnection, hub: Arc<EventHub>) -> Self {
        Self { db, hub }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_the_request() {
        let base = NewPromotion {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            ..Default::default()
        };
        let same = base.clone();
        assert_eq!(base.fingerprint(), same.fingerprint());
        let safer = NewPromotion {
            safety: Safety::CheckConfigDrift,
            ..base.clone()
        };
        assert_ne!(base.fingerprint(), safer.fingerprint());
        let targeted = NewPromotion {
            targets: vec!["shop-stg".into()],
            ..base.clone()
        };
        assert_ne!(base.fingerprint(), targeted.fingerprint());
    }

    #[test]
    fn the_safe_flag_has_three_meanings() {
        assert_eq!(Safety::from_flag(None), Safety::Unspecified);
        assert_eq!(Safety::from_flag(Some(true)), Safety::CheckConfigDrift);
        assert_eq!(Safety::from_flag(Some(false)), Safety::BypassStatusChecks);
    }
}
