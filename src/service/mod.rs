//! The use cases. Both transports call these operations, so every rule is decided here,
//! once: adapters only translate requests in and views out.

mod apps;
mod couplings;
mod lookup;
mod pipelines;
mod releases;
pub mod views;

pub use apps::{Apps, ConfigVarChange};
pub use couplings::{Couplings, NewCoupling};
pub use pipelines::Pipelines;
pub use releases::{NewReleaseStatus, ReleaseStatusChanges, Releases};

use sea_orm::DatabaseConnection;

/// Every use case, sharing one database handle.
#[derive(Clone)]
pub struct Services {
    pub pipelines: Pipelines,
    pub couplings: Couplings,
    pub apps: Apps,
    pub releases: Releases,
}

impl Services {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            pipelines: Pipelines::new(db.clone()),
            couplings: Couplings::new(db.clone()),
            apps: Apps::new(db.clone()),
            releases: Releases::new(db),
        }
    }
}
