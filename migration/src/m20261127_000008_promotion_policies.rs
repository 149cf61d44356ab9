//! Promotion policies: a coupling's `auto_promote` and `required_approvals`, the approval
//! requirement and trigger fixed on each promotion, the votes cast on it, the place in the
//! app queue a target takes once its promotion may run, and the two tables that make
//! auto-promotion durable and at most once per (release, target).

use sea_orm_migration::prelude::*;

use crate::columns::{add_column, drop_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Couplings {
    Table,
    AutoPromote,
    RequiredApprovals,
}

#[derive(DeriveIden)]
enum Promotions {
    Table,
    Id,
    RequiredApprovals,
    TriggeredBy,
}

#[derive(DeriveIden)]
enum PromotionTargets {
    Table,
    QueuedAt,
    AppId,
    Status,
}

#[derive(DeriveIden)]
enum PromotionEvents {
    Table,
    Actor,
    Comment,
}

#[derive(DeriveIden)]
enum PromotionVotes {
    Table,
    Id,
    PromotionId,
    Voter,
    Verdict,
    Comment,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AutoPromotionClaims {
    Table,
    SourceReleaseId,
    TargetAppId,
    PromotionId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AutoPromotionTriggers {
    Table,
    Id,
    AppId,
    ReleaseId,
    TriggeredBy,
    Reason,
    CreatedAt,
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
        add_column(
            manager,
            Couplings::Table,
            ColumnDef::new(Couplings::AutoPromote)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
        )
        .await?;
        add_column(
            manager,
            Couplings::Table,
            ColumnDef::new(Couplings::RequiredApprovals)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
        )
        .await?;
        add_column(
            manager,
            Promotions::Table,
            ColumnDef::new(Promotions::RequiredApprovals)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
        )
        .await?;
        add_column(
            manager,
            Promotions::Table,
            ColumnDef::new(Promotions::TriggeredBy).string().to_owned(),
        )
        .await?;
        add_column(
            manager,
            PromotionTargets::Table,
            ColumnDef::new(PromotionTargets::QueuedAt)
                .timestamp_with_time_zone()
                .to_owned(),
        )
        .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE promotion_targets SET queued_at = created_at")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_promotion_targets_app_queue")
                    .table(PromotionTargets::Table)
                    .col(PromotionTargets::AppId)
                    .col(PromotionTargets::Status)
                    .col(PromotionTargets::QueuedAt)
                    .to_owned(),
            )
            .await?;
        for column in [PromotionEvents::Actor, PromotionEvents::Comment] {
            add_column(
                manager,
                PromotionEvents::Table,
                ColumnDef::new(column)
                    .text()
                    .not_null()
                    .default("")
                    .to_owned(),
            )
            .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(PromotionVotes::Table)
                    .col(
                        ColumnDef::new(PromotionVotes::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PromotionVotes::PromotionId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PromotionVotes::Voter).string().not_null())
                    .col(ColumnDef::new(PromotionVotes::Verdict).string().not_null())
                    .col(ColumnDef::new(PromotionVotes::Comment).text().not_null())
                    .col(timestamp(PromotionVotes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PromotionVotes::Table, PromotionVotes::PromotionId)
                            .to(Promotions::Table, Promotions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_promotion_votes_one_per_voter")
                    .table(PromotionVotes::Table)
                    .col(PromotionVotes::PromotionId)
                    .col(PromotionVotes::Voter)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AutoPromotionClaims::Table)
                    .col(
                        ColumnDef::new(AutoPromotionClaims::SourceReleaseId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutoPromotionClaims::TargetAppId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutoPromotionClaims::PromotionId)
                            .uuid()
                            .not_null(),
                    )
                    .col(timestamp(AutoPromotionClaims::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(AutoPromotionClaims::SourceReleaseId)
                            .col(AutoPromotionClaims::TargetAppId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AutoPromotionTriggers::Table)
                    .col(
                        ColumnDef::new(AutoPromotionTriggers::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AutoPromotionTriggers::AppId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutoPromotionTriggers::ReleaseId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutoPromotionTriggers::TriggeredBy)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutoPromotionTriggers::Reason)
                            .string()
                            .not_null(),
                    )
                    .col(timestamp(AutoPromotionTriggers::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auto_promotion_triggers_created_at")
                    .table(AutoPromotionTriggers::Table)
                    .col(AutoPromotionTriggers::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AutoPromotionTriggers::Table.into_iden(),
            AutoPromotionClaims::Table.into_iden(),
            PromotionVotes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_promotion_targets_app_queue")
                    .table(PromotionTargets::Table)
                    .to_owned(),
            )
            .await?;
        drop_column(manager, PromotionEvents::Table, PromotionEvents::Comment).await?;
        drop_column(manager, PromotionEvents::Table, PromotionEvents::Actor).await?;
        drop_column(manager, PromotionTargets::Table, PromotionTargets::QueuedAt).await?;
        drop_column(manager, Promotions::Table, Promotions::TriggeredBy).await?;
        drop_column(manager, Promotions::Table, Promotions::RequiredApprovals).await?;
        drop_column(manager, Couplings::Table, Couplings::RequiredApprovals).await?;
        drop_column(manager, Couplings::Table, Couplings::AutoPromote).await
    }
}
