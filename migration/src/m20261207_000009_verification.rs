//! Verification after deploy: a coupling's `verification` (JSON), and on each target the
//! verification it got when it was deployed, where that stands, its deadline, the results
//! it was decided on, and the release a failed verification rolled back to.

use sea_orm_migration::prelude::*;

use crate::columns::{add_column, drop_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Couplings {
    Table,
    Verification,
}

#[derive(DeriveIden)]
enum PromotionTargets {
    Table,
    Status,
    Verification,
    VerificationState,
    VerificationDeadline,
    VerificationResults,
    RollbackReleaseId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_column(
            manager,
            Couplings::Table,
            ColumnDef::new(Couplings::Verification)
                .text()
                .null()
                .to_owned(),
        )
        .await?;
        for column in [
            ColumnDef::new(PromotionTargets::Verification)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(PromotionTargets::VerificationState)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(PromotionTargets::VerificationDeadline)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(PromotionTargets::VerificationResults)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(PromotionTargets::RollbackReleaseId)
                .uuid()
                .null()
                .to_owned(),
        ] {
            add_column(manager, PromotionTargets::Table, column).await?;
        }
        // The engine looks for verifying targets on every pass.
        manager
            .create_index(
                Index::create()
                    .name("ix_promotion_targets_verifying")
                    .table(PromotionTargets::Table)
                    .col(PromotionTargets::Status)
                    .col(PromotionTargets::VerificationDeadline)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_promotion_targets_verifying")
                    .table(PromotionTargets::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            PromotionTargets::RollbackReleaseId,
            PromotionTargets::VerificationResults,
            PromotionTargets::VerificationDeadline,
            PromotionTargets::VerificationState,
            PromotionTargets::Verification,
        ] {
            drop_column(manager, PromotionTargets::Table, column).await?;
        }
        drop_column(manager, Couplings::Table, Couplings::Verification).await
    }
}
