//! The pipeline event stream: each pipeline's changes, numbered per pipeline in the order
//! their transactions committed, and the index that finds every release of one image.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PipelineEventHeads {
    Table,
    PipelineId,
    LastSequence,
}

#[derive(DeriveIden)]
enum PipelineEvents {
    Table,
    PipelineId,
    Sequence,
    Kind,
    SubjectId,
    AppId,
    AppName,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    Image,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per pipeline that has events: the last sequence given out. Its row lock
        // orders a pipeline's events by commit.
        manager
            .create_table(
                Table::create()
                    .table(PipelineEventHeads::Table)
                    .col(
                        ColumnDef::new(PipelineEventHeads::PipelineId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PipelineEventHeads::LastSequence)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PipelineEvents::Table)
                    .col(ColumnDef::new(PipelineEvents::PipelineId).uuid().not_null())
                    .col(
                        ColumnDef::new(PipelineEvents::Sequence)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PipelineEvents::Kind).text().not_null())
                    .col(ColumnDef::new(PipelineEvents::SubjectId).uuid().not_null())
                    .col(ColumnDef::new(PipelineEvents::AppId).uuid().null())
                    .col(ColumnDef::new(PipelineEvents::AppName).text().not_null())
                    .col(
                        ColumnDef::new(PipelineEvents::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(PipelineEvents::PipelineId)
                            .col(PipelineEvents::Sequence),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_releases_image")
                    .table(Releases::Table)
                    .col(Releases::Image)
                    .col(Releases::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_releases_image")
                    .table(Releases::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PipelineEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PipelineEventHeads::Table).to_owned())
            .await
    }
}
