use sea_orm::entity::prelude::*;

/// A change that may make an app's current release eligible for auto-promotion, written in
/// the transaction of the change and removed once evaluated, so that none is lost.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auto_promotion_triggers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub app_id: Uuid,
    pub release_id: Uuid,
    /// The token whose release or status it was.
    pub triggered_by: String,
    /// What happened, for the promotion's first event.
    pub reason: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
