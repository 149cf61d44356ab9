use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// `read`, `write` or `admin`.
    pub role: String,
    /// Hex SHA-256 of the secret; the secret itself is never stored.
    pub secret_hash: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// The token's own read limit, `<per second>/<burst>` or `0`; the server's default when
    /// absent.
    pub rate_limit_read: Option<String>,
    /// The token's own write limit, as `rate_limit_read`.
    pub rate_limit_write: Option<String>,
    /// The address `GET /account` answers with; the token's name when absent.
    pub email: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
