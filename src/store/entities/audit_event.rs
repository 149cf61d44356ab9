use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub at: DateTimeUtc,
    /// The token's name, or `system`, `operator` or `protected-mode`.
    pub actor: String,
    pub role: String,
    /// `<kind>.<verb>`.
    pub action: String,
    pub resource_kind: String,
    pub resource_id: String,
    pub resource_name: String,
    pub pipeline_id: Option<Uuid>,
    pub pipeline_name: Option<String>,
    pub app_id: Option<Uuid>,
    pub app_name: Option<String>,
    pub request_id: Option<String>,
    pub summary: String,
    /// A JSON object of what changed; key names only, never a value that may be secret.
    pub changes: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
