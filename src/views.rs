//! What the use cases return: resources with their references resolved, ready for either
//! transport to render.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    store::entities::{app, coupling, freeze, pipeline, promotion_event, release},
};

use crate::domain::{
    freeze::{Freeze, FrozenStage, Recurrence, Schedule, Window},
    policy::PromotionPolicy,
    promotion::{EventKind, PromotionStatus, TargetStatus},
    stage::Stage,
    status::{ReleaseState, StatusState},
    verification::{CheckResult, Verification, VerificationState},
};
pub use crate::domain::{
    promotion::TargetDrift,
    status::{CheckRef, CheckVerdict},
    ResourceRef,
};

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
    /// What must hold on a release after a promotion deployed it here.
    pub verification: Option<Verification>,
    /// The app's current release: its newest succeeded one.
    pub current_release: Option<ReleaseSummary>,
    /// Why the coupling's stage takes no new deploys now, if it is frozen.
    pub frozen: Option<FrozenStage>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A freeze as reads return it: what it covers, why, and where it stands at the time it
/// was read.
#[derive(Debug, Clone)]
pub struct FreezeView {
    pub freeze: Freeze,
    pub pipeline: ResourceRef,
    /// In effect at the time of reading.
    pub current: Option<Window>,
    /// The first occurrence that starts after the time of reading.
    pub next: Option<Window>,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lifted_by: Option<String>,
}

impl FreezeView {
    /// The freeze as it stands at `now`; a lifted one holds nothing.
    pub fn at(
        freeze: Freeze,
        pipeline: ResourceRef,
        lifted: Option<(DateTime<Utc>, String)>,
        now: DateTime<Utc>,
    ) -> Self {
        let (current, next) = match lifted {
            Some(_) => (None, None),
            None => (freeze.schedule.current(now), freeze.schedule.next(now)),
        };
        let (lifted_at, lifted_by) = lifted.unzip();
        Self {
            freeze,
            pipeline,
            current,
            next,
            lifted_at,
            lifted_by,
        }
    }

    pub fn active(&self) -> bool {
        self.current.is_some()
    }
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
    /// It is the app's current release: its newest succeeded one.
    pub current: bool,
    /// Who made it.
    pub user: crate::domain::access::Author,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReleaseView {
    /// Whether the app may be rolled back to it: it succeeded (the current release
    /// included).
    pub fn eligible_for_rollback(&self) -> bool {
        self.status == ReleaseState::Succeeded
    }
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
    /// The freezes an elevated caller broke glass through.
    pub overridden_freezes: Vec<FreezeRef>,
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
    /// Its verification, once it was deployed into an app whose coupling has one.
    pub verification: Option<TargetVerificationView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a target's verification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetVerificationView {
    pub state: VerificationState,
    pub deadline: Option<DateTime<Utc>>,
    pub results: Vec<CheckResult>,
    pub rollback_release: Option<ReleaseRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTarget {
    pub app: ResourceRef,
    /// The unfinished promotion this target would wait behind, if any.
    pub busy_with: Option<Uuid>,
    /// The verification the target would get after its deploy.
    pub verification: Option<Verification>,
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
    /// The freezes an admin's `safe: false` would break glass through.
    pub overridden_freezes: Vec<FreezeRef>,
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
    /// For `target.queued`: the freeze the target waits for.
    pub waiting_for_freeze: Option<FreezeRef>,
    /// For approval events: the token that voted, and its comment.
    pub actor: String,
    pub comment: String,
}

/// A frozen stage as it stood at one moment: which freeze, why, and until when. A target
/// waits for one; a promotion that broke glass records the one it overrode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FreezeRef {
    pub freeze_id: Uuid,
    pub stage: Stage,
    pub reason: String,
    pub until: DateTime<Utc>,
}

impl From<&FrozenStage> for FreezeRef {
    fn from(frozen: &FrozenStage) -> Self {
        Self {
            freeze_id: frozen.freeze_id,
            stage: frozen.stage,
            reason: frozen.reason.clone(),
            until: frozen.until,
        }
    }
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

/// A coupling's verification, as stored; none when absent (or unreadable, which is
/// logged: a verification that cannot be read is not enforced).
pub fn coupling_verification(model: &coupling::Model) -> Option<Verification> {
    stored_verification(model.verification.as_deref(), model.id)
}

/// A verification stored as JSON on the row `id`.
pub fn stored_verification(stored: Option<&str>, id: Uuid) -> Option<Verification> {
    let text = stored?;
    match serde_json::from_str(text) {
        Ok(verification) => Some(verification),
        Err(error) => {
            tracing::error!(%id, %error, "a stored verification is unreadable");
            None
        }
    }
}

/// A target's verification, once it verifies: none before, or when it has none.
pub fn target_verification(
    row: &crate::store::entities::promotion_target::Model,
    rollback_release: Option<ReleaseRef>,
) -> Option<TargetVerificationView> {
    let state = VerificationState::parse(row.verification_state.as_deref()?)?;
    let results = row
        .verification_results
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    Some(TargetVerificationView {
        state,
        deadline: row.verification_deadline,
        results,
        rollback_release,
    })
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

/// A stored promotion event, as watchers and lists see it.
pub fn promotion_event_view(model: promotion_event::Model) -> Result<PromotionEventView> {
    let kind = EventKind::parse(&model.kind)
        .ok_or_else(|| Error::Internal(format!("event {} has unknown kind", model.id)))?;
    let promotion_status = PromotionStatus::parse(&model.promotion_status).ok_or_else(|| {
        Error::Internal(format!("event {} has unknown promotion status", model.id))
    })?;
    Ok(PromotionEventView {
        promotion_id: model.promotion_id,
        sequence: model.sequence,
        kind,
        target_id: model.target_id,
        app: model.app_id.map(|id| ResourceRef {
            id,
            name: model.app_name.clone(),
        }),
        target_status: TargetStatus::parse(&model.target_status),
        promotion_status,
        release: match (model.release_id, model.release_version) {
            (Some(id), Some(version)) => Some(ReleaseRef { id, version }),
            _ => None,
        },
        message: model.message,
        created_at: model.created_at,
        waiting_for: model.waiting_for,
        waiting_for_freeze: model
            .waiting_for_freeze
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok()),
        actor: model.actor,
        comment: model.comment,
    })
}

/// A stored freeze as the domain knows it.
pub fn freeze_of_row(row: &freeze::Model) -> Result<Freeze> {
    let unreadable = |what: String| Error::Internal(format!("freeze {} has {what}", row.id));
    let names: Vec<String> = serde_json::from_str(&row.stages)
        .map_err(|error| unreadable(format!("unreadable stages: {error}")))?;
    let stages = names
        .iter()
        .map(|name| Stage::parse("stages", name))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| unreadable(error.to_string()))?;
    let schedule = match (
        row.starts_at,
        row.ends_at,
        &row.freeze_start,
        &row.freeze_end,
    ) {
        (Some(starts_at), Some(ends_at), _, _) => Schedule::OneOff(Window { starts_at, ends_at }),
        (_, _, Some(start), Some(end)) => Schedule::Recurring(Box::new(
            Recurrence::parse(start, end, row.cron_timezone.as_deref().unwrap_or("UTC"))
                .map_err(|error| unreadable(error.to_string()))?,
        )),
        _ => return Err(unreadable("neither a window nor cron expressions".into())),
    };
    Ok(Freeze {
        id: row.id,
        pipeline_id: row.pipeline_id,
        stages,
        reason: row.reason.clone(),
        created_by: row.created_by.clone(),
        created_at: row.created_at,
        schedule,
    })
}
