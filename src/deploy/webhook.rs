//! The webhook deployer: each target's release is POSTed as JSON to a configured URL, signed
//! with HMAC-SHA256. A 2xx answer means deployed. Network errors and 5xx answers are retried
//! a bounded number of times with exponential backoff; anything else fails the target with
//! the status and an excerpt of the body.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use super::{DeployCause, DeployError, DeployRequest, Deployer};

/// The header carrying `sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>`.
pub const SIGNATURE_HEADER: &str = "x-pipelines-signature";
/// The header carrying the target's id, the same on every retry of one deployment.
pub const DELIVERY_HEADER: &str = "x-pipelines-delivery";
/// How much of a refusing answer's body goes into the target's error message.
const BODY_EXCERPT_CHARS: usize = 300;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: String,
    /// Bound on each request, connection included.
    pub timeout: Duration,
    /// Retries after the first attempt, for network errors and 5xx answers.
    pub retries: u32,
    /// The first backoff; it doubles with each retry.
    pub backoff: Duration,
}

pub struct WebhookDeployer {
    settings: WebhookSettings,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct Named<'a> {
    id: Uuid,
    name: &'a str,
}

#[derive(Serialize)]
struct ReleasePayload<'a> {
    id: Uuid,
    version: i64,
    image: &'a str,
}

#[derive(Serialize)]
struct Id {
    id: Uuid,
}

#[derive(Serialize)]
struct SourcePayload<'a> {
    app: Named<'a>,
    release: Id,
}

/// The JSON body of a deployment request. A promotion target's deployment names its
/// promotion, target and pipeline and has `rollback: null`; a rollback's has those null.
#[derive(Serialize)]
struct Payload<'a> {
    event: &'static str,
    /// `promotion`, `rollback`, or `verification_rollback` (a promotion target's rollback
    /// after its verification failed, which names the promotion and target).
    cause: &'static str,
    pipeline_promotion: Option<Id>,
    promotion_target: Option<Id>,
    pipeline: Option<Named<'a>>,
    rollback: Option<Id>,
    app: Named<'a>,
    release: ReleasePayload<'a>,
    source: SourcePayload<'a>,
}

/// `sha256=<hex>` for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty tag
    // rather than panic.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::from("sha256="),
    }
}

fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    let mut cut: String = trimmed.chars().take(BODY_EXCERPT_CHARS).collect();
    if cut.len() < trimmed.len() {
        cut.push('…');
    }
    cut
}

impl WebhookDeployer {
    pub fn new(settings: WebhookSettings) -> Result<Self, String> {
        if !(settings.url.starts_with("http://") || settings.url.starts_with("https://")) {
            return Err(format!(
                "--webhook-url must be an http(s) URL, got '{}'",
                settings.url
            ));
        }
        if settings.secret.is_empty() {
            return Err("--webhook-secret is required with --deployer webhook".into());
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|error| format!("cannot build the webhook client: {error}"))?;
        Ok(Self { settings, client })
    }

    fn body(request: &DeployRequest) -> Result<Vec<u8>, DeployError> {
        let (pipeline_promotion, promotion_target, pipeline, rollback) = match &request.cause {
            DeployCause::Promotion {
                promotion_id,
                target_id,
                pipeline_id,
                pipeline_name,
            }
            | DeployCause::VerificationRollback {
                promotion_id,
                target_id,
                pipeline_id,
                pipeline_name,
            } => (
                Some(Id { id: *promotion_id }),
                Some(Id { id: *target_id }),
                Some(Named {
                    id: *pipeline_id,
                    name: pipeline_name,
                }),
                None,
            ),
            DeployCause::Rollback { rollback_id } => {
                (None, None, None, Some(Id { id: *rollback_id }))
            }
        };
        let cause = match &request.cause {
            DeployCause::Promotion { .. } => "promotion",
            DeployCause::Rollback { .. } => "rollback",
            DeployCause::VerificationRollback { .. } => "verification_rollback",
        };
        serde_json::to_vec(&Payload {
            event: "release.deploy",
            cause,
            pipeline_promotion,
            promotion_target,
            pipeline,
            rollback,
            app: Named {
                id: request.app_id,
                name: &request.app_name,
            },
            release: ReleasePayload {
                id: request.release_id,
                version: request.release_version,
                image: &request.image,
            },
            source: SourcePayload {
                app: Named {
                    id: request.source_app_id,
                    name: &request.source_app_name,
                },
                release: Id {
                    id: request.source_release_id,
                },
            },
        })
        .map_err(|error| DeployError(format!("cannot encode the webhook payload: {error}")))
    }
}

#[async_trait::async_trait]
impl Deployer for WebhookDeployer {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<(), DeployError> {
        let body = Self::body(request)?;
        let signed = signature(&self.settings.secret, &body);
        let mut backoff = self.settings.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = std::time::Instant::now();
            let sent = self
                .client
                .post(&self.settings.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, &signed)
                .header(DELIVERY_HEADER, request.delivery_id().to_string())
                .body(body.clone())
                .send()
                .await;
            crate::metrics::record_webhook_attempt(started.elapsed(), attempt > 1);
            let retryable = match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_server_error() => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    format!("webhook answered {status}: {}", excerpt(&text))
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    return Err(DeployError(format!(
                        "webhook refused the deployment with {status}: {}",
                        excerpt(&text)
                    )));
                }
                Err(error) if error.is_timeout() => format!(
                    "webhook did not answer within {} ms",
                    self.settings.timeout.as_millis()
                ),
                Err(error) => format!("webhook unreachable: {error}"),
            };
            if attempt > self.settings.retries {
                return Err(DeployError(format!(
                    "{retryable} (gave up after {attempt} attempts)"
                )));
            }
            tracing::warn!(app = %request.app_name, attempt, reason = %retryable, "retrying webhook");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        let tag = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            tag,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt("  short  "), "short");
        let long = "x".repeat(1000);
        assert_eq!(excerpt(&long).chars().count(), BODY_EXCERPT_CHARS + 1);
    }

    #[test]
    fn settings_are_checked() {
        let settings = WebhookSettings {
            url: "ftp://example".into(),
            secret: "s".into(),
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::from_millis(1),
        };
        assert!(WebhookDeployer::new(settings.clone()).is_err());
        let no_secret = WebhookSettings {
            url: "http://127.0.0.1:9".into(),
            secret: String::new(),
            ..settings
        };
        assert!(WebhookDeployer::new(no_secret).is_err());
    }
}
