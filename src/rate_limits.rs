//! This process's token buckets: two per token, one for reads and one for writes, that
//! admit or refuse each authenticated call before it runs. The arithmetic is
//! [`crate::domain::rate_limit`]'s; this module keeps the buckets. Limits hold per
//! process, so with N replicas a token may make up to N times its limit.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::domain::rate_limit::{self, CallKind, RateLimit, TokenLimits};

/// The limits of tokens that have none of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultLimits {
    pub read: RateLimit,
    pub write: RateLimit,
}

impl Default for DefaultLimits {
    fn default() -> Self {
        Self {
            read: RateLimit::Limited {
                per_second: 200,
                burst: 400,
            },
            write: RateLimit::Limited {
                per_second: 50,
                burst: 100,
            },
        }
    }
}

/// One token's two buckets, each the time at which it is full again, in nanoseconds since
/// the limiter started.
#[derive(Default)]
struct TokenBuckets {
    read: AtomicU64,
    write: AtomicU64,
}

impl TokenBuckets {
    fn of(&self, kind: CallKind) -> &AtomicU64 {
        match kind {
            CallKind::Read => &self.read,
            CallKind::Write => &self.write,
        }
    }
}

/// A policy header's parts: the kind, the rate and the burst.
type PolicyKey = (CallKind, u32, u32);

/// What a bucket said about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub kind: CallKind,
    pub per_second: u32,
    pub burst: u32,
    pub remaining: u32,
    pub until_full: Duration,
    /// Zero when the call was admitted.
    pub retry_after: Duration,
}

impl Quota {
    /// The IETF draft's `RateLimit-Policy` value: `"read";q=400;w=2`.
    pub fn policy_header(&self) -> String {
        let window = RateLimit::Limited {
            per_second: self.per_second,
            burst: self.burst,
        }
        .window_seconds();
        format!("\"{}\";q={};w={window}", self.kind.as_str(), self.burst)
    }

    /// [`Self::policy_header`] as a header value, made once per policy: it is the same
    /// on every answer to tokens of one limit.
    pub fn policy_header_value(&self) -> http::HeaderValue {
        thread_local! {
            static MADE: std::cell::RefCell<Vec<(PolicyKey, http::HeaderValue)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let key = (self.kind, self.per_second, self.burst);
        MADE.with(|made| {
            let mut made = made.borrow_mut();
            if let Some((_, value)) = made.iter().find(|(policy, _)| *policy == key) {
                return value.clone();
            }
            let value = http::HeaderValue::from_str(&self.policy_header())
                .unwrap_or_else(|_| http::HeaderValue::from_static(""));
            // Policies are few (the defaults and the tokens' own); keep a handful.
            if made.len() >= 16 {
                made.remove(0);
            }
            made.push((key, value.clone()));
            value
        })
    }

    /// The IETF draft's `RateLimit` value: `"read";r=399;t=1`, written without a
    /// formatting allocation: it goes on every answer to a limited token.
    pub fn state_header(&self) -> http::HeaderValue {
        use std::io::Write as _;
        let mut buffer = [0u8; 64];
        let mut cursor = std::io::Cursor::new(&mut buffer[..]);
        // 64 bytes hold the longest value: two u64 numbers and a kind.
        let _ = write!(
            cursor,
            "\"{}\";r={};t={}",
            self.kind.as_str(),
            self.remaining,
            rate_limit::header_seconds(self.until_full)
        );
        let written = usize::try_from(cursor.position()).unwrap_or(0);
        http::HeaderValue::from_bytes(&buffer[..written])
            .unwrap_or_else(|_| http::HeaderValue::from_static(""))
    }

    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        rate_limit::header_seconds(self.retry_after).max(1)
    }
}

/// The answer for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No limit applies (the limit for this kind is off).
    Unlimited,
    Admitted(Quota),
    Refused(Quota),
}

/// Every token's buckets in this process. Bounded by the number of tokens that have
/// called; each costs two words.
pub struct RateLimiter {
    /// Tells this limiter's buckets from another's in the threads' caches (several
    /// servers may share a process, as the tests' do).
    id: u64,
    defaults: DefaultLimits,
    started: Instant,
    buckets: RwLock<HashMap<Uuid, Arc<TokenBuckets>>>,
}

/// Buckets each worker thread has looked up, so that a call touches no lock shared with
/// the other threads: only its bucket. Bounded: it starts over past its limit.
type KnownBuckets = HashMap<(u64, Uuid), Arc<TokenBuckets>>;
const BUCKETS_KNOWN_PER_THREAD: usize = 4096;

thread_local! {
    static KNOWN: std::cell::RefCell<KnownBuckets> = std::cell::RefCell::new(HashMap::new());
}

impl RateLimiter {
    pub fn new(defaults: DefaultLimits) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            defaults,
            started: Instant::now(),
            buckets: RwLock::new(HashMap::new()),
        }
    }

    /// Draws one call of `kind` from the token's bucket.
    pub fn admit(&self, token_id: Uuid, limits: TokenLimits, kind: CallKind) -> Admission {
        let limit = limits.of(kind).unwrap_or(match kind {
            CallKind::Read => self.defaults.read,
            CallKind::Write => self.defaults.write,
        });
        let RateLimit::Limited { per_second, burst } = limit else {
            return Admission::Unlimited;
        };
        let buckets = self.buckets_of(token_id);
        let bucket = buckets.of(kind);
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut full_at = bucket.load(Ordering::Relaxed);
        loop {
            let drawn = rate_limit::draw(per_second, burst, full_at, now);
            let quota = Quota {
                kind,
                per_second,
                burst,
                remaining: drawn.remaining,
                until_full: drawn.until_full,
                retry_after: drawn.retry_after,
            };
            if !drawn.admitted {
                return Admission::Refused(quota);
            }
            match bucket.compare_exchange_weak(
                full_at,
                drawn.full_at,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Admission::Admitted(quota),
                Err(current) => full_at = current,
            }
        }
    }

    fn buckets_of(&self, token_id: Uuid) -> Arc<TokenBuckets> {
        let key = (self.id, token_id);
        if let Some(known) = KNOWN.with(|known| known.borrow().get(&key).cloned()) {
            return known;
        }
        let buckets = self.shared_buckets_of(token_id);
        KNOWN.with(|known| {
            let mut known = known.borrow_mut();
            if known.len() >= BUCKETS_KNOWN_PER_THREAD {
                known.clear();
            }
            known.insert(key, Arc::clone(&buckets));
        });
        buckets
    }

    fn shared_buckets_of(&self, token_id: Uuid) -> Arc<TokenBuckets> {
        // A poisoned lock still guards a consistent map: each write is one insert.
        let known = self
            .buckets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&token_id)
            .cloned();
        if let Some(buckets) = known {
            return buckets;
        }
        let mut buckets = self
            .buckets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(buckets.entry(token_id).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(per_second: u32, burst: u32) -> RateLimit {
        RateLimit::Limited { per_second, burst }
    }

    #[test]
    fn each_token_and_kind_has_its_own_bucket() {
        let limiter = RateLimiter::new(DefaultLimits {
            read: limited(1, 2),
            write: limited(1, 1),
        });
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let none = TokenLimits::default();
        for _ in 0..2 {
            assert!(matches!(
                limiter.admit(first, none, CallKind::Read),
                Admission::Admitted(_)
            ));
        }
        let Admission::Refused(quota) = limiter.admit(first, none, CallKind::Read) else {
            panic!("the third read within a second is refused");
        };
        assert_eq!(quota.retry_after_seconds(), 1);
        assert_eq!(quota.policy_header(), "\"read\";q=2;w=2");
        assert!(matches!(
            limiter.admit(first, none, CallKind::Write),
            Admission::Admitted(_)
        ));
        assert!(matches!(
            limiter.admit(second, none, CallKind::Read),
            Admission::Admitted(_)
        ));
    }

    #[test]
    fn a_tokens_own_limits_override_the_defaults_and_zero_is_unlimited() {
        let limiter = RateLimiter::new(DefaultLimits::default());
        let token = Uuid::new_v4();
        let own = TokenLimits {
            read: Some(limited(1, 1)),
            write: Some(RateLimit::Off),
        };
        assert!(matches!(
            limiter.admit(token, own, CallKind::Read),
            Admission::Admitted(_)
        ));
        assert!(matches!(
            limiter.admit(token, own, CallKind::Read),
            Admission::Refused(_)
        ));
        for _ in 0..500 {
            assert_eq!(
                limiter.admit(token, own, CallKind::Write),
                Admission::Unlimited
            );
        }
    }
}
