//! Pipelines, apps, couplings, config vars, releases and release statuses.
//!
//! Integrity rules live here as constraints so that they hold under concurrent writers:
//! live names are unique (partial unique indexes, since deleted rows are kept for history),
//! an app is coupled at most once, release versions are unique per app, and a status
//! context is unique per release.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Pipelines {
    Table,
    Id,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Apps {
    Table,
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Couplings {
    Table,
    Id,
    PipelineId,
    AppId,
    Stage,
    RequiredContexts,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConfigVars {
    Table,
    AppId,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    Id,
    AppId,
    Version,
    Image,
    Description,
    Status,
    PromotedFromAppId,
    PromotedFromReleaseId,
    PromotedFromPromotionId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ReleaseStatuses {
    Table,
    Id,
    ReleaseId,
    Context,
    Name,
    State,
    Description,
    TargetUrl,
    ImageUrl,
    CreatedAt,
    UpdatedAt,
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
                    .table(Pipelines::Table)
                    .col(
                        ColumnDef::new(Pipelines::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Pipelines::Name).string().not_null())
                    .col(ColumnDef::new(Pipelines::Description).text().not_null())
                    .col(timestamp(Pipelines::CreatedAt))
                    .col(timestamp(Pipelines::UpdatedAt))
                    .col(ColumnDef::new(Pipelines::DeletedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Apps::Table)
                    .col(ColumnDef::new(Apps::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Apps::Name).string().not_null())
                    .col(timestamp(Apps::CreatedAt))
                    .col(timestamp(Apps::UpdatedAt))
                    .col(ColumnDef::new(Apps::DeletedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        // Partial unique indexes: a deleted pipeline or app frees its name. The same SQL is
        // valid on SQLite and PostgreSQL.
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_pipelines_live_name ON pipelines (name) WHERE deleted_at IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_apps_live_name ON apps (name) WHERE deleted_at IS NULL",
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Couplings::Table)
                    .col(
                        ColumnDef::new(Couplings::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Couplings::PipelineId).uuid().not_null())
                    .col(ColumnDef::new(Couplings::AppId).uuid().not_null())
                    .col(ColumnDef::new(Couplings::Stage).string().not_null())
                    .col(
                        ColumnDef::new(Couplings::RequiredContexts)
                            .text()
                            .not_null(),
                    )
                    .col(timestamp(Couplings::CreatedAt))
                    .col(timestamp(Couplings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_couplings_pipeline")
                            .from(Couplings::Table, Couplings::PipelineId)
                            .to(Pipelines::Table, Pipelines::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_couplings_app")
                            .from(Couplings::Table, Couplings::AppId)
                            .to(Apps::Table, Apps::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_couplings_app")
                    .table(Couplings::Table)
                    .col(Couplings::AppId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_couplings_pipeline")
                    .table(Couplings::Table)
                    .col(Couplings::PipelineId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConfigVars::Table)
                    .col(ColumnDef::new(ConfigVars::AppId).uuid().not_null())
                    .col(ColumnDef::new(ConfigVars::Key).string().not_null())
                    .col(ColumnDef::new(ConfigVars::Value).text().not_null())
                    .primary_key(Index::create().col(ConfigVars::AppId).col(ConfigVars::Key))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_config_vars_app")
                            .from(ConfigVars::Table, ConfigVars::AppId)
                            .to(Apps::Table, Apps::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Releases::Table)
                    .col(ColumnDef::new(Releases::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Releases::AppId).uuid().not_null())
                    .col(ColumnDef::new(Releases::Version).big_integer().not_null())
                    .col(ColumnDef::new(Releases::Image).text().not_null())
                    .col(ColumnDef::new(Releases::Description).text().not_null())
                    .col(ColumnDef::new(Releases::Status).string().not_null())
                    .col(ColumnDef::new(Releases::PromotedFromAppId).uuid())
                    .col(ColumnDef::new(Releases::PromotedFromReleaseId).uuid())
                    .col(ColumnDef::new(Releases::PromotedFromPromotionId).uuid())
                    .col(timestamp(Releases::CreatedAt))
                    .col(timestamp(Releases::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_releases_app")
                            .from(Releases::Table, Releases::AppId)
                            .to(Apps::Table, Apps::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_releases_app_version")
                    .table(Releases::Table)
                    .col(Releases::AppId)
                    .col(Releases::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReleaseStatuses::Table)
                    .col(
                        ColumnDef::new(ReleaseStatuses::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ReleaseStatuses::ReleaseId).uuid().not_null())
                    .col(ColumnDef::new(ReleaseStatuses::Context).string().not_null())
                    .col(ColumnDef::new(ReleaseStatuses::Name).string().not_null())
                    .col(ColumnDef::new(ReleaseStatuses::State).string().not_null())
                    .col(
                        ColumnDef::new(ReleaseStatuses::Description)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ReleaseStatuses::TargetUrl).text().not_null())
                    .col(ColumnDef::new(ReleaseStatuses::ImageUrl).text().not_null())
                    .col(timestamp(ReleaseStatuses::CreatedAt))
                    .col(timestamp(ReleaseStatuses::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_release_statuses_release")
                            .from(ReleaseStatuses::Table, ReleaseStatuses::ReleaseId)
                            .to(Releases::Table, Releases::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_release_statuses_release_context")
                    .table(ReleaseStatuses::Table)
                    .col(ReleaseStatuses::ReleaseId)
                    .col(ReleaseStatuses::Context)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReleaseStatuses::Table.into_iden(),
            Releases::Table.into_iden(),
            ConfigVars::Table.into_iden(),
            Couplings::Table.into_iden(),
            Apps::Table.into_iden(),
            Pipelines::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
