//! `target.queued` events name the promotion the target waits for in a column of their
//! own, so that clients need not parse the message.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PromotionEvents {
    Table,
    WaitingFor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PromotionEvents::Table)
                    .add_column(ColumnDef::new(PromotionEvents::WaitingFor).uuid())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PromotionEvents::Table)
                    .drop_column(PromotionEvents::WaitingFor)
                    .to_owned(),
            )
            .await
    }
}
