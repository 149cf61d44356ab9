//! Running one claimed rollback: start it, deploy its release unless the app was deleted,
//! and record the outcome.

use std::sync::Arc;

use super::{run::keep_lease, EngineContext};
use crate::{
    deploy::{DeployCause, DeployRequest},
    domain::promotion::TargetStatus,
    error::{Error, Result},
    lifecycle::{self, Transaction},
    store::{self, entities::rollback, leases},
};

pub(crate) async fn run_rollback(context: &Arc<EngineContext>, claimed: rollback::Model) {
    let id = claimed.id;
    let heartbeat = keep_lease::<rollback::Entity>(context, id);
    let outcome = drive(context, claimed).await;
    heartbeat.abort();
    if let Err(error) = outcome {
        tracing::warn!(rollback = %id, error = ?error, "rollback step failed; it will be retried");
    }
    leases::release_leases::<rollback::Entity>(&context.db, &[id], &context.settings.worker_id)
        .await;
}

async fn drive(context: &EngineContext, claimed: rollback::Model) -> Result<()> {
    let worker = context.settings.worker_id.as_str();
    if claimed.status == TargetStatus::Pending.as_str()
        && !lifecycle::start_rollback(&context.db, claimed.id, worker).await?
    {
        return Ok(());
    }
    if !leases::is_deployable::<rollback::Entity>(&context.db, claimed.id, worker).await? {
        return Ok(());
    }
    let missing =
        |what: &str| Error::Internal(format!("rollback {}: {what} is missing", claimed.id));
    let target_app = store::apps::app_by_id(&context.db, claimed.app_id)
        .await?
        .ok_or_else(|| missing("app"))?;
    let new_release = store::releases::release_by_id(&context.db, claimed.release_id)
        .await?
        .ok_or_else(|| missing("release"))?;
    let request = DeployRequest {
        cause: DeployCause::Rollback {
            rollback_id: claimed.id,
        },
        app_id: target_app.id,
        app_name: target_app.name.clone(),
        release_id: new_release.id,
        release_version: new_release.version,
        image: new_release.image.clone(),
        source_app_id: target_app.id,
        source_app_name: target_app.name,
        source_release_id: claimed.rolled_back_to_id,
    };
    let outcome = super::deploy(context, &request).await;
    let mut tx = Transaction::begin(&context.db, &context.hub).await?;
    let recorded = lifecycle::record_rollback_outcome(&mut tx, &claimed, worker, outcome).await?;
    tx.commit().await?;
    if recorded {
        // The rolled-back release may now be the app's current one.
        context
            .hub
            .read_model
            .changed(&[crate::read_model::Key::App(claimed.app_id)])
            .await;
    } else {
        tracing::info!(rollback = %claimed.id, "the rollback was canceled or taken over while deploying");
    }
    Ok(())
}
