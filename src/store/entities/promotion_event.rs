use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "promotion_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub promotion_id: Uuid,
    /// 1, 2, 3… within the promotion.
    pub sequence: i64,
    /// The event type, such as `target.running`.
    pub kind: String,
    pub target_id: Option<Uuid>,
    pub app_id: Option<Uuid>,
    pub app_name: String,
    pub target_status: String,
    pub promotion_status: String,
    pub release_id: Option<Uuid>,
    pub release_version: Option<i64>,
    pub message: String,
    pub created_at: DateTimeUtc,
    /// For `target.queued`: the promotion the target waits for.
    pub waiting_for: Option<Uuid>,
    /// For approval events: the token that voted.
    pub actor: String,
    /// For approval events: the voter's comment.
    pub comment: String,
    /// For `target.queued`: the freeze the target waits for, as JSON
    /// `{freeze_id, reason, until}`.
    pub waiting_for_freeze: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
