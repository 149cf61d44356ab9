//! The embedded default: the service is the system of record, so deploying means the new
//! release becomes the app's current one, which the engine records.

use super::{DeployError, DeployRequest, Deployer};

#[derive(Debug, Default, Clone, Copy)]
pub struct LocalDeployer;

#[async_trait::async_trait]
impl Deployer for LocalDeployer {
    fn name(&self) -> &'static str {
        "local"
    }

    /// The outcome the engine records is the deployment itself.
    fn deploys_within_the_database(&self) -> bool {
        true
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<(), DeployError> {
        tracing::debug!(
            app = %request.app_name,
            release = %request.release_id,
            version = request.release_version,
            "release recorded as deployed"
        );
        Ok(())
    }
}
