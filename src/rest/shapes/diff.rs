//! The stage diff and release lineage shapes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Frozen, NamedRef, PromotedFrom, Release, Verification};
use crate::{
    service::{Blocker, StageDiffView, TargetDiff},
    views::{self, ReleaseSummary},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct DiffRelease {
    pub id: Uuid,
    pub version: i64,
    pub image: String,
    pub created_at: DateTime<Utc>,
}

impl From<ReleaseSummary> for DiffRelease {
    fn from(summary: ReleaseSummary) -> Self {
        Self {
            id: summary.id,
            version: summary.version,
            image: summary.image,
            created_at: summary.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiffSource {
    pub app: NamedRef,
    pub release: DiffRelease,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigKeyDiff {
    /// Keys the source has and the target lacks.
    pub missing_on_target: Vec<String>,
    /// Keys the target has and the source lacks.
    pub missing_on_source: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiffCheck {
    pub context: String,
    /// The status's state on the source release, or `missing`.
    pub state: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiffBlocker {
    /// `status_check`, `freeze`, or `refused`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub message: String,
}

impl From<Blocker> for DiffBlocker {
    fn from(blocker: Blocker) -> Self {
        Self {
            kind: blocker.kind,
            context: blocker.context,
            message: blocker.message,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiffTarget {
    pub app: NamedRef,
    pub current: Option<DiffRelease>,
    pub image_differs: bool,
    pub config_keys: ConfigKeyDiff,
    pub checks: Vec<DiffCheck>,
    pub verification: Option<Verification>,
    pub frozen: Option<Frozen>,
    /// Whether a promotion into this app (with `safe` unset) would be accepted now.
    pub promotable: bool,
    pub blocked_by: Vec<DiffBlocker>,
}

impl From<TargetDiff> for DiffTarget {
    fn from(diff: TargetDiff) -> Self {
        Self {
            app: diff.app.into(),
            current: diff.current.map(Into::into),
            image_differs: diff.image_differs,
            config_keys: ConfigKeyDiff {
                missing_on_target: diff.config_keys.missing_on_target,
                missing_on_source: diff.config_keys.missing_on_source,
            },
            checks: diff
                .checks
                .into_iter()
                .map(|(context, state)| DiffCheck { context, state })
                .collect(),
            verification: diff.verification.map(Into::into),
            frozen: diff.frozen.map(Into::into),
            promotable: diff.promotable,
            blocked_by: diff.blocked_by.into_iter().map(Into::into).collect(),
        }
    }
}

/// `GET /pipelines/{pipeline}/diff`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageDiff {
    pub pipeline: NamedRef,
    pub from: &'static str,
    pub to: &'static str,
    pub source: DiffSource,
    pub targets: Vec<DiffTarget>,
}

impl From<StageDiffView> for StageDiff {
    fn from(view: StageDiffView) -> Self {
        Self {
            pipeline: view.pipeline.into(),
            from: view.from.as_str(),
            to: view.to.as_str(),
            source: DiffSource {
                app: view.source_app.into(),
                release: view.source_release.into(),
            },
            targets: view.targets.into_iter().map(Into::into).collect(),
        }
    }
}

/// One release in a lineage: `GET /releases?image=`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineageRelease {
    pub id: Uuid,
    pub app: NamedRef,
    pub version: i64,
    pub image: String,
    #[schema(value_type = crate::rest::openapi::ReleaseStateName)]
    pub status: &'static str,
    /// It is its app's current release.
    pub current: bool,
    pub promoted_from: Option<PromotedFrom>,
    pub created_at: DateTime<Utc>,
}

impl LineageRelease {
    pub fn of(view: views::ReleaseView, current: bool) -> Self {
        let release = Release::from(view);
        Self {
            id: release.id,
            app: release.app,
            version: release.version,
            image: release.image,
            status: release.status,
            current,
            promoted_from: release.promoted_from,
            created_at: release.created_at,
        }
    }
}
