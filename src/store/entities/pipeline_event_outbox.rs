use sea_orm::entity::prelude::*;

/// A change's event, written by the change's transaction and not numbered yet.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pipeline_event_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub pipeline_id: Uuid,
    pub kind: String,
    pub subject_id: Uuid,
    pub app_id: Option<Uuid>,
    pub app_name: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
