//! Remembers that a promotion was canceled, so that it ends `canceled` even when every
//! target was already running and none was left to cancel.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Promotions {
    Table,
    CancelRequestedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Promotions::Table)
                    .add_column(
                        ColumnDef::new(Promotions::CancelRequestedAt).timestamp_with_time_zone(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Promotions::Table)
                    .drop_column(Promotions::CancelRequestedAt)
                    .to_owned(),
            )
            .await
    }
}
