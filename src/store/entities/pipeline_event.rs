use sea_orm::entity::prelude::*;

/// One change in a pipeline, numbered in the order the changes committed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pipeline_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub pipeline_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    /// `<resource>.<verb>`, for example `release.created`.
    pub kind: String,
    /// The id of the resource that changed.
    pub subject_id: Uuid,
    /// The app the change is about, where there is one.
    pub app_id: Option<Uuid>,
    pub app_name: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
