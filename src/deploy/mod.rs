//! Deployers: what "deploying a release to an app" means. The engine calls one for every
//! promotion target, after the target's release is recorded.

mod local;
pub mod webhook;

pub use local::LocalDeployer;
pub use webhook::{WebhookDeployer, WebhookSettings};

use uuid::Uuid;

/// Everything a deployer needs to know about one target's release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    pub promotion_id: Uuid,
    pub target_id: Uuid,
    pub pipeline_id: Uuid,
    pub pipeline_name: String,
    pub app_id: Uuid,
    pub app_name: String,
    pub release_id: Uuid,
    pub release_version: i64,
    pub image: String,
    pub source_app_id: Uuid,
    pub source_app_name: String,
    pub source_release_id: Uuid,
}

/// Why a deployment failed; the message becomes the target's `error_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeployError(pub String);

/// Rolls a release out to an app. A deployment may be repeated for the same release after a
/// crash, so implementations must treat a repeat as a success when it already happened
/// (the request carries the release id for exactly that).
#[async_trait::async_trait]
pub trait Deployer: Send + Sync + 'static {
    async fn deploy(&self, request: &DeployRequest) -> Result<(), DeployError>;
}
