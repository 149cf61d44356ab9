use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "releases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub app_id: Uuid,
    pub version: i64,
    pub image: String,
    pub description: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub promoted_from_app_id: Option<Uuid>,
    pub promoted_from_release_id: Option<Uuid>,
    pub promoted_from_promotion_id: Option<Uuid>,
    /// The promotion target that created this release; unique, so a target never gets two.
    pub promotion_target_id: Option<Uuid>,
    /// The token that made it (null in protected mode and for the engine's own).
    pub created_by_id: Option<Uuid>,
    /// Who made it, as `GET /account` answers: the token's email or name, `local` or
    /// `system`; null for releases made before this was recorded.
    pub created_by_email: Option<String>,
    /// The app's newest config change when the release was made, set by the database on
    /// insert (0: none yet); null for releases made before config history was kept.
    pub config_change_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
