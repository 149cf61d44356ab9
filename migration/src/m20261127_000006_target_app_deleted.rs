//! Remembers that a target was canceled because its app was deleted, which counts as a
//! failure in the promotion's outcome where an ordinary cancel does not.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PromotionTargets {
    Table,
    AppDeleted,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PromotionTargets::Table)
                    .add_column(
                        ColumnDef::new(PromotionTargets::AppDeleted)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PromotionTargets::Table)
                    .drop_column(PromotionTargets::AppDeleted)
                    .to_owned(),
            )
            .await
    }
}
