//! Database migrations for the pipelines service, one file per schema change. They run at
//! start-up and through `pipelines migrate`, on SQLite and PostgreSQL alike.

pub use sea_orm_migration::prelude::*;

mod columns;

mod m20261126_000001_create_core_tables;
mod m20261126_000002_create_tokens;
mod m20261126_000003_create_promotions;
mod m20261126_000004_event_waiting_for;
mod m20261126_000005_promotion_cancel_requested;
mod m20261127_000006_target_app_deleted;
mod m20261127_000007_create_rollbacks;
mod m20261127_000008_promotion_policies;
mod m20261207_000009_verification;
mod m20261208_000010_freezes;
mod m20261209_000011_audit_events;
mod m20261210_000012_pipeline_events;
mod m20261211_000013_app_status_contexts;
mod m20261212_000014_token_limits;
mod m20261213_000015_release_history;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_core_tables::Migration),
            Box::new(m20261126_000002_create_tokens::Migration),
            Box::new(m20261126_000003_create_promotions::Migration),
            Box::new(m20261126_000004_event_waiting_for::Migration),
            Box::new(m20261126_000005_promotion_cancel_requested::Migration),
            Box::new(m20261127_000006_target_app_deleted::Migration),
            Box::new(m20261127_000007_create_rollbacks::Migration),
            Box::new(m20261127_000008_promotion_policies::Migration),
            Box::new(m20261207_000009_verification::Migration),
            Box::new(m20261208_000010_freezes::Migration),
            Box::new(m20261209_000011_audit_events::Migration),
            Box::new(m20261210_000012_pipeline_events::Migration),
            Box::new(m20261211_000013_app_status_contexts::Migration),
            Box::new(m20261212_000014_token_limits::Migration),
            Box::new(m20261213_000015_release_history::Migration),
        ]
    }
}
