//! Rate limits per token: two buckets per token in each process, 429 with `Retry-After`
//! and the IETF headers over REST, RESOURCE_EXHAUSTED with `RetryInfo` over gRPC, and
//! what is never limited.

use std::{process::Command, time::Instant};

use futures::future::join_all;
use pipelines::{
    auth::{TokenOptions, Tokens},
    domain::rate_limit::{RateLimit, TokenLimits},
    proto::ListPipelinesRequest,
    rate_limits::DefaultLimits,
    store,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{fresh_database, settings_for, spawn_app_with, with_token, TestApp};

fn limit(text: &str) -> RateLimit {
    RateLimit::parse("limit", text).unwrap()
}

async fn server_limited_to(read: &str, write: &str) -> TestApp {
    let database = fresh_database().await;
    let mut settings = settings_for(&database.url);
    settings.rate_limits = DefaultLimits {
        read: limit(read),
        write: limit(write),
    };
    spawn_app_with(settings, database).await
}

async fn token_with(app: &TestApp, name: &str, limits: TokenLimits) -> String {
    let db = store::connect(&app.database.url).await.unwrap();
    let options = TokenOptions {
        email: None,
        limits,
    };
    Tokens::new(db)
        .create_with(name, "admin", options)
        .await
        .unwrap()
        .1
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

/// Sends `count` reads at once and answers their statuses, with how long they all took.
async fn burst_of_reads(app: &TestApp, token: &str, count: usize) -> (Vec<StatusCode>, f64) {
    let started = Instant::now();
    let calls = (0..count).map(|_| {
        app.rest(Method::GET, "/pipelines")
            .bearer_auth(token)
            .send()
    });
    let statuses = join_all(calls)
        .await
        .into_iter()
        .map(|response| response.unwrap().status())
        .collect();
    (statuses, started.elapsed().as_secs_f64())
}

#[tokio::test]
async fn a_token_past_its_limit_is_told_when_to_retry_over_both_transports() {
    let app = server_limited_to("1/5", "1/3").await;
    let token = token_with(&app, "ci-bot", TokenLimits::default()).await;

    let first = app
        .rest(Method::GET, "/pipelines")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "ratelimit-policy").as_deref(),
        Some("\"read\";q=5;w=5")
    );
    let state = header(&first, "ratelimit").unwrap();
    assert!(state.starts_with("\"read\";r=4;t="), "{state}");

    let (statuses, took) = burst_of_reads(&app, &token, 20).await;
    let admitted = statuses.iter().filter(|status| **status == 200).count();
    let refilled = took.ceil() as usize + 1;
    assert!(
        (4..=4 + refilled).contains(&admitted),
        "{admitted} of 20 reads admitted with 4 tokens left and {took:.2}s to refill"
    );
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429));

    let refused = app
        .rest(Method::GET, "/pipelines")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(header(&refused, "ratelimit")
        .unwrap()
        .starts_with("\"read\";r=0;"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 8, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("'ci-bot'"),
        "{body}"
    );
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    assert!(body["details"][0]["retry_delay"]
        .as_str()
        .unwrap()
        .ends_with('s'));

    // The same token's reads over gRPC draw on the same bucket.
    let status = app
        .pipelines
        .clone()
        .list_pipelines(with_token(ListPipelinesRequest::default(), &token))
        .await
        .expect_err("the bucket is empty");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_details_retry_info().expect("a RetryInfo detail");
    assert!(retry
        .retry_delay
        .is_some_and(|delay| delay.as_secs_f64() <= 1.0));

    // Writes have a bucket of their own.
    let (code, created) = app
        .call(
            Method::POST,
            "/pipelines",
            Some(serde_json::json!({"name": "shop"})),
            Some(&token),
        )
        .await;
    assert_eq!(code, 201, "{created}");

    // After the wait the server asked for, a read is admitted again.
    tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    let again = app
        .rest(Method::GET, "/pipelines")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    let metrics = app
        .rest(Method::GET, "/metrics")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("pipelines_rate_limited_total{kind=\"read\"}")),
        "the refusals are counted"
    );
}

#[tokio::test]
async fn a_tokens_own_limits_override_the_defaults() {
    let app = server_limited_to("1/2", "1/2").await;
    let unlimited = token_with(
        &app,
        "dashboard",
        TokenLimits {
            read: Some(RateLimit::Off),
            write: None,
        },
    )
    .await;
    let generous = token_with(
        &app,
        "ci-bot",
        TokenLimits {
            read: Some(limit("1/30")),
            write: None,
        },
    )
    .await;
    let plain = token_with(&app, "other", TokenLimits::default()).await;

    let (statuses, _) = burst_of_reads(&app, &unlimited, 40).await;
    assert!(statuses.iter().all(|status| *status == 200));
    let response = app
        .rest(Method::GET, "/pipelines")
        .bearer_auth(&unlimited)
        .send()
        .await
        .unwrap();
    assert!(
        header(&response, "ratelimit").is_none(),
        "no bucket, no headers"
    );

    let (statuses, _) = burst_of_reads(&app, &generous, 20).await;
    assert!(statuses.iter().all(|status| *status == 200));

    let (statuses, _) = burst_of_reads(&app, &plain, 10).await;
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
}

#[tokio::test]
async fn unknown_tokens_health_metrics_and_protected_mode_are_never_limited() {
    let app = server_limited_to("1/1", "1/1").await;
    // Protected mode: no token exists yet, and nothing is limited.
    let calls = (0..10).map(|_| app.call(Method::GET, "/pipelines", None, None));
    for (status, body) in join_all(calls).await {
        assert_eq!(status, 200, "{body}");
    }

    let token = token_with(&app, "ops", TokenLimits::default()).await;
    // Protected mode ends on every process within a second of the first token.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for _ in 0..5 {
        let (status, _) = app
            .call(Method::GET, "/pipelines", None, Some("plt_not-a-token"))
            .await;
        assert_eq!(status, 401, "an unknown token is refused before any bucket");
    }
    for _ in 0..5 {
        let scrape = app
            .rest(Method::GET, "/metrics")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(scrape.status(), 200);
        assert_eq!(
            app.rest(Method::GET, "/healthz")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let (statuses, _) = burst_of_reads(&app, &token, 5).await;
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
}

#[tokio::test]
async fn operators_give_tokens_limits_and_an_email_and_see_them_listed() {
    let database = fresh_database().await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pipelines"))
            .args(args)
            .env("DATABASE_URL", &database.url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let created = run(&[
        "tokens",
        "create",
        "--name",
        "ci-bot",
        "--role",
        "write",
        "--email",
        "ci@example.com",
        "--rate-limit-read",
        "20/40",
        "--rate-limit-write",
        "0",
    ]);
    assert!(created.status.success(), "{created:?}");
    for (flag, value, says) in [
        ("--rate-limit-read", "20", "200/400"),
        ("--rate-limit-write", "0/5", "200/400"),
        ("--email", "not an address", "email address"),
    ] {
        let refused = run(&[
            "tokens", "create", "--name", "other", "--role", "read", flag, value,
        ]);
        assert!(!refused.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
    let listed = run(&["tokens", "list"]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    let line = listing
        .lines()
        .find(|line| line.contains("ci-bot"))
        .expect("the token is listed");
    for shown in ["20/40", " 0 ", "ci@example.com", "write", "active"] {
        assert!(line.contains(shown), "{shown:?} in {line:?}");
    }
    assert!(
        !listing.contains("other"),
        "refused tokens were not made: {listing}"
    );
    let refused_serve = run(&["serve", "--rate-limit-read", "fast"]);
    assert!(!refused_serve.status.success());
    assert!(String::from_utf8_lossy(&refused_serve.stderr).contains("200/400"));
}

#[tokio::test]
async fn the_promote_command_waits_out_its_tokens_limit() {
    let app = server_limited_to("1/2", "1/1").await;
    app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.create_app("shop-stg").await;
    app.couple(
        "shop-dev",
        "shop",
        pipelines::proto::Stage::Development,
        &[],
    )
    .await;
    app.couple("shop-stg", "shop", pipelines::proto::Stage::Staging, &[])
        .await;
    app.create_release("shop-dev", "shop:1").await;
    let token = token_with(&app, "ci-bot", TokenLimits::default()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // Both of the token's buckets are empty when the command starts.
    let (reads, _) = burst_of_reads(&app, &token, 4).await;
    assert!(reads.contains(&StatusCode::TOO_MANY_REQUESTS));
    let writes = join_all((0..3).map(|n| {
        app.call(
            Method::POST,
            "/apps",
            Some(serde_json::json!({"name": format!("extra-{n}")})),
            Some(&token),
        )
    }))
    .await;
    assert!(writes.iter().any(|(status, _)| *status == 429));

    let output = crate::cli::run(
        &app,
        &["promote", "--pipeline", "shop", "--from", "shop-dev"],
        Some(&token),
    )
    .await;
    assert_eq!(
        crate::cli::code(&output),
        0,
        "{}{}",
        crate::cli::stdout(&output),
        crate::cli::stderr(&output)
    );
    assert!(crate::cli::stdout(&output).contains("successful"));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (status, releases) = app
        .call(Method::GET, "/apps/shop-stg/releases", None, Some(&token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        releases.as_array().unwrap().len(),
        1,
        "one promotion, made once"
    );
}
