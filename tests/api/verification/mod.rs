//! Verification after deploy: the coupling's policy, the `verifying` state decided by
//! statuses and by the deadline, the automatic rollback, the built-in HTTP checks against
//! a real local server, and auto-promotion waiting for the verdict.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::{json, Value};
use tonic::Code;

mod cli;
mod grpc;
mod processes;

use crate::helpers::{
    settings_for, spawn_app, spawn_app_with, spawn_app_with_deployer, with_token, TestApp,
    WebhookReceiver,
};

struct Tokens {
    ops: String,
    ci: String,
}

async fn tokens(app: &TestApp) -> Tokens {
    Tokens {
        ops: app.create_token("ops", "admin").await,
        ci: app.create_token("ci-bot", "write").await,
    }
}

async fn call_ok(app: &TestApp, method: Method, path: &str, body: Value, token: &str) -> Value {
    let (status, answer) = app.call(method, path, Some(body), Some(token)).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

async fn get(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, answer) = app.call(Method::GET, path, None, Some(token)).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

/// Pipeline `shop`: `shop-dev` (development) and the staging apps, each coupled with
/// `verification`; every staging app runs `shop:1` unless `with_previous` is false, and
/// `shop-dev` runs `shop:2`.
async fn shop(
    app: &TestApp,
    token: &str,
    staging: &[&str],
    verification: Value,
    with_previous: bool,
) {
    call_ok(
        app,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        token,
    )
    .await;
    call_ok(
        app,
        Method::POST,
        "/apps",
        json!({"name": "shop-dev"}),
        token,
    )
    .await;
    let body = json!({"app": "shop-dev", "pipeline": "shop", "stage": "development"});
    call_ok(app, Method::POST, "/pipeline-couplings", body, token).await;
    for name in staging {
        call_ok(app, Method::POST, "/apps", json!({"name": name}), token).await;
        let body = json!({"app": name, "pipeline": "shop", "stage": "staging",
            "verification": verification});
        call_ok(app, Method::POST, "/pipeline-couplings", body, token).await;
        if with_previous {
            release(app, name, "shop:1", token).await;
        }
    }
    release(app, "shop-dev", "shop:2", token).await;
}

async fn release(app: &TestApp, name: &str, image: &str, token: &str) -> Value {
    let path = format!("/apps/{name}/releases");
    call_ok(app, Method::POST, &path, json!({"image": image}), token).await
}

async fn promote(app: &TestApp, token: &str) -> String {
    let body = json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}});
    let created = call_ok(app, Method::POST, "/pipeline-promotions", body, token).await;
    created["id"].as_str().unwrap().to_owned()
}

async fn post_status(
    app: &TestApp,
    name: &str,
    release_id: &str,
    context: &str,
    state: &str,
    token: &str,
) {
    let path = format!("/apps/{name}/releases/{release_id}/statuses");
    let body = json!({"context": context, "name": context, "state": state,
        "description": format!("{context} says {state}")});
    call_ok(app, Method::POST, &path, body, token).await;
}

/// Polls `check` until it answers `Some`, for at most 30 seconds.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The promotion's target on `name`, once it is in `status`.
async fn target_in(app: &TestApp, id: &str, name: &str, status: &str, token: &str) -> Value {
    let path = format!("/pipeline-promotions/{id}/promotion-targets");
    eventually(&format!("{name} {status}"), || async {
        let targets = get(app, &path, token).await;
        targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["app"]["name"] == name && t["status"] == status)
            .cloned()
    })
    .await
}

async fn event_names(app: &TestApp, id: &str, token: &str) -> Vec<(String, String)> {
    app.watch_to_end_as(id, token)
        .await
        .into_iter()
        .map(|event| (event.name, event.message))
        .collect()
}

fn names(events: &[(String, String)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

fn contexts(verification: &[&str], timeout_seconds: u32, on_failure: &str) -> Value {
    json!({"contexts": verification, "timeout_seconds": timeout_seconds, "on_failure": on_failure})
}

#[tokio::test]
async fn a_coupling_shows_its_verification_with_defaults_and_refuses_each_bad_field_by_its_path() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    call_ok(
        &app,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        &t.ops,
    )
    .await;
    for name in ["shop-rev", "shop-stg", "shop-x"] {
        call_ok(&app, Method::POST, "/apps", json!({"name": name}), &t.ops).await;
    }
    let couple = |app_name: &str, stage: &str, verification: Value| json!({"app": app_name, "pipeline": "shop", "stage": stage, "verification": verification});
    let good = json!({"contexts": ["smoke/checkout"],
        "http_checks": [{"name": "health", "url": "http://127.0.0.1:9/healthz"}]});
    let coupling = call_ok(
        &app,
        Method::POST,
        "/pipeline-couplings",
        couple("shop-stg", "staging", good.clone()),
        &t.ci,
    )
    .await;
    assert_eq!(
        coupling["verification"],
        json!({"contexts": ["smoke/checkout"], "timeout_seconds": 600,
            "http_checks": [{"name": "health", "url": "http://127.0.0.1:9/healthz",
                "interval_seconds": 10, "count": 3, "failure_limit": 0}],
            "on_failure": "rollback"})
    );
    let id = coupling["id"].as_str().unwrap().to_owned();

    let refused = |mut bad: Value, edit: &dyn Fn(&mut Value)| {
        edit(&mut bad);
        bad
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            refused(good.clone(), &|v| v["timeout_seconds"] = json!(9)),
            "verification.timeout_seconds",
        ),
        (
            refused(good.clone(), &|v| v["timeout_seconds"] = json!("ten")),
            "verification.timeout_seconds",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["url"] = json!("ftp://127.0.0.1/")
            }),
            "verification.http_checks[0].url",
        ),
        (
            refused(good.clone(), &|v| v["http_checks"][0]["count"] = json!(0)),
            "verification.http_checks[0].count",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["failure_limit"] = json!(3)
            }),
            "verification.http_checks[0].failure_limit",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["interval_seconds"] = json!(0)
            }),
            "verification.http_checks[0].interval_seconds",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["name"] = json!("Bad Name")
            }),
            "verification.http_checks[0].name",
        ),
        (
            refused(good.clone(), &|v| {
                v["http_checks"][0]["colour"] = json!("red")
            }),
            "verification.http_checks[0].colour",
        ),
        (
            refused(good.clone(), &|v| v["on_failure"] = json!("retry")),
            "verification.on_failure",
        ),
        (
            refused(good.clone(), &|v| v["contexts"] = json!([1])),
            "verification.contexts[0]",
        ),
        (json!({"contexts": []}), "verification"),
        (json!("yes"), "verification"),
    ];
    for (bad, field) in cases {
        let body = json!({"verification": bad});
        let (status, answer) = app
            .call(
                Method::PATCH,
                &format!("/pipeline-couplings/{id}"),
                Some(body),
                Some(&t.ops),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {answer}");
        assert_eq!(answer["code"], 3);
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid {field}:")),
            "{field} named in: {message}"
        );
    }

    // A host outside --verification-hosts is refused, naming the setting.
    let outside = json!({"http_checks": [{"name": "health", "url": "http://example.com:8080/"}]});
    let (status, answer) = app
        .call(
            Method::POST,
            "/pipeline-couplings",
            Some(couple("shop-x", "staging", outside)),
            Some(&t.ops),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("verification.http_checks[0].url"),
        "{message}"
    );
    assert!(message.contains("--verification-hosts"), "{message}");

    // Nothing is promoted into review.
    let (status, answer) = app
        .call(
            Method::POST,
            "/pipeline-couplings",
            Some(couple("shop-rev", "review", good.clone())),
            Some(&t.ops),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid verification:"),
        "{answer}"
    );

    // Nothing changed by the refusals; null removes it (elevated access).
    let unchanged = get(&app, &format!("/pipeline-couplings/{id}"), &t.ci).await;
    assert_eq!(unchanged["verification"], coupling["verification"]);
    let removed = call_ok(
        &app,
        Method::PATCH,
        &format!("/pipeline-couplings/{id}"),
        json!({"verification": null}),
        &t.ops,
    )
    .await;
    assert_eq!(removed["verification"], Value::Null);

    // Over gRPC: the same rule names the same path.
    let mut couplings = app.couplings.clone();
    let refused = couplings
        .update_coupling(with_token(
            pipelines::proto::UpdateCouplingRequest {
                id: id.clone(),
                required_status_checks: None,
                promotion_policy: None,
                verification: Some(pipelines::proto::Verification {
                    contexts: vec!["smoke".into()],
                    timeout_seconds: Some(5),
                    ..Default::default()
                }),
                remove_verification: false,
            },
            &t.ops,
        ))
        .await
        .expect_err("a timeout below 10 s is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with("invalid verification.timeout_seconds:"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn tightening_a_verification_needs_write_and_weakening_it_needs_elevated_access() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke"], 300, "rollback"),
        true,
    )
    .await;
    let coupling = get(&app, "/apps/shop-stg/pipeline-couplings", &t.ci).await;
    let path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
    // Tighter: another context and a shorter timeout.
    let tighter = json!({"verification": contexts(&["smoke", "monitor/errors"], 120, "rollback")});
    call_ok(&app, Method::PATCH, &path, tighter, &t.ci).await;
    for (weaker, what) in [
        (
            json!({"verification": contexts(&["smoke"], 120, "rollback")}),
            "removing verification contexts",
        ),
        (
            json!({"verification": contexts(&["smoke", "monitor/errors"], 120, "keep")}),
            "on_failure to keep",
        ),
        (
            json!({"verification": contexts(&["smoke", "monitor/errors"], 900, "rollback")}),
            "timeout_seconds",
        ),
        (json!({"verification": null}), "removing the verification"),
    ] {
        let (status, answer) = app
            .call(Method::PATCH, &path, Some(weaker.clone()), Some(&t.ci))
            .await;
        assert_eq!(status, 403, "{weaker}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(what),
            "{what}: {answer}"
        );
        call_ok(&app, Method::PATCH, &path, weaker, &t.ops).await;
        // Back to the tight one for the next case.
        let tight =
            json!({"verification": contexts(&["smoke", "monitor/errors"], 120, "rollback")});
        call_ok(&app, Method::PATCH, &path, tight, &t.ops).await;
    }
    // gRPC: removing it from a write token is PERMISSION_DENIED.
    let denied = app
        .couplings
        .clone()
        .update_coupling(with_token(
            pipelines::proto::UpdateCouplingRequest {
                id: coupling["id"].as_str().unwrap().into(),
                required_status_checks: None,
                promotion_policy: None,
                verification: None,
                remove_verification: true,
            },
            &t.ci,
        ))
        .await
        .expect_err("a write token cannot remove a verification");
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_release_passes_verification_once_every_context_succeeds() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke/checkout", "monitor/errors"], 600, "rollback"),
        true,
    )
    .await;

    // A dry run lists the verification each target will get.
    let plan = call_ok(
        &app,
        Method::POST,
        "/pipeline-promotions",
        json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}, "dry_run": true}),
        &t.ci,
    )
    .await;
    assert_eq!(
        plan["targets"][0]["verification"]["contexts"],
        json!(["smoke/checkout", "monitor/errors"])
    );

    let id = promote(&app, &t.ci).await;
    let verifying = target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    assert_eq!(verifying["verification"]["state"], "pending");
    assert!(
        verifying["verification"]["deadline"].is_string(),
        "{verifying}"
    );
    let release_id = verifying["release"]["id"].as_str().unwrap().to_owned();
    // The new release is current while it verifies.
    let coupling = get(&app, "/apps/shop-stg/pipeline-couplings", &t.ci).await;
    assert_eq!(coupling["release"]["image"], "shop:2");

    post_status(
        &app,
        "shop-stg",
        &release_id,
        "smoke/checkout",
        "success",
        &t.ci,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = get(
        &app,
        &format!("/pipeline-promotions/{id}/promotion-targets"),
        &t.ci,
    )
    .await;
    assert_eq!(
        still[0]["status"], "verifying",
        "one context is not enough: {still}"
    );
    post_status(
        &app,
        "shop-stg",
        &release_id,
        "monitor/errors",
        "success",
        &t.ci,
    )
    .await;

    let done = target_in(&app, &id, "shop-stg", "succeeded", &t.ci).await;
    assert_eq!(done["verification"]["state"], "passed");
    assert_eq!(done["verification"]["results"].as_array().unwrap().len(), 2);
    let events = event_names(&app, &id, &t.ci).await;
    let order = names(&events);
    let at = |name: &str| {
        order
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("{name} in {order:?}"))
    };
    assert!(at("target.verifying") < at("target.verified"));
    assert!(at("target.verified") < at("target.succeeded"));
    assert_eq!(order.last(), Some(&"promotion.finished"));
    let promotion = get(&app, &format!("/pipeline-promotions/{id}"), &t.ci).await;
    assert_eq!(promotion["status"], "successful");
}

#[tokio::test]
async fn a_failure_status_rolls_the_app_back_to_its_previous_release() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke/checkout"], 600, "rollback"),
        true,
    )
    .await;
    let id = promote(&app, &t.ci).await;
    let verifying = target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    let release_id = verifying["release"]["id"].as_str().unwrap().to_owned();
    post_status(
        &app,
        "shop-stg",
        &release_id,
        "smoke/checkout",
        "failure",
        &t.ci,
    )
    .await;

    let failed = target_in(&app, &id, "shop-stg", "failed", &t.ci).await;
    let message = failed["error_message"].as_str().unwrap();
    assert!(
        message.contains("smoke/checkout: failure (smoke/checkout says failure)"),
        "{message}"
    );
    assert_eq!(failed["verification"]["state"], "failed");
    assert_eq!(failed["verification"]["rollback_release"]["version"], 3);

    let releases = get(&app, "/apps/shop-stg/releases", &t.ci).await;
    let releases = releases.as_array().unwrap();
    assert_eq!(releases.len(), 3, "{releases:?}");
    assert_eq!(releases[1]["status"], "failed");
    assert_eq!(releases[2]["image"], "shop:1");
    assert_eq!(releases[2]["status"], "succeeded");
    assert_eq!(
        releases[2]["description"],
        "Rollback to v1: verification of v2 failed"
    );
    let coupling = get(&app, "/apps/shop-stg/pipeline-couplings", &t.ci).await;
    assert_eq!(coupling["release"]["version"], 3);

    let events = event_names(&app, &id, &t.ci).await;
    let order = names(&events);
    let tail: Vec<&str> = order.iter().rev().take(4).rev().copied().collect();
    assert_eq!(
        tail,
        [
            "target.verification_failed",
            "target.rolled_back",
            "target.failed",
            "promotion.finished"
        ]
    );
    let rolled_back = &events
        .iter()
        .find(|(name, _)| name == "target.rolled_back")
        .unwrap()
        .1;
    assert!(
        rolled_back.contains("v3") && rolled_back.contains("deployed"),
        "{rolled_back}"
    );
    let promotion = get(&app, &format!("/pipeline-promotions/{id}"), &t.ci).await;
    assert_eq!(promotion["status"], "failed");

    // Over gRPC, the target carries the same verification.
    let targets = app
        .promotions
        .clone()
        .list_promotion_targets(with_token(
            pipelines::proto::ListPromotionTargetsRequest {
                id: id.clone(),
                ..Default::default()
            },
            &t.ci,
        ))
        .await
        .expect("targets over gRPC")
        .into_inner()
        .targets;
    let verification = targets[0].verification.clone().expect("a verification");
    assert_eq!(
        verification.state,
        pipelines::proto::VerificationState::Failed as i32
    );
    assert_eq!(verification.rollback_release.expect("rollback").version, 3);
}

#[tokio::test]
async fn an_error_status_with_keep_fails_the_target_and_leaves_the_release_current() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke/checkout"], 600, "keep"),
        true,
    )
    .await;
    let id = promote(&app, &t.ci).await;
    let verifying = target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    let release_id = verifying["release"]["id"].as_str().unwrap().to_owned();
    post_status(
        &app,
        "shop-stg",
        &release_id,
        "smoke/checkout",
        "error",
        &t.ci,
    )
    .await;
    let failed = target_in(&app, &id, "shop-stg", "failed", &t.ci).await;
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap()
            .contains("smoke/checkout: error"),
        "{failed}"
    );
    let coupling = get(&app, "/apps/shop-stg/pipeline-couplings", &t.ci).await;
    assert_eq!(
        coupling["release"]["image"], "shop:2",
        "keep leaves the release current"
    );
    let events = event_names(&app, &id, &t.ci).await;
    assert!(
        !names(&events).contains(&"target.rolled_back"),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_deadline_fails_a_verification_naming_what_is_missing() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    // No release before: a failed verification has nothing to roll back to.
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke/checkout"], 10, "rollback"),
        false,
    )
    .await;
    let id = promote(&app, &t.ci).await;
    let verifying = target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    let deadline: chrono::DateTime<chrono::Utc> = verifying["verification"]["deadline"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let failed = target_in(&app, &id, "shop-stg", "failed", &t.ci).await;
    let decided_at: chrono::DateTime<chrono::Utc> =
        failed["updated_at"].as_str().unwrap().parse().unwrap();
    let late = decided_at - deadline;
    assert!(
        late >= chrono::Duration::zero() && late < chrono::Duration::seconds(2),
        "decided {late} after the deadline"
    );
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap()
            .contains("smoke/checkout: missing"),
        "{failed}"
    );
    let events = event_names(&app, &id, &t.ci).await;
    let rolled_back = &events
        .iter()
        .find(|(name, _)| name == "target.rolled_back")
        .expect("rolled_back")
        .1;
    assert!(
        rolled_back.contains("nothing was rolled back"),
        "{rolled_back}"
    );
}

/// A real HTTP server for the checks: `/ok` 200, `/down` 503, `/moved` 302, `/slow`
/// answers after 12 s.
async fn probe_target() -> String {
    use axum::{http::StatusCode, response::Redirect, routing::get};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route("/moved", get(|| async { Redirect::temporary("/ok") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(12)).await;
                "late"
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

#[tokio::test]
async fn http_checks_pass_on_2xx_and_fail_on_errors_redirects_timeouts_and_no_answer() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    let base = probe_target().await;
    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    call_ok(
        &app,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        &t.ops,
    )
    .await;
    call_ok(
        &app,
        Method::POST,
        "/apps",
        json!({"name": "shop-dev"}),
        &t.ops,
    )
    .await;
    let body = json!({"app": "shop-dev", "pipeline": "shop", "stage": "development"});
    call_ok(&app, Method::POST, "/pipeline-couplings", body, &t.ops).await;
    let checks = [
        ("shop-ok", format!("{base}/ok"), 2, 0),
        ("shop-down", format!("{base}/down"), 1, 0),
        ("shop-moved", format!("{base}/moved"), 1, 0),
        ("shop-slow", format!("{base}/slow"), 1, 0),
        // Every measurement may fail, yet a check with no success never passes.
        ("shop-closed", format!("http://127.0.0.1:{closed}/"), 2, 1),
    ];
    for (name, url, count, failure_limit) in &checks {
        call_ok(&app, Method::POST, "/apps", json!({"name": name}), &t.ops).await;
        let verification = json!({"timeout_seconds": 60, "on_failure": "keep", "http_checks": [
            {"name": "health", "url": url, "interval_seconds": 1, "count": count, "failure_limit": failure_limit}]});
        let body = json!({"app": name, "pipeline": "shop", "stage": "staging", "verification": verification});
        call_ok(&app, Method::POST, "/pipeline-couplings", body, &t.ops).await;
    }
    release(&app, "shop-dev", "shop:2", &t.ops).await;
    let id = promote(&app, &t.ci).await;

    let ok = target_in(&app, &id, "shop-ok", "succeeded", &t.ci).await;
    assert_eq!(ok["verification"]["results"][0]["context"], "http/health");
    assert_eq!(
        ok["verification"]["results"][0]["description"],
        "2 of 2 succeeded; last: 200 OK"
    );
    for (name, expected) in [
        (
            "shop-down",
            "0 of 1 succeeded; last: 503 Service Unavailable",
        ),
        ("shop-moved", "redirects are not followed"),
        ("shop-slow", "no answer within 10 s"),
        ("shop-closed", "0 of 2 succeeded; last: connection failed"),
    ] {
        let failed = target_in(&app, &id, name, "failed", &t.ci).await;
        let result = &failed["verification"]["results"][0];
        assert_eq!(result["context"], "http/health", "{name}");
        assert_eq!(result["state"], "failure", "{name}");
        assert!(
            result["description"].as_str().unwrap().contains(expected),
            "{name}: {result}"
        );
    }
    // The results are ordinary release statuses on the new releases.
    let release = get(&app, "/apps/shop-ok/releases", &t.ci).await;
    let newest = release.as_array().unwrap().last().unwrap().clone();
    let statuses = get(
        &app,
        &format!(
            "/apps/shop-ok/releases/{}/statuses",
            newest["id"].as_str().unwrap()
        ),
        &t.ci,
    )
    .await;
    assert_eq!(statuses["statuses"][0]["context"], "http/health");
    assert_eq!(statuses["statuses"][0]["state"], "success");
}

#[tokio::test]
async fn auto_promotion_waits_for_verification_and_never_carries_a_failed_release_onward() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    call_ok(
        &app,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        &t.ops,
    )
    .await;
    for (name, stage, extra) in [
        ("shop-dev", "development", json!({})),
        (
            "shop-stg",
            "staging",
            json!({"promotion_policy": {"auto_promote": true},
            "verification": contexts(&["smoke"], 600, "rollback")}),
        ),
        (
            "shop-prod",
            "production",
            json!({"promotion_policy": {"auto_promote": true}}),
        ),
    ] {
        call_ok(&app, Method::POST, "/apps", json!({"name": name}), &t.ops).await;
        let mut body = json!({"app": name, "pipeline": "shop", "stage": stage});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        call_ok(&app, Method::POST, "/pipeline-couplings", body, &t.ops).await;
    }
    let current = |name: &'static str| {
        let app = &app;
        let token = t.ci.clone();
        async move {
            get(app, &format!("/apps/{name}/pipeline-couplings"), &token).await["release"]["image"]
                .clone()
        }
    };
    release(&app, "shop-dev", "shop:1", &t.ci).await;
    let stg_release = eventually("shop:1 on staging", || async {
        let coupling = get(&app, "/apps/shop-stg/pipeline-couplings", &t.ci).await;
        (coupling["release"]["image"] == "shop:1")
            .then(|| coupling["release"]["id"].as_str().unwrap().to_owned())
    })
    .await;
    // Verifying: production waits, even with every required context green.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        current("shop-prod").await,
        Value::Null,
        "production got an unverified release"
    );
    post_status(&app, "shop-stg", &stg_release, "smoke", "success", &t.ci).await;
    eventually("shop:1 in production", || async {
        (current("shop-prod").await == "shop:1").then_some(())
    })
    .await;

    // A release that fails verification is rolled back and never reaches production.
    release(&app, "shop-dev", "shop:2", &t.ci).await;
    let bad = eventually("shop:2 on staging", || async {
        let coupling = get(&app, "/apps/shop-stg/pipeline-couplings", &t.ci).await;
        (coupling["release"]["image"] == "shop:2")
            .then(|| coupling["release"]["id"].as_str().unwrap().to_owned())
    })
    .await;
    post_status(&app, "shop-stg", &bad, "smoke", "failure", &t.ci).await;
    eventually("staging rolled back", || async {
        (current("shop-stg").await == "shop:1").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        current("shop-prod").await,
        "shop:1",
        "a failed release flowed onward"
    );
}

#[tokio::test]
async fn a_rollback_is_deployed_through_the_webhook_deployer() {
    let receiver = WebhookReceiver::start("s3cret", Duration::ZERO).await;
    let database = crate::helpers::fresh_database().await;
    let mut settings = settings_for(&database.url);
    settings.webhook = Some(pipelines::deploy::webhook::WebhookSettings {
        url: receiver.url.clone(),
        secret: "s3cret".into(),
        timeout: Duration::from_secs(5),
        retries: 1,
        backoff: Duration::from_millis(50),
    });
    let deployer = Arc::new(
        pipelines::deploy::webhook::WebhookDeployer::new(settings.webhook.clone().unwrap())
            .unwrap(),
    );
    let app = spawn_app_with_deployer(settings, database, deployer).await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke"], 600, "rollback"),
        true,
    )
    .await;
    let id = promote(&app, &t.ci).await;
    let verifying = target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    post_status(
        &app,
        "shop-stg",
        verifying["release"]["id"].as_str().unwrap(),
        "smoke",
        "failure",
        &t.ci,
    )
    .await;
    target_in(&app, &id, "shop-stg", "failed", &t.ci).await;
    let deliveries = receiver.to_app("shop-stg");
    assert_eq!(
        deliveries.len(),
        2,
        "the promotion's deploy, then the rollback's"
    );
    let rollback = &deliveries[1].payload;
    assert_eq!(rollback["cause"], "verification_rollback");
    assert_eq!(rollback["release"]["image"], "shop:1");
    assert_eq!(rollback["release"]["version"], 3);
    assert_eq!(rollback["pipeline_promotion"]["id"], id.as_str());
    assert!(deliveries[1].signed);
    assert_ne!(
        deliveries[0].target, deliveries[1].target,
        "a delivery id of its own"
    );
}

#[tokio::test]
async fn deleting_the_app_while_it_verifies_cancels_the_target_without_a_rollback() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke"], 600, "rollback"),
        true,
    )
    .await;
    let id = promote(&app, &t.ci).await;
    target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    call_ok(&app, Method::DELETE, "/apps/shop-stg", json!({}), &t.ops).await;
    let canceled = target_in(&app, &id, "shop-stg", "canceled", &t.ci).await;
    assert!(
        canceled["error_message"]
            .as_str()
            .unwrap()
            .contains("deleted"),
        "{canceled}"
    );
    let events = event_names(&app, &id, &t.ci).await;
    assert!(
        !names(&events).contains(&"target.rolled_back"),
        "{events:?}"
    );
    assert_eq!(
        get(&app, &format!("/pipeline-promotions/{id}"), &t.ci).await["status"],
        "failed"
    );
}

#[tokio::test]
async fn canceling_the_promotion_lets_its_verification_finish() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke"], 600, "rollback"),
        true,
    )
    .await;
    let id = promote(&app, &t.ci).await;
    let verifying = target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    let canceled = call_ok(
        &app,
        Method::POST,
        &format!("/pipeline-promotions/{id}/cancel"),
        json!({}),
        &t.ci,
    )
    .await;
    assert_ne!(
        canceled["status"], "canceled",
        "it waits for the verifying target: {canceled}"
    );
    post_status(
        &app,
        "shop-stg",
        verifying["release"]["id"].as_str().unwrap(),
        "smoke",
        "success",
        &t.ci,
    )
    .await;
    target_in(&app, &id, "shop-stg", "succeeded", &t.ci).await;
    let promotion = eventually("the promotion ends", || async {
        let promotion = get(&app, &format!("/pipeline-promotions/{id}"), &t.ci).await;
        (promotion["status"] != "running").then_some(promotion)
    })
    .await;
    assert_eq!(promotion["status"], "canceled");
}

#[tokio::test]
async fn replicas_that_never_saw_the_promotion_decide_its_deadline_once() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke"], 10, "rollback"),
        true,
    )
    .await;
    let id = promote(&app, &t.ci).await;
    target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    // The server that started it stops; two others share its database (PostgreSQL; on
    // SQLite, which serves one process, one restarted server).
    let database = app.stop().await;
    let url = database.url.clone();
    let first = spawn_app_with(settings_for(&url), database.another_handle()).await;
    let second = if database.is_postgres() {
        Some(spawn_app_with(settings_for(&url), database).await)
    } else {
        None
    };
    let second = second.as_ref().unwrap_or(&first);
    let failed = target_in(second, &id, "shop-stg", "failed", &t.ci).await;
    assert_eq!(failed["verification"]["state"], "failed");
    let events = event_names(&first, &id, &t.ci).await;
    let count = |name: &str| names(&events).iter().filter(|n| **n == name).count();
    assert_eq!(count("target.verification_failed"), 1, "{events:?}");
    assert_eq!(count("target.rolled_back"), 1, "{events:?}");
    assert_eq!(count("target.failed"), 1, "{events:?}");
    let releases = get(second, "/apps/shop-stg/releases", &t.ci).await;
    assert_eq!(
        releases.as_array().unwrap().len(),
        3,
        "one rollback release: {releases}"
    );
}

#[tokio::test]
async fn a_status_patched_to_failure_decides_at_once() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke"], 600, "keep"),
        true,
    )
    .await;
    let id = promote(&app, &t.ci).await;
    let verifying = target_in(&app, &id, "shop-stg", "verifying", &t.ci).await;
    let release_id = verifying["release"]["id"].as_str().unwrap().to_owned();
    let path = format!("/apps/shop-stg/releases/{release_id}/statuses");
    let body = json!({"context": "smoke", "name": "smoke", "state": "pending"});
    let status = call_ok(&app, Method::POST, &path, body, &t.ci).await;
    // The pending status shows on the target as it arrives, and decides nothing.
    let targets = format!("/pipeline-promotions/{id}/promotion-targets");
    let still = eventually("the pending result to show", || async {
        let targets = get(&app, &targets, &t.ci).await;
        let target = targets[0].clone();
        (target["verification"]["results"][0]["state"] == "pending").then_some(target)
    })
    .await;
    assert_eq!(
        still["status"], "verifying",
        "pending decides nothing: {still}"
    );
    assert_eq!(
        still["verification"]["results"],
        json!([{"context": "smoke", "state": "pending", "description": ""}])
    );
    let started = Instant::now();
    let patch = format!("{path}/{}", status["id"].as_str().unwrap());
    call_ok(
        &app,
        Method::PATCH,
        &patch,
        json!({"state": "failure", "description": "checkout broke"}),
        &t.ci,
    )
    .await;
    let failed = target_in(&app, &id, "shop-stg", "failed", &t.ci).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "decided in {:?}",
        started.elapsed()
    );
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap()
            .contains("smoke: failure (checkout broke)"),
        "{failed}"
    );
}
