//! Freezes: a pipeline's windows in which some stages take no new deploys (one-off, or
//! recurring from two cron expressions in a time zone), kept after they are lifted. A
//! promotion that broke glass records the freezes it overrode, and its targets are exempt;
//! a target that waits for a freeze remembers which one it was told about, and the event
//! that told it says which freeze, why and until when.

use sea_orm_migration::prelude::*;

use crate::columns::{add_column, drop_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Freezes {
    Table,
    Id,
    PipelineId,
    Stages,
    Reason,
    CreatedBy,
    StartsAt,
    EndsAt,
    FreezeStart,
    FreezeEnd,
    CronTimezone,
    CreatedAt,
    LiftedAt,
    LiftedBy,
}

#[derive(DeriveIden)]
enum Promotions {
    Table,
    OverriddenFreezes,
}

#[derive(DeriveIden)]
enum PromotionTargets {
    Table,
    FreezeExempt,
    WaitingForFreeze,
}

#[derive(DeriveIden)]
enum PromotionEvents {
    Table,
    WaitingForFreeze,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Freezes::Table)
                    .col(ColumnDef::new(Freezes::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Freezes::PipelineId).uuid().not_null())
                    .col(ColumnDef::new(Freezes::Stages).text().not_null())
                    .col(ColumnDef::new(Freezes::Reason).text().not_null())
                    .col(ColumnDef::new(Freezes::CreatedBy).text().not_null())
                    .col(
                        ColumnDef::new(Freezes::StartsAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Freezes::EndsAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Freezes::FreezeStart).text().null())
                    .col(ColumnDef::new(Freezes::FreezeEnd).text().null())
                    .col(ColumnDef::new(Freezes::CronTimezone).text().null())
                    .col(
                        ColumnDef::new(Freezes::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Freezes::LiftedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Freezes::LiftedBy).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_freezes_pipeline")
                    .table(Freezes::Table)
                    .col(Freezes::PipelineId)
                    .to_owned(),
            )
            .await?;
        add_column(
            manager,
            Promotions::Table,
            ColumnDef::new(Promotions::OverriddenFreezes)
                .text()
                .not_null()
                .default("[]")
                .to_owned(),
        )
        .await?;
        add_column(
            manager,
            PromotionTargets::Table,
            ColumnDef::new(PromotionTargets::FreezeExempt)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
        )
        .await?;
        add_column(
            manager,
            PromotionTargets::Table,
            ColumnDef::new(PromotionTargets::WaitingForFreeze)
                .uuid()
                .null()
                .to_owned(),
        )
        .await?;
        add_column(
            manager,
            PromotionEvents::Table,
            ColumnDef::new(PromotionEvents::WaitingForFreeze)
                .text()
                .null()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_column(
            manager,
            PromotionEvents::Table,
            PromotionEvents::WaitingForFreeze,
        )
        .await?;
        drop_column(
            manager,
            PromotionTargets::Table,
            PromotionTargets::WaitingForFreeze,
        )
        .await?;
        drop_column(
            manager,
            PromotionTargets::Table,
            PromotionTargets::FreezeExempt,
        )
        .await?;
        drop_column(manager, Promotions::Table, Promotions::OverriddenFreezes).await?;
        manager
            .drop_table(Table::drop().table(Freezes::Table).to_owned())
            .await
    }
}
