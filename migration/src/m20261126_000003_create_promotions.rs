//! Promotions, their per-app targets and their numbered events, plus the link from a
//! promoted release back to the target that created it.
//!
//! The unique index on `releases.promotion_target_id` is what guarantees that a target never
//! gets a second release, even when a crashed worker's target is retried elsewhere.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Promotions {
    Table,
    Id,
    PipelineId,
    SourceAppId,
    SourceReleaseId,
    Status,
    Safe,
    CreatedBy,
    OverriddenChecks,
    RequestId,
    RequestFingerprint,
    EventCount,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum PromotionTargets {
    Table,
    Id,
    PromotionId,
    AppId,
    Position,
    Status,
    ReleaseId,
    ErrorMessage,
    QueuedBehind,
    LeaseOwner,
    LeaseExpiresAt,
    Attempts,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PromotionEvents {
    Table,
    Id,
    PromotionId,
    Sequence,
    Kind,
    TargetId,
    AppId,
    AppName,
    TargetStatus,
    PromotionStatus,
    ReleaseId,
    ReleaseVersion,
    Message,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    PromotionTargetId,
}

fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Promotions::Table)
                    .col(
                        ColumnDef::new(Promotions::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Promotions::PipelineId).uuid().not_null())
                    .col(ColumnDef::new(Promotions::SourceAppId).uuid().not_null())
                    .col(
                        ColumnDef::new(Promotions::SourceReleaseId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Promotions::Status).string().not_null())
                    .col(ColumnDef::new(Promotions::Safe).boolean().not_null())
                    .col(ColumnDef::new(Promotions::CreatedBy).string().not_null())
                    .col(
                        ColumnDef::new(Promotions::OverriddenChecks)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Promotions::RequestId).string())
                    .col(ColumnDef::new(Promotions::RequestFingerprint).string())
                    .col(
                        ColumnDef::new(Promotions::EventCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp(Promotions::CreatedAt))
                    .col(timestamp(Promotions::UpdatedAt))
                    .col(ColumnDef::new(Promotions::FinishedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_promotions_pipeline_created")
                    .table(Promotions::Table)
                    .col(Promotions::PipelineId)
                    .col(Promotions::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_promotions_created")
                    .table(Promotions::Table)
                    .col(Promotions::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_promotions_request_id ON promotions (request_id) \
                 WHERE request_id IS NOT NULL",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PromotionTargets::Table)
                    .col(
                        ColumnDef::new(PromotionTargets::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PromotionTargets::PromotionId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PromotionTargets::AppId).uuid().not_null())
                    .col(
                        ColumnDef::new(PromotionTargets::Position)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PromotionTargets::Status).string().not_null())
                    .col(ColumnDef::new(PromotionTargets::ReleaseId).uuid())
                    .col(
                        ColumnDef::new(PromotionTargets::ErrorMessage)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PromotionTargets::QueuedBehind).uuid())
                    .col(ColumnDef::new(PromotionTargets::LeaseOwner).string())
                    .col(
                        ColumnDef::new(PromotionTargets::LeaseExpiresAt).timestamp_with_time_zone(),
                    )
                    .col(
                        ColumnDef::new(PromotionTargets::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp(PromotionTargets::CreatedAt))
                    .col(timestamp(PromotionTargets::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_promotion_targets_promotion")
                            .from(PromotionTargets::Table, PromotionTargets::PromotionId)
                            .to(Promotions::Table, Promotions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_promotion_targets_promotion_app")
                    .table(PromotionTargets::Table)
                    .col(PromotionTargets::PromotionId)
                    .col(PromotionTargets::AppId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_promotion_targets_status")
                    .table(PromotionTargets::Table)
                    .col(PromotionTargets::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_promotion_targets_app_status")
                    .table(PromotionTargets::Table)
                    .col(PromotionTargets::AppId)
                    .col(PromotionTargets::Status)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PromotionEvents::Table)
                    .col(
                        ColumnDef::new(PromotionEvents::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PromotionEvents::PromotionId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PromotionEvents::Sequence)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PromotionEvents::Kind).string().not_null())
                    .col(ColumnDef::new(PromotionEvents::TargetId).uuid())
                    .col(ColumnDef::new(PromotionEvents::AppId).uuid())
                    .col(ColumnDef::new(PromotionEvents::AppName).string().not_null())
                    .col(
                        ColumnDef::new(PromotionEvents::TargetStatus)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PromotionEvents::PromotionStatus)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PromotionEvents::ReleaseId).uuid())
                    .col(ColumnDef::new(PromotionEvents::ReleaseVersion).big_integer())
                    .col(ColumnDef::new(PromotionEvents::Message).text().not_null())
                    .col(timestamp(PromotionEvents::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_promotion_events_promotion")
                            .from(PromotionEvents::Table, PromotionEvents::PromotionId)
                            .to(Promotions::Table, Promotions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_promotion_events_sequence")
                    .table(PromotionEvents::Table)
                    .col(PromotionEvents::PromotionId)
                    .col(PromotionEvents::Sequence)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Releases::Table)
                    .add_column(ColumnDef::new(Releases::PromotionTargetId).uuid())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_releases_promotion_target")
                    .table(Releases::Table)
                    .col(Releases::PromotionTargetId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("uq_releases_promotion_target")
                    .table(Releases::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Releases::Table)
                    .drop_column(Releases::PromotionTargetId)
                    .to_owned(),
            )
            .await?;
        for table in [
            PromotionEvents::Table.into_iden(),
            PromotionTargets::Table.into_iden(),
            Promotions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
