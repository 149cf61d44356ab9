//! What the use cases return: resources with their references resolved, ready for either
//! transport to render.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{
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
