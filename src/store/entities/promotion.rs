use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "promotions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub pipeline_id: Uuid,
    pub source_app_id: Uuid,
    pub source_release_id: Uuid,
    /// `pending`, `running`, `successful`, `failed`, `partially_failed`, `canceled`,
    /// `awaiting_approval` or `rejected`.
    pub status: String,
    pub safe: bool,
    /// The name of the token that created the promotion.
    pub created_by: String,
    /// The status checks an elevated caller bypassed, as a JSON array.
    pub overridden_checks: String,
    pub request_id: Option<String>,
    pub request_fingerprint: Option<String>,
    /// The number of events written so far; the next event's sequence is this plus one.
    pub event_count: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// Set when the promotion was canceled; it then ends `canceled` once nothing runs.
    pub cancel_requested_at: Option<DateTimeUtc>,
    /// The approvals it needs before it runs, fixed when it was created.
    pub required_approvals: i32,
    /// For an auto-promotion: the token whose release or status triggered it.
    pub triggered_by: Option<String>,
    /// The freezes an elevated caller broke glass through, as a JSON array.
    pub overridden_freezes: String,
    /// The token that created it (null in protected mode and for auto-promotions).
    pub created_by_id: Option<Uuid>,
    /// Its creator as `GET /account` answers; null for promotions made before it was kept.
    pub created_by_email: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
