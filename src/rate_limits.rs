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

    /// The IETF draft's `RateLimit` value: `"read";r=399;t=1`.
    pub fn state_header(&self) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.kind.as_str(),
            self.remaining,
            rate_limit::header_seconds(self.until_full)
        )
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
    defaults: DefaultLimits,
    started: Instant,
    buckets: RwLock<HashMap<Uuid, Arc<TokenBuckets>>>,
}

impl RateLimiter {
    pub fn new(defaults: DefaultLimits) -> Self {
        Self {
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
