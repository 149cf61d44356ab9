//! The JSON shapes of the Akkeris-compatible REST API, and the conversions from views.
//! Field names are snake_case and times are RFC 3339 UTC.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::views;

mod audit;
mod diff;
mod freezes;
mod pipeline_events;
mod promotions;

pub use audit::*;
pub use diff::*;
pub use freezes::*;
pub use pipeline_events::*;
pub use promotions::*;

#[derive(Debug, Serialize, ToSchema)]
pub struct NamedRef {
    pub id: Uuid,
    pub name: String,
}

impl From<views::ResourceRef> for NamedRef {
    fn from(reference: views::ResourceRef) -> Self {
        Self {
            id: reference.id,
            name: reference.name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdRef {
    pub id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Pipeline {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<views::PipelineView> for Pipeline {
    fn from(view: views::PipelineView) -> Self {
        Self {
            id: view.id,
            name: view.name,
            description: view.description,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, Default, ToSchema)]
#[serde(
    expecting = "an object such as {\"contexts\": [\"ci/tests\"]}",
    deny_unknown_fields
)]
pub struct RequiredStatusChecks {
    #[serde(default)]
    pub contexts: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentRelease {
    pub id: Uuid,
    pub version: i64,
    pub image: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Coupling {
    pub id: Uuid,
    pub app: NamedRef,
    pub pipeline: NamedRef,
    #[schema(value_type = crate::rest::openapi::StageName)]
    pub stage: &'static str,
    pub required_status_checks: RequiredStatusChecks,
    pub release: Option<CurrentRelease>,
    pub promotion_policy: PromotionPolicy,
    /// What must hold on a release after a promotion deployed it here, every default
    /// filled in; null when none.
    pub verification: Option<Verification>,
    /// Why the coupling's stage takes no new deploys now; null when it is not frozen.
    pub frozen: Option<Frozen>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HttpCheck {
    pub name: String,
    pub url: String,
    pub interval_seconds: u32,
    pub count: u32,
    pub failure_limit: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub contexts: Vec<String>,
    pub timeout_seconds: u32,
    pub http_checks: Vec<HttpCheck>,
    /// `rollback` or `keep`.
    pub on_failure: &'static str,
}

impl From<crate::domain::verification::Verification> for Verification {
    fn from(verification: crate::domain::verification::Verification) -> Self {
        Self {
            contexts: verification.contexts,
            timeout_seconds: verification.timeout_seconds,
            http_checks: verification
                .http_checks
                .into_iter()
                .map(|check| HttpCheck {
                    name: check.name,
                    url: check.url,
                    interval_seconds: check.interval_seconds,
                    count: check.count,
                    failure_limit: check.failure_limit,
                })
                .collect(),
            on_failure: verification.on_failure.as_str(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionPolicy {
    pub auto_promote: bool,
    pub required_approvals: u32,
}

impl From<views::CouplingView> for Coupling {
    fn from(view: views::CouplingView) -> Self {
        Self {
            id: view.id,
            app: view.app.into(),
            pipeline: view.pipeline.into(),
            stage: view.stage.as_str(),
            required_status_checks: RequiredStatusChecks {
                contexts: view.required_contexts,
            },
            release: view.current_release.map(|release| CurrentRelease {
                id: release.id,
                version: release.version,
                image: release.image,
                created_at: release.created_at,
            }),
            promotion_policy: PromotionPolicy {
                auto_promote: view.policy.auto_promote,
                required_approvals: view.policy.required_approvals,
            },
            verification: view.verification.map(Verification::from),
            frozen: view.frozen.map(Frozen::from),
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct App {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<views::AppView> for App {
    fn from(view: views::AppView) -> Self {
        Self {
            id: view.id,
            name: view.name,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromotedFrom {
    pub app: NamedRef,
    pub release: IdRef,
    pub pipeline_promotion: IdRef,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Release {
    pub id: Uuid,
    pub app: NamedRef,
    pub version: i64,
    pub image: String,
    pub description: String,
    #[schema(value_type = crate::rest::openapi::ReleaseStateName)]
    pub status: &'static str,
    pub promoted_from: Option<PromotedFrom>,
    /// It is the app's current release.
    pub current: bool,
    /// It succeeded, so the app may be rolled back to it (the current release included).
    pub eligible_for_rollback: bool,
    /// Who made it: the token's id and email (`null` and `local` in protected mode,
    /// `null` and `system` for the engine's own).
    pub user: ReleaseUser,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who made a release, as `GET /account` answers for its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseUser {
    pub id: Option<Uuid>,
    pub email: String,
}

impl From<views::ReleaseView> for Release {
    fn from(view: views::ReleaseView) -> Self {
        let eligible_for_rollback = view.eligible_for_rollback();
        Self {
            current: view.current,
            eligible_for_rollback,
            user: ReleaseUser {
                id: view.user.id,
                email: view.user.email,
            },
            id: view.id,
            app: view.app.into(),
            version: view.version,
            image: view.image,
            description: view.description,
            status: view.status.as_str(),
            promoted_from: view.promoted_from.map(|from| PromotedFrom {
                app: from.app.into(),
                release: IdRef {
                    id: from.release_id,
                },
                pipeline_promotion: IdRef {
                    id: from.promotion_id,
                },
            }),
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseStatus {
    pub id: Uuid,
    pub release: IdRef,
    pub context: String,
    pub name: String,
    #[schema(value_type = crate::rest::openapi::StatusStateName)]
    pub state: &'static str,
    pub description: String,
    pub target_url: String,
    pub image_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /apps/{app}/releases/{id}/statuses`, as Akkeris clients read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseStatuses {
    /// The combined state of all statuses.
    #[schema(value_type = crate::rest::openapi::StatusStateName)]
    pub state: &'static str,
    pub release: Release,
    pub statuses: Vec<ReleaseStatus>,
}

impl From<views::ReleaseStatusesView> for ReleaseStatuses {
    fn from(view: views::ReleaseStatusesView) -> Self {
        Self {
            state: view.state.as_str(),
            release: view.release.into(),
            statuses: view.statuses.into_iter().map(ReleaseStatus::from).collect(),
        }
    }
}

impl From<views::ReleaseStatusView> for ReleaseStatus {
    fn from(view: views::ReleaseStatusView) -> Self {
        Self {
            id: view.id,
            release: IdRef {
                id: view.release_id,
            },
            context: view.context,
            name: view.name,
            state: view.state.as_str(),
            description: view.description,
            target_url: view.target_url,
            image_url: view.image_url,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusContext {
    pub context: String,
    pub name: String,
}

impl From<views::StatusContext> for StatusContext {
    fn from(view: views::StatusContext) -> Self {
        Self {
            context: view.context,
            name: view.name,
        }
    }
}

/// `{stage: next_stage | null}` in promotion order.
pub type StageGraph = serde_json::Map<String, serde_json::Value>;

/// The stage graph as the OpenAPI document describes it: each stage and the stage its
/// releases are promoted to.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StageGraphSchema {
    review: Option<String>,
    development: Option<String>,
    staging: Option<String>,
    production: Option<String>,
}

/// Config vars as `{KEY: value}`; a withheld value is `null`.
pub type ConfigVars = BTreeMap<String, Option<String>>;
