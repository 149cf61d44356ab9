//! A token's own rate limits, overriding the server's defaults, and the email address it
//! answers to (`GET /account`). All optional: a token without them uses the defaults, and
//! answers with its name.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Tokens {
    Table,
    /// `<per second>/<burst>`, or `0` for unlimited.
    RateLimitRead,
    RateLimitWrite,
    Email,
}

const COLUMNS: [Tokens; 3] = [Tokens::RateLimitRead, Tokens::RateLimitWrite, Tokens::Email];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tokens::Table)
                        .add_column(ColumnDef::new(column).text())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tokens::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
