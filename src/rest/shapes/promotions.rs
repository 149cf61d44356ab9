//! The JSON shapes of promotions: the promotion, its targets, the dry run's plan, and the
//! progress events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{FreezeRef, IdRef, NamedRef};
use crate::{
    domain::{
        names::akkeris_app_and_space,
        promotion::{PromotionStatus, TargetStatus},
    },
    rest::extract::Vocabulary,
    views,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseIdVersion {
    pub id: Uuid,
    pub version: i64,
}

impl From<views::ReleaseRef> for ReleaseIdVersion {
    fn from(release: views::ReleaseRef) -> Self {
        Self {
            id: release.id,
            version: release.version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionSource {
    /// `name` is the Akkeris app name: the source app's name up to its first `-`.
    pub app: NamedRef,
    /// The Akkeris space: the rest of the name, so that `<app>-<space>` is the whole name.
    pub space: SpaceName,
    pub release: ReleaseIdVersion,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SpaceName {
    pub name: String,
}

impl PromotionSource {
    fn new(app: views::ResourceRef, release: views::ReleaseRef) -> Self {
        let (app_name, space) = akkeris_app_and_space(&app.name);
        Self {
            app: NamedRef {
                id: app.id,
                name: app_name.to_owned(),
            },
            space: SpaceName {
                name: space.to_owned(),
            },
            release: release.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusCheck {
    pub app: NamedRef,
    #[schema(value_type = crate::rest::openapi::StageName)]
    pub stage: &'static str,
    pub context: String,
}

impl From<views::CheckRef> for StatusCheck {
    fn from(check: views::CheckRef) -> Self {
        Self {
            app: NamedRef {
                id: check.app_id,
                name: check.app_name,
            },
            stage: check.stage.as_str(),
            context: check.context,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Promotion {
    pub id: Uuid,
    pub pipeline: NamedRef,
    pub source: PromotionSource,
    #[schema(value_type = crate::rest::openapi::PromotionStatusName)]
    pub status: &'static str,
    pub safe: bool,
    pub created_by: String,
    pub overridden_checks: Vec<StatusCheck>,
    /// The freezes an admin broke glass through with `safe: false`.
    pub overridden_freezes: Vec<FreezeRef>,
    /// For an auto-promotion: the token whose release or status triggered it.
    pub triggered_by: Option<String>,
    pub required_approvals: u32,
    pub approvals: Vec<Approval>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Approval {
    pub by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

impl From<views::PromotionView> for Promotion {
    fn from(view: views::PromotionView) -> Self {
        Self {
            id: view.id,
            pipeline: view.pipeline.into(),
            source: PromotionSource::new(view.source_app, view.source_release),
            status: view.status.as_str(),
            safe: view.safe,
            created_by: view.created_by,
            overridden_checks: view
                .overridden_checks
                .into_iter()
                .map(StatusCheck::from)
                .collect(),
            overridden_freezes: view
                .overridden_freezes
                .into_iter()
                .map(FreezeRef::from)
                .collect(),
            triggered_by: view.triggered_by,
            required_approvals: view.required_approvals,
            approvals: view
                .approvals
                .into_iter()
                .map(|approval| Approval {
                    by: approval.by,
                    comment: approval.comment,
                    created_at: approval.created_at,
                })
                .collect(),
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionTarget {
    pub id: Uuid,
    pub pipeline_promotion: IdRef,
    pub app: NamedRef,
    pub release: Option<ReleaseIdVersion>,
    #[schema(value_type = crate::rest::openapi::TargetStatusName)]
    pub status: &'static str,
    pub error_message: String,
    /// Its verification, once it was deployed into an app whose coupling has one.
    pub verification: Option<TargetVerification>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationResult {
    pub context: String,
    /// The status's state, or `missing`.
    pub state: String,
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetVerification {
    /// `pending`, `passed` or `failed`.
    pub state: &'static str,
    pub deadline: Option<DateTime<Utc>>,
    pub results: Vec<VerificationResult>,
    /// The release deployed to roll the app back after a failed verification.
    pub rollback_release: Option<ReleaseIdVersion>,
}

impl From<views::TargetVerificationView> for TargetVerification {
    fn from(view: views::TargetVerificationView) -> Self {
        Self {
            state: view.state.as_str(),
            deadline: view.deadline,
            results: view
                .results
                .into_iter()
                .map(|result| VerificationResult {
                    context: result.context,
                    state: result.state,
                    description: result.description,
                })
                .collect(),
            rollback_release: view.rollback_release.map(ReleaseIdVersion::from),
        }
    }
}

impl From<views::TargetView> for PromotionTarget {
    fn from(view: views::TargetView) -> Self {
        Self {
            id: view.id,
            pipeline_promotion: IdRef {
                id: view.promotion_id,
            },
            app: view.app.into(),
            release: view.release.map(ReleaseIdVersion::from),
            status: view.status.as_str(),
            error_message: view.error_message,
            verification: view.verification.map(TargetVerification::from),
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedTarget {
    pub app: NamedRef,
    pub busy_with: Option<IdRef>,
    /// The verification the target would get after its deploy.
    pub verification: Option<super::Verification>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckVerdict {
    pub app: NamedRef,
    #[schema(value_type = crate::rest::openapi::StageName)]
    pub stage: &'static str,
    pub context: String,
    #[schema(value_type = Option<crate::rest::openapi::StatusStateName>)]
    pub state: Option<&'static str>,
    pub satisfied: bool,
    pub overridden: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetDrift {
    pub app: NamedRef,
    pub missing_on_target: Vec<String>,
    pub missing_on_source: Vec<String>,
}

/// The answer to a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionPlan {
    pub dry_run: bool,
    pub pipeline: NamedRef,
    pub source: PromotionSource,
    #[schema(value_type = crate::rest::openapi::StageName)]
    pub source_stage: &'static str,
    #[schema(value_type = crate::rest::openapi::StageName)]
    pub target_stage: &'static str,
    pub targets: Vec<PlannedTarget>,
    pub checks: Vec<CheckVerdict>,
    pub drift: Vec<TargetDrift>,
    pub safe: bool,
    pub required_approvals: u32,
    /// The freezes an admin's `safe: false` would break glass through.
    pub overridden_freezes: Vec<FreezeRef>,
}

impl From<views::PromotionPlan> for PromotionPlan {
    fn from(plan: views::PromotionPlan) -> Self {
        Self {
            dry_run: true,
            pipeline: plan.pipeline.into(),
            source: PromotionSource::new(plan.source_app, plan.source_release),
            source_stage: plan.source_stage.as_str(),
            target_stage: plan.target_stage.as_str(),
            targets: plan
                .targets
                .into_iter()
                .map(|target| PlannedTarget {
                    app: target.app.into(),
                    busy_with: target.busy_with.map(|id| IdRef { id }),
                    verification: target.verification.map(super::Verification::from),
                })
                .collect(),
            checks: plan
                .checks
                .into_iter()
                .map(|verdict| CheckVerdict {
                    app: NamedRef {
                        id: verdict.check.app_id,
                        name: verdict.check.app_name,
                    },
                    stage: verdict.check.stage.as_str(),
                    context: verdict.check.context,
                    state: verdict.state.map(|state| state.as_str()),
                    satisfied: verdict.satisfied,
                    overridden: verdict.overridden,
                })
                .collect(),
            drift: plan
                .drift
                .into_iter()
                .map(|drift| TargetDrift {
                    app: drift.app.into(),
                    missing_on_target: drift.missing_on_target,
                    missing_on_source: drift.missing_on_source,
                })
                .collect(),
            safe: plan.safe,
            required_approvals: plan.required_approvals,
            overridden_freezes: plan
                .overridden_freezes
                .into_iter()
                .map(FreezeRef::from)
                .collect(),
        }
    }
}

/// One progress event, as the `data` of a Server-Sent Event.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionEvent {
    pub sequence: i64,
    #[schema(value_type = crate::rest::openapi::EventName)]
    pub event: &'static str,
    pub pipeline_promotion: IdRef,
    pub target: Option<IdRef>,
    pub app: Option<NamedRef>,
    #[schema(value_type = Option<crate::rest::openapi::TargetStatusName>)]
    pub target_status: Option<&'static str>,
    #[schema(value_type = crate::rest::openapi::PromotionStatusName)]
    pub promotion_status: &'static str,
    pub release: Option<ReleaseIdVersion>,
    pub message: String,
    pub created_at: DateTime<Utc>,
    /// For `target.queued`: the promotion the target waits for.
    pub waiting_for: Option<IdRef>,
    /// For `target.queued`: the freeze of its stage the target waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for_freeze: Option<FreezeRef>,
    /// For approval events: the token that voted, and its comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl From<views::PromotionEventView> for PromotionEvent {
    fn from(view: views::PromotionEventView) -> Self {
        Self {
            sequence: view.sequence,
            event: view.kind.as_str(),
            pipeline_promotion: IdRef {
                id: view.promotion_id,
            },
            target: view.target_id.map(|id| IdRef { id }),
            app: view.app.map(NamedRef::from),
            target_status: view.target_status.map(|status| status.as_str()),
            promotion_status: view.promotion_status.as_str(),
            release: view.release.map(ReleaseIdVersion::from),
            message: view.message,
            created_at: view.created_at,
            waiting_for: view.waiting_for.map(|id| IdRef { id }),
            waiting_for_freeze: view.waiting_for_freeze.map(FreezeRef::from),
            actor: Some(view.actor).filter(|actor| !actor.is_empty()),
            comment: Some(view.comment).filter(|_| view.kind.is_vote()),
        }
    }
}

/// A promotion's status as `vocabulary` words it. Heroku's: `pending` until the promotion
/// is final, then `completed`.
fn promotion_status_word(status: PromotionStatus, vocabulary: Vocabulary) -> &'static str {
    match vocabulary {
        Vocabulary::Full => status.as_str(),
        Vocabulary::Heroku if status.is_final() => "completed",
        Vocabulary::Heroku => "pending",
    }
}

/// A target's status as `vocabulary` words it. Heroku's: `pending` until the target is
/// final, then `succeeded`, or `failed` for a failed or canceled one.
fn target_status_word(status: TargetStatus, vocabulary: Vocabulary) -> &'static str {
    match (vocabulary, status) {
        (Vocabulary::Full, status) => status.as_str(),
        (Vocabulary::Heroku, TargetStatus::Succeeded) => "succeeded",
        (Vocabulary::Heroku, TargetStatus::Failed | TargetStatus::Canceled) => "failed",
        (Vocabulary::Heroku, _) => "pending",
    }
}

impl Promotion {
    /// The promotion, its status in `vocabulary`'s words.
    pub fn worded(view: views::PromotionView, vocabulary: Vocabulary) -> Self {
        let status = view.status;
        Self {
            status: promotion_status_word(status, vocabulary),
            ..Self::from(view)
        }
    }
}

impl PromotionTarget {
    /// The target, its status in `vocabulary`'s words.
    pub fn worded(view: views::TargetView, vocabulary: Vocabulary) -> Self {
        let status = view.status;
        Self {
            status: target_status_word(status, vocabulary),
            ..Self::from(view)
        }
    }
}
