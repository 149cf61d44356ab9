//! Bearer tokens: creating, listing and revoking them, and turning the `authorization`
//! header of a request into the [`Caller`] the use cases authorize against.
//!
//! Only a SHA-256 hash of each token is stored. A presented token is hashed and looked up
//! by that hash, so no comparison ever runs over the secret itself, and the lookup's timing
//! depends on a hash the caller cannot steer. Every request reads the token row, so a
//! revocation takes effect at once on every replica that shares the database.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    domain::{
        access::{Caller, Role},
        names::AppName,
    },
    error::{Error, Result},
    store::{self, entities::token, is_unique_violation},
};

/// Every token starts with this prefix, so that secret scanners can recognise one.
const TOKEN_PREFIX: &str = "plt_";

/// The caller every request acts as while no token exists and the server runs in protected
/// mode.
pub const PROTECTED_MODE_CALLER: &str = "protected-mode";

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// A token as operators see it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn token_info(model: token::Model) -> Result<TokenInfo> {
    let role = Role::parse(&model.role).ok_or_else(|| {
        Error::Internal(format!(
            "token {} has unknown role '{}'",
            model.name, model.role
        ))
    })?;
    Ok(TokenInfo {
        name: model.name,
        role,
        created_at: model.created_at,
        revoked_at: model.revoked_at,
    })
}

/// The operator's token commands.
#[derive(Clone)]
pub struct Tokens {
    db: DatabaseConnection,
}

impl Tokens {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Creates a token and returns its secret. The secret is not stored and cannot be shown
    /// again.
    pub async fn create(&self, name: &str, role: &str) -> Result<(TokenInfo, String)> {
        let name = AppName::parse("name", name)?;
        let role = Role::parse(role).ok_or_else(|| {
            Error::invalid(
                "role",
                format!(
                    "{} is not a role; expected read, write or admin",
                    crate::domain::quoted(role)
                ),
            )
        })?;
        let secret = generate_secret();
        let row = token::ActiveModel {
            id: Set(Uuid::new_v4()),
            name: Set(name.as_str().to_owned()),
            role: Set(role.as_str().to_owned()),
            secret_hash: Set(hash_secret(&secret)),
            created_at: Set(store::now()),
            revoked_at: Set(None),
        };
        match row.insert(&self.db).await {
            Ok(model) => Ok((token_info(model)?, secret)),
            Err(error) if is_unique_violation(&error) => Err(Error::AlreadyExists(format!(
                "a token named '{}' already exists",
                name.as_str()
            ))),
            Err(error) => Err(error.into()),
        }
    }

    /// Every token, revoked ones included, by name.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        token::Entity::find()
            .order_by_asc(token::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(token_info)
            .collect()
    }

    /// Revokes a token by name. Revoking a revoked token is a no-op that reports it.
    pub async fn revoke(&self, name: &str) -> Result<TokenInfo> {
        if name.contains('\0') {
            return Err(Error::not_found("token", &name.replace('\0', "\\0")));
        }
        let found = token::Entity::find()
            .filter(token::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("token", name))?;
        if found.revoked_at.is_some() {
            return token_info(found);
        }
        let mut row: token::ActiveModel = found.into();
        row.revoked_at = Set(Some(store::now()));
        token_info(row.update(&self.db).await?)
    }

    /// Whether any token was ever created. Revoked tokens count: revoking the last token
    /// must not reopen the server.
    pub async fn any_exist(&self) -> Result<bool> {
        Ok(token::Entity::find().count(&self.db).await? > 0)
    }
}

/// Which API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Rest,
}

/// Authenticates requests. Shared by the gRPC and REST paths.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Tokens,
    /// Whether calls without tokens are allowed while no token exists: true on a loopback
    /// listener or when the operator asked for insecure mode.
    protected_mode: bool,
    /// Latched once a token has been seen to exist; tokens are never deleted.
    tokens_exist: Arc<AtomicBool>,
}

impl Authenticator {
    pub fn new(db: DatabaseConnection, protected_mode: bool) -> Self {
        Self {
            tokens: Tokens::new(db),
            protected_mode,
            tokens_exist: Arc::new(AtomicBool::new(false)),
        }
    }

    async fn tokens_exist(&self) -> Result<bool> {
        if self.tokens_exist.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let exist = self.tokens.any_exist().await?;
        if exist {
            self.tokens_exist.store(true, Ordering::Relaxed);
        }
        Ok(exist)
    }

    /// The caller behind an `authorization` header value: `Bearer <token>`, or, over REST
    /// only, the bare token as Akkeris clients send it. gRPC clients always send the scheme,
    /// so a bare token there is UNAUTHENTICATED.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        transport: Transport,
    ) -> Result<Caller> {
        if !self.tokens_exist().await? {
            if self.protected_mode {
                return Ok(Caller::new(PROTECTED_MODE_CALLER, Role::Admin));
            }
            return Err(Error::Unauthenticated(
                "no API tokens exist; create one with `pipelines tokens create`".into(),
            ));
        }
        let header = authorization.ok_or_else(|| {
            Error::Unauthenticated("missing bearer token in the authorization header".into())
        })?;
        let header = std::str::from_utf8(header)
            .map_err(|_| Error::Unauthenticated("malformed authorization header".into()))?
            .trim();
        let secret = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            Some(_) => {
                return Err(Error::Unauthenticated(
                    "malformed authorization header; expected `Bearer <token>`".into(),
                ))
            }
            None if transport == Transport::Rest => header,
            None => {
                return Err(Error::Unauthenticated(
                    "malformed authorization metadata; gRPC expects `Bearer <token>`".into(),
                ))
            }
        };
        if secret.is_empty() || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::Unauthenticated(
                "malformed authorization header; expected `Bearer <token>`".into(),
            ));
        }
        let found = token::Entity::find()
            .filter(token::Column::SecretHash.eq(hash_secret(secret)))
            .filter(token::Column::RevokedAt.is_null())
            .one(&self.tokens.db)
            .await?
            .ok_or_else(|| Error::Unauthenticated("unknown or revoked token".into()))?;
        let info = token_info(found)?;
        Ok(Caller::new(info.name, info.role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let first = generate_secret();
        let second = generate_secret();
        assert!(first.starts_with(TOKEN_PREFIX));
        assert_eq!(first.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(first, second);
    }

    #[test]
    fn hashes_are_stable_and_hide_the_secret() {
        let hash = hash_secret("plt_abc");
        assert_eq!(hash, hash_secret("plt_abc"));
        assert_ne!(hash, hash_secret("plt_abd"));
        assert!(!hash.contains("abc"));
        assert_eq!(hash.len(), 64);
    }
}
