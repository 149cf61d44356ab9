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
    /// `pending`, `running`, `verifying`, `succeeded`, `failed` or `canceled`.
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
    /// The verification the target got when it was deployed (its coupling's, as JSON);
    /// absent when it had none or was not deployed yet.
    pub verification: Option<String>,
    /// `pending`, `passed` or `failed`, once the target verifies.
    pub verification_state: Option<String>,
    /// When an undecided verification fails: the deploy's time plus its timeout.
    pub verification_deadline: Option<DateTimeUtc>,
    /// The contexts the verification was decided on, as JSON.
    pub verification_results: Option<String>,
    /// The release a failed verification deployed to roll the app back.
    pub rollback_release_id: Option<Uuid>,
    /// Its promotion broke glass: no freeze holds it.
    pub freeze_exempt: bool,
    /// The freeze it was last told it waits for (`target.queued`).
    pub waiting_for_freeze: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
