//! Rollbacks: a new release repeating an earlier release's image, deployed through the
//! configured deployer and queued on its app like a promotion target.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Rollbacks {
    Table,
    Id,
    AppId,
    ReleaseId,
    RolledBackToId,
    Status,
    ErrorMessage,
    CreatedBy,
    LeaseOwner,
    LeaseExpiresAt,
    Attempts,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Apps {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    Id,
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
                    .table(Rollbacks::Table)
                    .col(
                        ColumnDef::new(Rollbacks::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Rollbacks::AppId).uuid().not_null())
                    .col(
                        ColumnDef::new(Rollbacks::ReleaseId)
                            .uuid()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Rollbacks::RolledBackToId).uuid().not_null())
                    .col(ColumnDef::new(Rollbacks::Status).string().not_null())
                    .col(ColumnDef::new(Rollbacks::ErrorMessage).text().not_null())
                    .col(ColumnDef::new(Rollbacks::CreatedBy).string().not_null())
                    .col(ColumnDef::new(Rollbacks::LeaseOwner).string())
                    .col(ColumnDef::new(Rollbacks::LeaseExpiresAt).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(Rollbacks::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp(Rollbacks::CreatedAt))
                    .col(timestamp(Rollbacks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Rollbacks::Table, Rollbacks::AppId)
                            .to(Apps::Table, Apps::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Rollbacks::Table, Rollbacks::ReleaseId)
                            .to(Releases::Table, Releases::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rollbacks_app_status")
                    .table(Rollbacks::Table)
                    .col(Rollbacks::AppId)
                    .col(Rollbacks::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Rollbacks::Table).to_owned())
            .await
    }
}
