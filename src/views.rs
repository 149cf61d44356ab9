//! What the use cases return: resources with their references resolved, ready for either
//! transport to render.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    store::entities::{app, coupling, pipeline, release},
};

use crate::domain::{
    policy::PromotionPolicy,
    promotion::{EventKind, PromotionStatus, TargetStatus},
    stage::Stage,
    status::{ReleaseState, StatusState},
};

/// A pointer to a named resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineView {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSummary {
    pub id: Uuid,
    pub version: i64,
    pub image: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouplingView {
    pub id: Uuid,
    pub app: ResourceRef,
    pub pipeline: ResourceRef,
    pub stage: Stage,
    pub required_contexts: Vec<String>,
    pub policy: PromotionPolicy,
    /// The app's current release: its newest succeeded one.
    pub current_release: Option<ReleaseSummary>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotedFrom {
    pub app: ResourceRef,
    pub release_id: Uuid,
    pub promotion_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseView {
    pub id: Uuid,
    pub app: ResourceRef,
    pub version: i64,
    pub image: String,
    pub description: String,
    pub status: ReleaseState,
    pub promoted_from: Option<PromotedFrom>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatusView {
    pub id: Uuid,
    pub release_id: Uuid,
    pub context: String,
    pub name: String,
    pub state: StatusState,
    pub description: String,
    pub target_url: String,
    pub image_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A distinct status check seen on a pipeline's releases.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatusContext {
    pub context: String,
    pub name: String,
}

/// An app's config vars, ordered by key.
pub type ConfigVars = BTreeMap<String, String>;

/// Config vars as one caller may see them: a value is `None` when it is withheld.
pub type VisibleConfigVars = BTreeMap<String, Option<String>>;

/// A release named by id and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseRef {
    pub id: Uuid,
    pub version: i64,
}

/// A release with its statuses and their combined state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatusesView {
    pub release: ReleaseView,
    /// The combined state of all the release's statuses, not only this page's.
    pub state: StatusState,
    pub statuses: Vec<ReleaseStatusView>,
    pub next_page_token: Option<String>,
}

/// One required status check, identified by the target it guards. Stored as JSON with a
/// promotion's overridden checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckRef {
    pub app_id: Uuid,
    pub app_name: String,
    #[serde(with = "stage_name")]
    pub stage: Stage,
    pub context: String,
}

/// A stage as its name, the form stored in the database.
mod stage_name {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use crate::domain::stage::Stage;

    pub fn serialize<S: Serializer>(stage: &Stage, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(stage.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Stage, D::Error> {
        let name = String::deserialize(deserializer)?;
        Stage::parse("stage", &name).map_err(D::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionView {
    pub id: Uuid,
    pub pipeline: ResourceRef,
    pub source_app: ResourceRef,
    pub source_release: ReleaseRef,
    pub status: PromotionStatus,
    pub safe: bool,
    pub created_by: String,
    pub overridden_checks: Vec<CheckRef>,
    pub request_id: Option<String>,
    /// For an auto-promotion: the token whose release or status triggered it.
    pub triggered_by: Option<String>,
    /// The approvals it needs before it runs, fixed when it was created.
    pub required_approvals: u32,
    /// The approvals granted so far, oldest first.
    pub approvals: Vec<ApprovalView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One token's approval of a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalView {
    pub by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetView {
    pub id: Uuid,
    pub promotion_id: Uuid,
    pub app: ResourceRef,
    pub release: Option<ReleaseRef>,
    pub status: TargetStatus,
    pub error_message: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CheckVerdict {
    /// Names the check as `app/stage/context`.
    pub fn subject(&self) -> String {
        format!(
            "{}/{}/{}",
            self.check.app_name, self.check.stage, self.check.context
        )
    }

    /// Says why the check is unmet (or met).
    pub fn describe(&self) -> String {
        format!(
            "required context '{}' of app '{}' ({}) is {} on the release",
            self.check.context,
            self.check.app_name,
            self.check.stage,
            self.state.map(|state| state.as_str()).unwrap_or("missing")
        )
    }
}

/// The verdict of one required status check on the source release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckVerdict {
    pub check: CheckRef,
    /// The status's state on the source release; `None` when no status has the context.
    pub state: Option<StatusState>,
    pub satisfied: bool,
    /// Unmet, and bypassed by an elevated caller.
    pub overridden: bool,
}

/// Config keys one target and the source do not share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDrift {
    pub app: ResourceRef,
    pub missing_on_target: Vec<String>,
    pub missing_on_source: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTarget {
    pub app: ResourceRef,
    /// The unfinished promotion this target would wait behind, if any.
    pub busy_with: Option<Uuid>,
}

/// What a promotion would do; the answer to a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionPlan {
    pub pipeline: ResourceRef,
    pub source_app: ResourceRef,
    pub source_release: ReleaseRef,
    pub source_stage: Stage,
    pub target_stage: Stage,
    pub targets: Vec<PlannedTarget>,
    pub checks: Vec<CheckVerdict>,
    pub drift: Vec<TargetDrift>,
    pub safe: bool,
    /// The approvals the promotion would need before it runs.
    pub required_approvals: u32,
}

/// One numbered progress event of a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionEventView {
    pub promotion_id: Uuid,
    pub sequence: i64,
    pub kind: EventKind,
    pub target_id: Option<Uuid>,
    pub app: Option<ResourceRef>,
    pub target_status: Option<TargetStatus>,
    pub promotion_status: PromotionStatus,
    pub release: Option<ReleaseRef>,
    pub message: String,
    pub created_at: DateTime<Utc>,
    /// For `target.queued`: the promotion the target waits for.
    pub waiting_for: Option<Uuid>,
    /// For approval events: the token that voted, and its comment.
    pub actor: String,
    pub comment: String,
}

// Views from stored rows.

/// The contexts a coupling requires, as stored.
pub fn coupling_contexts(model: &coupling::Model) -> Result<Vec<String>> {
    serde_json::from_str(&model.required_contexts).map_err(|error| {
        Error::Internal(format!(
            "coupling {} has unreadable required contexts: {error}",
            model.id
        ))
    })
}

/// A coupling's promotion policy, as stored.
pub fn coupling_policy(model: &coupling::Model) -> PromotionPolicy {
    PromotionPolicy {
        auto_promote: model.auto_promote,
        required_approvals: u32::try_from(model.required_approvals).unwrap_or_default(),
    }
}

/// A coupling's stage, as stored.
pub fn coupling_stage(model: &coupling::Model) -> Result<Stage> {
    Stage::parse("stage", &model.stage)
        .map_err(|error| Error::Internal(format!("coupling {}: {error}", model.id)))
}

pub fn pipeline_view(model: pipeline::Model) -> PipelineView {
    PipelineView {
        id: model.id,
        name: model.name,
        description: model.description,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

pub fn app_view(model: app::Model) -> AppView {
    AppView {
        id: model.id,
        name: model.name,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

pub fn app_ref(model: &app::Model) -> ResourceRef {
    ResourceRef {
        id: model.id,
        name: model.name.clone(),
    }
}

pub fn release_summary(model: &release::Model) -> ReleaseSummary {
    ReleaseSummary {
        id: model.id,
        version: model.version,
        image: model.image.clone(),
        created_at: model.created_at,
    }
}
