//! `bench limits`: what the rate limiter costs on the hottest read.
//!
//! Three servers on one backend: one whose tokens are limited far above the load (every
//! call draws on its token's bucket and none is refused) and two with limits off, the
//! second only to show how far two identical servers differ here. They are measured in
//! turn, in a rotating order. Then the limiter's own work per call (a draw from the
//! bucket and the two headers), timed in this process, against the time one request
//! takes at the measured rate.

use std::time::{Duration, Instant};

use pipelines::{
    domain::rate_limit::{CallKind, RateLimit, TokenLimits},
    rate_limits::{Admission, DefaultLimits, RateLimiter},
};

use super::{database, rest, spawn_limited, Backend, BenchResult, LIMITS_FAR_ABOVE_THE_LOAD};

const ROUNDS: usize = 6;
const DRAWS: u32 = 2_000_000;

pub async fn limiter_rows(backend: &Backend) -> BenchResult<()> {
    let mut servers = Vec::new();
    for limits in [LIMITS_FAR_ABOVE_THE_LOAD, "0", "0"] {
        let dir = tempfile::tempdir()?;
        let url = database(backend, &dir).await?;
        let server = spawn_limited(url, dir, "warn", limits).await?;
        let token = rest::admin_token(&server)?;
        // Let the server see the new token.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let base = format!("http://{}", server.address);
        reqwest::Client::new()
            .post(format!("{base}/pipelines"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": "shop"}))
            .send()
            .await?
            .error_for_status()?;
        servers.push((server, token, format!("{base}/pipelines/shop")));
    }
    for (_, token, url) in &servers {
        rest::wrk(url, Some(token), "2s")?;
    }
    let mut rates = [0.0; 3];
    for round in 0..ROUNDS {
        for turn in 0..3 {
            let which = (round + turn) % 3;
            let (_, token, url) = &servers[which];
            rates[which] += rest::wrk(url, Some(token), "3s")? / ROUNDS as f64;
        }
    }
    let [limited, off, off_again] = rates;
    println!(
        "| REST GET /pipelines/shop, wrk -t2 -c32, token limited (never refused) vs limits off | {} | {limited:.0} vs {off:.0} req/s: **{:.1}%** of limits off (a second server with limits off: {off_again:.0} req/s, {:.1}%) |",
        backend.name(),
        limited / off * 100.0,
        off_again / off * 100.0,
    );
    let per_call = limiter_work_per_call();
    // Two cores serve the load: each request has two cores' worth of 1/rate seconds.
    let per_request = Duration::from_secs_f64(2.0 / off);
    println!(
        "| the limiter's own work per call (a draw and both headers, one thread) | {} | {:.0} ns, {:.2}% of the {:.1} µs of CPU one request takes at {off:.0} req/s on 2 cores |",
        backend.name(),
        per_call.as_nanos(),
        per_call.as_secs_f64() / per_request.as_secs_f64() * 100.0,
        per_request.as_secs_f64() * 1e6,
    );
    Ok(())
}

/// One token's draws, each with the headers a REST answer carries.
fn limiter_work_per_call() -> Duration {
    let limiter = RateLimiter::new(DefaultLimits {
        read: RateLimit::Limited {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        write: RateLimit::Off,
    });
    let token = uuid::Uuid::new_v4();
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..DRAWS {
        if let Admission::Admitted(quota) | Admission::Refused(quota) =
            limiter.admit(token, TokenLimits::default(), CallKind::Read)
        {
            bytes += quota.policy_header_value().len() + quota.state_header().len();
        }
    }
    let took = started.elapsed();
    std::hint::black_box(bytes);
    took / DRAWS
}
