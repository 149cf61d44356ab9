//! The operator's token commands: creating, listing and revoking tokens, of which only
//! a hash of the secret is stored.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{DatabaseConnection, TransactionTrait};
use sha2::{Digest, Sha256};

use crate::{
    audit::{Actor, AuditEntry},
    domain::{
        access::Role,
        names::AppName,
        rate_limit::{RateLimit, TokenLimits},
    },
    error::{Error, Result},
    store::{self, entities::token},
};

/// Every token starts with this prefix, so that secret scanners can recognise one.
const TOKEN_PREFIX: &str = "plt_";

pub(super) fn hash_secret(secret: &str) -> String {
    let mut hex = [0u8; 64];
    // 32 bytes of digest always fit 64 hex digits, which are ASCII.
    let _ = hex::encode_to_slice(Sha256::digest(secret.as_bytes()), &mut hex);
    String::from_utf8_lossy(&hex).into_owned()
}

pub(super) fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// A token as operators see it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's stable id.
    pub id: uuid::Uuid,
    pub name: String,
    pub role: Role,
    /// The address `GET /account` answers with, when one was given.
    pub email: Option<String>,
    /// Its own rate limits, where it has any.
    pub limits: TokenLimits,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a new token may have beside its name and role.
#[derive(Debug, Clone, Default)]
pub struct TokenOptions {
    pub email: Option<String>,
    pub limits: TokenLimits,
}

pub(super) fn token_info(model: token::Model) -> Result<TokenInfo> {
    let corrupt = |what: &str, value: &str| {
        Error::Internal(format!(
            "token {} has an unreadable {what} '{value}'",
            model.name
        ))
    };
    let role = Role::parse(&model.role).ok_or_else(|| corrupt("role", &model.role))?;
    let limit = |stored: &Option<String>, what: &str| {
        stored
            .as_deref()
            .map(|text| RateLimit::parse(what, text).map_err(|_| corrupt(what, text)))
            .transpose()
    };
    let limits = TokenLimits {
        read: limit(&model.rate_limit_read, "read limit")?,
        write: limit(&model.rate_limit_write, "write limit")?,
    };
    Ok(TokenInfo {
        id: model.id,
        name: model.name,
        role,
        email: model.email,
        limits,
        created_at: model.created_at,
        revoked_at: model.revoked_at,
    })
}

/// The operator's token commands.
#[derive(Clone)]
pub struct Tokens {
    pub(super) db: DatabaseConnection,
}

impl Tokens {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Creates a token and returns its secret. The secret is not stored and cannot be shown
    /// again.
    pub async fn create(&self, name: &str, role: &str) -> Result<(TokenInfo, String)> {
        self.create_with(name, role, TokenOptions::default()).await
    }

    /// Creates a token with an email address or rate limits of its own.
    pub async fn create_with(
        &self,
        name: &str,
        role: &str,
        options: TokenOptions,
    ) -> Result<(TokenInfo, String)> {
        let name = AppName::parse("name", name)?;
        if let Some(email) = &options.email {
            check_email("email", email)?;
        }
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
        let txn = self.db.begin().await?;
        let model = store::tokens::insert_token(
            &txn,
            store::tokens::NewToken {
                name: name.as_str(),
                role: role.as_str(),
                secret_hash: hash_secret(&secret),
                email: options.email.as_deref(),
                rate_limit_read: options.limits.read.map(|limit| limit.to_string()),
                rate_limit_write: options.limits.write.map(|limit| limit.to_string()),
            },
        )
        .await
        .map_err(|error| {
            store::taken_or(error, || {
                format!("a token named '{}' already exists", name.as_str())
            })
        })?;
        token_entry("token.create", &model, "created")
            .record(&txn, &Actor::operator())
            .await?;
        txn.commit().await?;
        Ok((token_info(model)?, secret))
    }

    /// Every token, revoked ones included, by name.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        store::tokens::tokens_by_name(&self.db)
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
        let found = store::tokens::token_named(&self.db, name)
            .await?
            .ok_or_else(|| Error::not_found("token", name))?;
        if found.revoked_at.is_some() {
            return token_info(found);
        }
        let txn = self.db.begin().await?;
        let revoked = store::tokens::revoke(&txn, found).await?;
        token_entry("token.revoke", &revoked, "revoked")
            .record(&txn, &Actor::operator())
            .await?;
        txn.commit().await?;
        token_info(revoked)
    }

    /// Whether any token was ever created. Revoked tokens count: revoking the last token
    /// must not reopen the server.
    pub async fn any_exist(&self) -> Result<bool> {
        Ok(store::tokens::any_token(&self.db).await?)
    }
}

/// The most characters an email address may have.
const EMAIL_MAX_CHARS: usize = 254;

/// A plausible email address: one `@` with text on both sides, no spaces or control
/// characters, at most 254 characters. It is only ever shown back, never mailed.
fn check_email(field: &str, email: &str) -> Result<()> {
    let plausible = email.chars().count() <= EMAIL_MAX_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if plausible {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{} is not an email address such as ci@example.com",
                crate::domain::quoted(email)
            ),
        ))
    }
}

/// An entry about a token: its name and role, never its secret or the secret's hash.
fn token_entry(action: &'static str, token: &token::Model, verb: &str) -> AuditEntry {
    let summary = format!("{verb} token {} with role {}", token.name, token.role);
    AuditEntry::new(action, "token", token.id, &token.name, summary).with("role", &token.role)
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
        // Lowercase hex of SHA-256, as stored by every earlier version.
        assert_eq!(hash, hex::encode(Sha256::digest(b"plt_abc")));
        assert_ne!(hash, hash_secret("plt_abd"));
        assert!(!hash.contains("abc"));
        assert_eq!(hash.len(), 64);
    }
}
