use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "couplings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub pipeline_id: Uuid,
    pub app_id: Uuid,
    pub stage: String,
    /// The required status-check contexts, as a JSON array of strings.
    pub required_contexts: String,
    /// Whether eligible releases of the previous stage are promoted here automatically.
    pub auto_promote: bool,
    /// How many approvals a promotion into this app needs before it runs (0 to 5).
    pub required_approvals: i32,
    /// What must hold on a release after a promotion deployed it here, as JSON; none when
    /// absent.
    pub verification: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
