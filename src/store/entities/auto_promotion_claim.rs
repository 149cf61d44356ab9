use sea_orm::entity::prelude::*;

/// A release auto-promoted to a target app: the primary key makes it happen at most once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auto_promotion_claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_release_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub target_app_id: Uuid,
    pub promotion_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
