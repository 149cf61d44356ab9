//! Bearer tokens: creating, listing and revoking them, and turning the `authorization`
//! header of a request into the [`Caller`] the use cases authorize against.
//!
//! Only a SHA-256 hash of each token is stored. A presented token is hashed and looked up
//! by that hash, so no comparison ever runs over the secret itself, and the lookup's timing
//! depends on a hash the caller cannot steer. Every request reads the token row, so a
//! revocation takes effect at once on every replica that shares the database.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use sea_orm::DatabaseConnection;

use crate::{
    domain::access::{Caller, Role},
    error::{Error, Result},
    store,
};

mod tokens;

use tokens::{hash_secret, token_info};
pub use tokens::{TokenInfo, TokenOptions, Tokens};

/// The caller every request acts as while no token exists and the server runs in protected
/// mode.
pub use crate::domain::access::PROTECTED_MODE_CALLER;

/// Which API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Rest,
}

/// How long an answer about a token (valid, revoked, unknown), or about whether any token
/// exists, is trusted before the database is asked again. It bounds how late a revocation,
/// or the first token ending protected mode, takes effect on any process, including one
/// other than where it happened: under a second, as API.md requires.
pub const TOKEN_RECHECK: Duration = Duration::from_millis(900);
/// Unknown tokens remembered at most; past it, no more are remembered until some expire.
const UNKNOWN_TOKENS_REMEMBERED: usize = 10_000;
/// Database lookups per second for tokens not known to be valid. Past it, such tokens are
/// refused without a lookup, so a flood of made-up tokens cannot load the database.
const UNKNOWN_LOOKUPS_PER_SECOND: u32 = 200;

/// What the database last said about one token hash, and when.
struct Answer {
    caller: Option<Caller>,
    checked: Instant,
}

/// Answers about tokens, kept in memory for [`TOKEN_RECHECK`].
#[derive(Default)]
struct TokenCache {
    answers: HashMap<String, Answer>,
    /// When the current second of lookups began, and how many it has had.
    lookups: (Option<Instant>, u32),
    /// When no token existed, the last time the database said so.
    none_exist_checked: Option<Instant>,
}

impl TokenCache {
    /// The fresh answer for a hash: `Some(None)` for a token known to be unknown or revoked.
    fn fresh(&self, hash: &str) -> Option<Option<Caller>> {
        self.answers
            .get(hash)
            .filter(|answer| answer.checked.elapsed() < TOKEN_RECHECK)
            .map(|answer| answer.caller.clone())
    }

    /// Whether a lookup of this hash may go to the database now. Tokens last seen valid
    /// are always re-checked; others share a per-second budget.
    fn allow_lookup(&mut self, hash: &str) -> bool {
        let known_valid = self
            .answers
            .get(hash)
            .is_some_and(|answer| answer.caller.is_some());
        if known_valid {
            return true;
        }
        let now = Instant::now();
        match self.lookups.0 {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => self.lookups = (Some(now), 0),
        }
        self.lookups.1 += 1;
        self.lookups.1 <= UNKNOWN_LOOKUPS_PER_SECOND
    }

    fn remember(&mut self, hash: String, caller: Option<Caller>) {
        if caller.is_none() && self.answers.len() >= UNKNOWN_TOKENS_REMEMBERED {
            self.answers
                .retain(|_, answer| answer.checked.elapsed() < TOKEN_RECHECK);
            if self.answers.len() >= UNKNOWN_TOKENS_REMEMBERED {
                return;
            }
        }
        self.answers.insert(
            hash,
            Answer {
                caller,
                checked: Instant::now(),
            },
        );
    }
}

/// Authenticates requests. Shared by the gRPC and REST paths. Answers come from memory
/// for up to [`TOKEN_RECHECK`], so most requests cost no database round trip.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Tokens,
    /// Whether calls without tokens are allowed while no token exists: true on a loopback
    /// listener or when the operator asked for insecure mode.
    protected_mode: bool,
    /// Latched once a token has been seen to exist; tokens are never deleted.
    tokens_exist: Arc<AtomicBool>,
    cache: Arc<Mutex<TokenCache>>,
    /// Held while the database is asked whether tokens exist, so that requests arriving
    /// together when the answer goes stale ask once between them.
    asking_whether_tokens_exist: Arc<tokio::sync::Mutex<()>>,
}

impl Authenticator {
    pub fn new(db: DatabaseConnection, protected_mode: bool) -> Self {
        Self {
            tokens: Tokens::new(db),
            protected_mode,
            tokens_exist: Arc::new(AtomicBool::new(false)),
            cache: Arc::new(Mutex::new(TokenCache::default())),
            asking_whether_tokens_exist: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        // Each update is a single insert or field write, so a lock poisoned by a panic
        // elsewhere still guards consistent data.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn tokens_exist(&self) -> Result<bool> {
        let known = || {
            if self.tokens_exist.load(Ordering::Relaxed) {
                return Some(true);
            }
            self.cache()
                .none_exist_checked
                .is_some_and(|checked| checked.elapsed() < TOKEN_RECHECK)
                .then_some(false)
        };
        if let Some(exist) = known() {
            return Ok(exist);
        }
        let _asking = self.asking_whether_tokens_exist.lock().await;
        // Whoever held the lock before may have asked already.
        if let Some(exist) = known() {
            return Ok(exist);
        }
        let exist = self.tokens.any_exist().await?;
        if exist {
            self.tokens_exist.store(true, Ordering::Relaxed);
        } else {
            self.cache().none_exist_checked = Some(Instant::now());
        }
        Ok(exist)
    }

    /// Whether calls need no token right now: protected mode, before the first token.
    pub async fn open_to_all(&self) -> bool {
        self.protected_mode && matches!(self.tokens_exist().await, Ok(false))
    }

    /// The caller behind an `authorization` header value: `Bearer <token>`, or, over REST
    /// only, the bare token as Akkeris clients send it. gRPC clients always send the scheme,
    /// so a bare token there is UNAUTHENTICATED.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        transport: Transport,
    ) -> Result<Caller> {
        let verified = match authorization {
            Some(header) => self.verify(header, transport).await,
            None => Err(Error::Unauthenticated(
                "missing bearer token in the authorization header".into(),
            )),
        };
        match verified {
            Ok(caller) => {
                // A valid token proves tokens exist: protected mode is over at once. Read
                // first, so that requests do not all write one shared cache line.
                if !self.tokens_exist.load(Ordering::Relaxed) {
                    self.tokens_exist.store(true, Ordering::Relaxed);
                }
                Ok(caller)
            }
            Err(refusal) => {
                if self.tokens_exist().await? {
                    return Err(refusal);
                }
                if self.protected_mode {
                    return Ok(Caller::new(PROTECTED_MODE_CALLER, Role::Admin));
                }
                Err(Error::Unauthenticated(
                    "no API tokens exist; create one with `pipelines tokens create`".into(),
                ))
            }
        }
    }

    /// The caller a presented token stands for, from memory when it was checked within
    /// [`TOKEN_RECHECK`].
    async fn verify(&self, header: &[u8], transport: Transport) -> Result<Caller> {
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
        let hash = hash_secret(secret);
        let unknown = || Error::Unauthenticated("unknown or revoked token".into());
        if let Some(answer) = self.cache().fresh(&hash) {
            return answer.ok_or_else(unknown);
        }
        if !self.cache().allow_lookup(&hash) {
            return Err(Error::Unauthenticated(
                "too many unknown tokens presented; try again in a second".into(),
            ));
        }
        let caller =
            match store::tokens::live_token_with_hash(&self.tokens.db, hash.clone()).await? {
                Some(found) => {
                    let info = token_info(found)?;
                    Some(
                        Caller::new(info.name, info.role)
                            .with_token_id(info.id)
                            .with_limits(info.limits)
                            .with_email(info.email),
                    )
                }
                None => None,
            };
        self.cache().remember(hash, caller.clone());
        caller.ok_or_else(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tokens_are_remembered_up_to_a_cap() {
        let mut cache = TokenCache::default();
        for n in 0..UNKNOWN_TOKENS_REMEMBERED + 50 {
            cache.remember(format!("hash-{n}"), None);
        }
        assert_eq!(cache.answers.len(), UNKNOWN_TOKENS_REMEMBERED);
        assert_eq!(cache.fresh("hash-0"), Some(None));
        // A valid token is remembered even when the unknown ones fill the cache.
        cache.remember("valid".into(), Some(Caller::new("ci", Role::Write)));
        assert!(cache.fresh("valid").is_some_and(|caller| caller.is_some()));
    }

    #[test]
    fn lookups_of_unknown_tokens_are_rate_limited_but_valid_ones_are_not() {
        let mut cache = TokenCache::default();
        let allowed = (0..UNKNOWN_LOOKUPS_PER_SECOND + 100)
            .filter(|n| cache.allow_lookup(&format!("made-up-{n}")))
            .count();
        assert_eq!(allowed, UNKNOWN_LOOKUPS_PER_SECOND as usize);
        cache.remember("valid".into(), Some(Caller::new("ci", Role::Read)));
        assert!(
            cache.allow_lookup("valid"),
            "a known token is always rechecked"
        );
    }

    #[tokio::test]
    async fn requests_arriving_together_ask_once_whether_tokens_exist() {
        use std::sync::atomic::AtomicUsize;

        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
        let mut db = store::connect(&url).await.expect("database");
        store::migrate(&db).await.expect("migrations");
        let counted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&counted);
        db.set_metric_callback(move |info| {
            if info.statement.sql.contains("COUNT(*)") && info.statement.sql.contains("tokens") {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        let authenticator = Authenticator::new(db, true);
        let requests = (0..50).map(|_| {
            let authenticator = authenticator.clone();
            tokio::spawn(async move { authenticator.authenticate(None, Transport::Rest).await })
        });
        for request in futures::future::join_all(requests).await {
            let caller = request
                .expect("request task")
                .expect("protected mode lets it in");
            assert_eq!(caller.role, Role::Admin);
        }
        assert_eq!(counted.load(Ordering::Relaxed), 1);
    }
}
