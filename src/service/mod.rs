//! The use cases. Both transports call these operations, so every rule is decided here,
//! once: adapters only translate requests in and views out.

mod apps;
mod audit;
mod couplings;
mod diff;
mod freezes;
mod lineage;
mod lookup;
mod paging;
mod pipelines;
mod promotions;
mod releases;
use crate::views;

pub use apps::{Apps, ConfigVarChange};
pub use audit::{AuditLog, AuditQuery};
pub use couplings::{CouplingChange, Couplings, NewCoupling};
pub use diff::{Blocker, DiffRequest, StageDiffView, TargetDiff};
pub(crate) use freezes::frozen_stages_of;
pub use freezes::{Freezes, NewFreeze};
pub use paging::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use pipelines::Pipelines;
pub use promotions::{CreatedPromotion, NewPromotion, PromotionPage, Promotions, Safety};
pub use releases::{NewReleaseStatus, ReleaseStatusChanges, Releases};

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    domain::access::{Caller, Role},
    error::{Error, Result},
    pipeline_events::hub::{PipelineStreams, StreamItem},
    progress::EventHub,
};

/// Refuses a caller whose role is below `needed`. Every authenticated caller can read, so
/// only writes and elevated actions call this.
pub(crate) fn authorize(caller: &Caller, needed: Role, action: &str) -> Result<()> {
    if caller.has_role(needed) {
        return Ok(());
    }
    let elevated = if needed == Role::Admin {
        " elevated access"
    } else {
        ""
    };
    Err(Error::PermissionDenied(format!(
        "{action} needs{elevated} (role {needed}); token '{}' has role {}",
        caller.name, caller.role
    )))
}

/// Every use case, sharing one database handle.
#[derive(Clone)]
pub struct Services {
    pub pipelines: Pipelines,
    pub couplings: Couplings,
    pub freezes: Freezes,
    pub apps: Apps,
    pub releases: Releases,
    pub promotions: Promotions,
    pub audit: AuditLog,
    pub pipeline_streams: Arc<PipelineStreams>,
}

impl Services {
    /// `verification_hosts` are the hosts couplings' HTTP checks may probe.
    pub fn new(
        db: DatabaseConnection,
        hub: Arc<EventHub>,
        verification_hosts: crate::domain::verification::AllowedHosts,
    ) -> Self {
        Self {
            pipelines: Pipelines::new(db.clone(), Arc::clone(&hub.read_model)),
            couplings: Couplings::new(db.clone(), Arc::clone(&hub.read_model), verification_hosts),
            freezes: Freezes::new(db.clone(), Arc::clone(&hub)),
            apps: Apps::new(db.clone(), Arc::clone(&hub)),
            releases: Releases::new(db.clone(), Arc::clone(&hub)),
            audit: AuditLog::new(db.clone()),
            pipeline_streams: PipelineStreams::new(db.clone(), Arc::clone(&hub)),
            promotions: Promotions::new(db, hub),
        }
    }

    /// Watches every change in a pipeline: from the present, or after sequence `after`
    /// (a sequence older than what is kept starts with a reset).
    pub async fn watch_pipeline(
        &self,
        pipeline: &str,
        after: Option<i64>,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<StreamItem>>> {
        self.pipeline_streams.watch(self, pipeline, after).await
    }

    /// Publishes pipeline events to this process's watchers until `stop`.
    pub fn keep_pipeline_streams(
        &self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(Arc::clone(&self.pipeline_streams).pump(self.clone(), stop))
    }
}
