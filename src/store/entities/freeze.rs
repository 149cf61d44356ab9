use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "freezes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub pipeline_id: Uuid,
    /// The stages it covers, as a JSON array of names.
    pub stages: String,
    pub reason: String,
    /// The name of the token that created it.
    pub created_by: String,
    /// A one-off freeze's window.
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    /// A recurring freeze's cron expressions and their time zone.
    pub freeze_start: Option<String>,
    pub freeze_end: Option<String>,
    pub cron_timezone: Option<String>,
    pub created_at: DateTimeUtc,
    /// When, and by whom, it was lifted; a lifted freeze holds nothing.
    pub lifted_at: Option<DateTimeUtc>,
    pub lifted_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
