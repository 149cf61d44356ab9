//! API tokens: stored by the hash of their secret, never the secret itself.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::entities::token;

/// Stores a new token. A unique violation means the name is taken.
/// A token to store: never its secret, only the secret's hash.
pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub secret_hash: String,
    pub email: Option<&'a str>,
    pub rate_limit_read: Option<String>,
    pub rate_limit_write: Option<String>,
}

pub async fn insert_token(
    db: &impl ConnectionTrait,
    new: NewToken<'_>,
) -> Result<token::Model, DbErr> {
    token::ActiveModel {
        id: Set(Uuid::new_v4()),
        name: Set(new.name.to_owned()),
        role: Set(new.role.to_owned()),
        secret_hash: Set(new.secret_hash),
        created_at: Set(super::now()),
        revoked_at: Set(None),
        rate_limit_read: Set(new.rate_limit_read),
        rate_limit_write: Set(new.rate_limit_write),
        email: Set(new.email.map(str::to_owned)),
    }
    .insert(db)
    .await
}

/// Every token, revoked ones included, by name.
pub async fn tokens_by_name(db: &impl ConnectionTrait) -> Result<Vec<token::Model>, DbErr> {
    token::Entity::find()
        .order_by_asc(token::Column::Name)
        .all(db)
        .await
}

/// The token with this name, revoked or not.
pub async fn token_named(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<token::Model>, DbErr> {
    token::Entity::find()
        .filter(token::Column::Name.eq(name))
        .one(db)
        .await
}

/// Revokes a token now, and returns it as stored.
pub async fn revoke(db: &impl ConnectionTrait, found: token::Model) -> Result<token::Model, DbErr> {
    let mut row: token::ActiveModel = found.into();
    row.revoked_at = Set(Some(super::now()));
    row.update(db).await
}

/// Whether any token was ever created, revoked ones included.
pub async fn any_token(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    Ok(token::Entity::find().count(db).await? > 0)
}

/// The unrevoked token whose secret has this hash.
pub async fn live_token_with_hash(
    db: &impl ConnectionTrait,
    secret_hash: String,
) -> Result<Option<token::Model>, DbErr> {
    token::Entity::find()
        .filter(token::Column::SecretHash.eq(secret_hash))
        .filter(token::Column::RevokedAt.is_null())
        .one(db)
        .await
}
