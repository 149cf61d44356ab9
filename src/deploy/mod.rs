//! Deployers: what "deploying a release to an app" means. The engine calls one for every
//! promotion target and every rollback, after the release is recorded.

mod local;
pub mod webhook;

pub use local::LocalDeployer;
pub use webhook::{WebhookDeployer, WebhookSettings};

use uuid::Uuid;

/// Everything a deployer needs to know about one release to roll out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    /// What asked for the deployment.
    pub cause: DeployCause,
    pub app_id: Uuid,
    pub app_name: String,
    pub release_id: Uuid,
    pub release_version: i64,
    pub image: String,
    pub source_app_id: Uuid,
    pub source_app_name: String,
    pub source_release_id: Uuid,
}

/// Why a release is being deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployCause {
    /// A promotion target: the release came from another app of the pipeline.
    Promotion {
        promotion_id: Uuid,
        target_id: Uuid,
        pipeline_id: Uuid,
        pipeline_name: String,
    },
    /// A rollback: the release repeats an earlier release of the same app.
    Rollback { rollback_id: Uuid },
    /// The rollback of a promotion target whose verification failed: the release repeats
    /// the app's previous release.
    VerificationRollback {
        promotion_id: Uuid,
        target_id: Uuid,
        pipeline_id: Uuid,
        pipeline_name: String,
    },
}

impl DeployRequest {
    /// Identifies this deployment across retries: the promotion target or the rollback.
    pub fn delivery_id(&self) -> Uuid {
        match self.cause {
            DeployCause::Promotion { target_id, .. } => target_id,
            DeployCause::Rollback { rollback_id } => rollback_id,
            // The target's own deploy used its id; the rollback is another delivery.
            DeployCause::VerificationRollback { .. } => self.release_id,
        }
    }
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

    /// The deployer's name in metrics.
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Whether deploying changes nothing outside this service's database, so that the
    /// engine may start, deploy and finish a batch of targets in one transaction: all of
    /// it commits, or none of it and the batch runs again. Deployers that reach another
    /// system must say no, so that each step is committed before the next begins.
    fn deploys_within_the_database(&self) -> bool {
        false
    }
}
