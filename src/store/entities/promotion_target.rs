use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "promotion_targets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub promotion_id: Uuid,
    pub app_id: Uuid,
    /// Order within the promotion.
    pub position: i32,
    /// `pending`, `running`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub release_id: Option<Uuid>,
    pub error_message: String,
    /// The promotion this target last waited behind, once `target.queued` was emitted.
    pub queued_behind: Option<Uuid>,
    /// The worker that holds the target, and until when. An expired lease is free to take.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub attempts: i32,
    /// Canceled because its app was deleted: a failure in the promotion's outcome.
    pub app_deleted: bool,
    /// When the target joined its app's queue: when its promotion became `pending`. Absent
    /// while the promotion awaits approval, which neither holds nor blocks a place.
    pub queued_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
