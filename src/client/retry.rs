//! Calls refused for the token's rate limit are made again after the delay the server
//! gave (`google.rpc.RetryInfo`), a few times. A refused call never ran, so making it
//! again is safe, creates included.

use std::{future::Future, time::Duration};

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Calls made again at most, after the first.
const ATTEMPTS_WHEN_LIMITED: usize = 5;
/// The longest wait for one retry, whatever the server asks.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// How long the server asked to wait, when it refused the call for a rate limit.
pub(super) fn retry_delay(status: &Status) -> Option<Duration> {
    if status.code() != Code::ResourceExhausted {
        return None;
    }
    let asked = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .unwrap_or(Duration::from_secs(1));
    Some(asked.clamp(Duration::from_millis(10), LONGEST_WAIT))
}

/// Makes `call`, and again after the server's delay while it is refused for a rate limit.
pub(super) async fn again_when_limited<T, Fut>(mut call: impl FnMut() -> Fut) -> Result<T, Status>
where
    Fut: Future<Output = Result<T, Status>>,
{
    for _ in 0..ATTEMPTS_WHEN_LIMITED {
        match call().await {
            Err(status) => match retry_delay(&status) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(status),
            },
            answered => return answered,
        }
    }
    call().await
}
