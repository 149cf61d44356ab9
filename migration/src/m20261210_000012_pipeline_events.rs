//! The pipeline event stream: each change's events, queued by the change's own
//! transaction in an outbox, then numbered per pipeline by one sequencer at a time; and
//! the index that finds every release of one image.

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
enum PipelineEventOutbox {
    Table,
    Id,
    PipelineId,
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
        // Events written by committed changes and not numbered yet, in the order written.
        manager
            .create_table(
                Table::create()
                    .table(PipelineEventOutbox::Table)
                    .col(
                        ColumnDef::new(PipelineEventOutbox::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PipelineEventOutbox::PipelineId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PipelineEventOutbox::Kind).text().not_null())
                    .col(
                        ColumnDef::new(PipelineEventOutbox::SubjectId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PipelineEventOutbox::AppId).uuid().null())
                    .col(
                        ColumnDef::new(PipelineEventOutbox::AppName)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PipelineEventOutbox::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per pipeline that has events: the last sequence given out.
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
            .await?;
        manager
            .drop_table(Table::drop().table(PipelineEventOutbox::Table).to_owned())
            .await
    }
}
