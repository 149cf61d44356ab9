//! The audit log: one row per change made through the API, the operator commands or the
//! engine, written in the same transaction as the change. Rows are only ever inserted, and
//! deleted when they pass the retention period.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Actor,
    Role,
    Action,
    ResourceKind,
    ResourceId,
    ResourceName,
    PipelineId,
    PipelineName,
    AppId,
    AppName,
    RequestId,
    Summary,
    Changes,
}

/// The indexes the list's filters use, each ending in the list's order.
const INDEXES: [(&str, Option<AuditEvents>); 5] = [
    ("ix_audit_events_at", None),
    ("ix_audit_events_pipeline", Some(AuditEvents::PipelineId)),
    ("ix_audit_events_app", Some(AuditEvents::AppId)),
    ("ix_audit_events_actor", Some(AuditEvents::Actor)),
    ("ix_audit_events_action", Some(AuditEvents::Action)),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::Actor).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Role).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Action).text().not_null())
                    .col(ColumnDef::new(AuditEvents::ResourceKind).text().not_null())
                    .col(ColumnDef::new(AuditEvents::ResourceId).text().not_null())
                    .col(ColumnDef::new(AuditEvents::ResourceName).text().not_null())
                    .col(ColumnDef::new(AuditEvents::PipelineId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::PipelineName).text().null())
                    .col(ColumnDef::new(AuditEvents::AppId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::AppName).text().null())
                    .col(ColumnDef::new(AuditEvents::RequestId).text().null())
                    .col(ColumnDef::new(AuditEvents::Summary).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Changes).text().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, filter) in INDEXES {
            let mut index = Index::create();
            index.name(name).table(AuditEvents::Table);
            if let Some(column) = filter {
                index.col(column);
            }
            index.col(AuditEvents::At).col(AuditEvents::Id);
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
