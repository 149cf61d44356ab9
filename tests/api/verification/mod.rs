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
mod http_checks;
mod policy;
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
