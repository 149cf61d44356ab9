//! Rate limits: how fast a token may call, as a token bucket per kind of call, and the
//! bucket's arithmetic. The buckets themselves live with the access layer
//! ([`crate::rate_limits`]); the rules are here, free of clocks and locks.

use std::{fmt, time::Duration};

use super::InvalidField;

/// The two kinds of call a token has a bucket for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// Gets, lists and watches.
    Read,
    /// Everything that changes something.
    Write,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Read => "read",
            CallKind::Write => "write",
        }
    }

    /// A REST request's kind, by its method; `POST /filters/...` only reads (Heroku's
    /// filters carry their query in a body).
    pub fn of_rest(method: &http::Method, path: &str) -> CallKind {
        match *method {
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS => CallKind::Read,
            http::Method::POST if path.starts_with("/filters/") => CallKind::Read,
            _ => CallKind::Write,
        }
    }

    /// A gRPC call's kind, by its method name (`/pipelines.v1.AppService/GetApp`).
    pub fn of_grpc_path(path: &str) -> CallKind {
        let method = path.rsplit('/').next().unwrap_or_default();
        let reads = ["Get", "List", "Watch", "Find", "Diff"];
        if reads.iter().any(|prefix| method.starts_with(prefix)) {
            CallKind::Read
        } else {
            CallKind::Write
        }
    }
}

/// A token bucket's shape: refilled at `per_second` tokens a second, holding at most
/// `burst`. `Off` never refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    Off,
    Limited { per_second: u32, burst: u32 },
}

/// The most a limit's rate or burst may be.
const LIMIT_MAX: u32 = 1_000_000;

impl RateLimit {
    /// Reads `<per second>/<burst>` (`200/400`), or `0` for no limit.
    pub fn parse(field: &str, text: &str) -> Result<RateLimit, InvalidField> {
        let invalid = || {
            InvalidField::new(
                field,
                format!(
                    "{} is not a rate limit; expected <per second>/<burst> such as 200/400 (each 1 to {LIMIT_MAX}), or 0 for none",
                    super::quoted(text)
                ),
            )
        };
        let text = text.trim();
        if text == "0" {
            return Ok(RateLimit::Off);
        }
        let (rate, burst) = text.split_once('/').ok_or_else(invalid)?;
        let number = |value: &str| {
            value
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=LIMIT_MAX).contains(n))
                .ok_or_else(invalid)
        };
        Ok(RateLimit::Limited {
            per_second: number(rate)?,
            burst: number(burst)?,
        })
    }

    /// Seconds for an empty bucket to fill up (the policy's window), rounded up.
    pub fn window_seconds(self) -> u64 {
        match self {
            RateLimit::Off => 0,
            RateLimit::Limited { per_second, burst } => {
                u64::from(burst).div_ceil(u64::from(per_second))
            }
        }
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimit::Off => f.write_str("0"),
            RateLimit::Limited { per_second, burst } => write!(f, "{per_second}/{burst}"),
        }
    }
}

/// A token's own limits; `None` takes the server's default for that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenLimits {
    pub read: Option<RateLimit>,
    pub write: Option<RateLimit>,
}

impl TokenLimits {
    pub fn of(&self, kind: CallKind) -> Option<RateLimit> {
        match kind {
            CallKind::Read => self.read,
            CallKind::Write => self.write,
        }
    }
}

/// A bucket's state as the generic cell rate algorithm keeps it: the time, in nanoseconds
/// on the limiter's clock, at which the bucket will be full again. Equivalent to a token
/// bucket, in one number that one compare-and-swap updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    /// The bucket's new full-at time, to store when the call is admitted.
    pub full_at: u64,
    /// Whether the call is admitted.
    pub admitted: bool,
    /// Tokens left after this call.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub until_full: Duration,
    /// When refused, until one token is back.
    pub retry_after: Duration,
}

/// Draws one token at `now` from a bucket of `per_second`/`burst` that is full at
/// `full_at` (both in nanoseconds on one clock).
pub fn draw(per_second: u32, burst: u32, full_at: u64, now: u64) -> Draw {
    let interval = 1_000_000_000 / u64::from(per_second.max(1));
    let capacity = interval * u64::from(burst.max(1));
    let start = full_at.max(now);
    let after = start + interval;
    let owed = after - now;
    if owed > capacity {
        return Draw {
            full_at,
            admitted: false,
            remaining: 0,
            until_full: Duration::from_nanos(start - now),
            retry_after: Duration::from_nanos(owed - capacity),
        };
    }
    Draw {
        full_at: after,
        admitted: true,
        remaining: ((capacity - owed) / interval) as u32,
        until_full: Duration::from_nanos(owed),
        retry_after: Duration::ZERO,
    }
}

/// Whole seconds for a header: rounded up, at least 1 when anything is owed.
pub fn header_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.max(u64::from(!duration.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn limits_are_read_as_rate_and_burst_or_zero() {
        assert_eq!(
            RateLimit::parse("limit", "200/400").unwrap(),
            RateLimit::Limited {
                per_second: 200,
                burst: 400
            }
        );
        assert_eq!(RateLimit::parse("limit", "0").unwrap(), RateLimit::Off);
        for bad in ["", "200", "0/5", "5/0", "a/b", "-1/4", "1/2/3", "2000000/1"] {
            let refused = RateLimit::parse("--rate-limit-read", bad).unwrap_err();
            assert_eq!(refused.field, "--rate-limit-read");
            assert!(refused.reason.contains("200/400"), "{}", refused.reason);
        }
        assert_eq!(RateLimit::parse("l", "20/40").unwrap().to_string(), "20/40");
        assert_eq!(RateLimit::parse("l", "20/40").unwrap().window_seconds(), 2);
        assert_eq!(RateLimit::parse("l", "3/4").unwrap().window_seconds(), 2);
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_refuses_until_a_token_is_back() {
        let now = 10 * SECOND;
        let mut full_at = 0;
        for expected_left in (0..4).rev() {
            let drawn = draw(2, 4, full_at, now);
            assert!(drawn.admitted);
            assert_eq!(drawn.remaining, expected_left);
            full_at = drawn.full_at;
        }
        let refused = draw(2, 4, full_at, now);
        assert!(!refused.admitted);
        assert_eq!(refused.full_at, full_at, "a refusal takes nothing");
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(refused.until_full, Duration::from_secs(2));
        // Half a second later one token is back.
        let later = draw(2, 4, full_at, now + SECOND / 2);
        assert!(later.admitted);
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn an_idle_bucket_refills_to_its_burst_and_no_further() {
        let drawn = draw(10, 5, 0, 100 * SECOND);
        assert_eq!(drawn.remaining, 4);
        let much_later = draw(10, 5, drawn.full_at, 1000 * SECOND);
        assert_eq!(much_later.remaining, 4);
    }

    #[test]
    fn header_seconds_round_up_and_are_at_least_one_when_owed() {
        assert_eq!(header_seconds(Duration::ZERO), 0);
        assert_eq!(header_seconds(Duration::from_millis(1)), 1);
        assert_eq!(header_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(header_seconds(Duration::from_secs(2)), 2);
    }

    #[test]
    fn calls_are_reads_or_writes_by_method() {
        assert_eq!(
            CallKind::of_grpc_path("/pipelines.v1.AppService/GetApp"),
            CallKind::Read
        );
        assert_eq!(
            CallKind::of_grpc_path("/pipelines.v1.PromotionService/WatchPromotion"),
            CallKind::Read
        );
        assert_eq!(
            CallKind::of_grpc_path("/pipelines.v1.PipelineService/DiffStages"),
            CallKind::Read
        );
        assert_eq!(
            CallKind::of_grpc_path("/pipelines.v1.PromotionService/CreatePromotion"),
            CallKind::Write
        );
        assert_eq!(
            CallKind::of_rest(&http::Method::GET, "/apps"),
            CallKind::Read
        );
        assert_eq!(
            CallKind::of_rest(&http::Method::PATCH, "/apps"),
            CallKind::Write
        );
        assert_eq!(
            CallKind::of_rest(&http::Method::POST, "/filters/apps"),
            CallKind::Read
        );
        assert_eq!(
            CallKind::of_rest(&http::Method::POST, "/apps"),
            CallKind::Write
        );
    }
}
