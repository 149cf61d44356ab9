//! The webhook deployer against a real HTTP receiver started by the test.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use pipelines::{
    deploy::{webhook::signature, WebhookSettings},
    proto::{
        create_promotion_response::Result as Created, CreatePromotionRequest,
        ListPromotionTargetsRequest, PromotionStatus, Stage, TargetStatus,
    },
};

use crate::helpers::{fresh_database, settings_for, spawn_app_with, TestApp};

const SECRET: &str = "webhook-test-secret";

/// What the receiver saw: per app, each delivery's signature verdict.
#[derive(Default)]
struct Receiver {
    deliveries: Mutex<HashMap<String, Vec<bool>>>,
    payloads: Mutex<Vec<serde_json::Value>>,
}

/// Answers by the app's name: `ok-*` 200, `slow-*` too late, `flaky-*` 503 once then 200,
/// `reject-*` 404.
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let app = payload["app"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let signed = headers
        .get("x-pipelines-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let valid = signed == signature(SECRET, &body);
    let attempt = {
        let mut deliveries = receiver.deliveries.lock().unwrap();
        let seen = deliveries.entry(app.clone()).or_default();
        seen.push(valid);
        seen.len()
    };
    receiver.payloads.lock().unwrap().push(payload);
    if !valid {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    if app.starts_with("slow-") {
        tokio::time::sleep(Duration::from_secs(2)).await;
        (StatusCode::OK, "late".into())
    } else if app.starts_with("flaky-") && attempt == 1 {
        (StatusCode::SERVICE_UNAVAILABLE, "warming up".into())
    } else if app.starts_with("reject-") {
        (StatusCode::NOT_FOUND, "no such app in this cluster".into())
    } else {
        (StatusCode::OK, "deployed".into())
    }
}

async fn start_receiver() -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver::default());
    let router = Router::new()
        .route("/deploy", post(receive))
        .with_state(Arc::clone(&receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/deploy", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, receiver)
}

async fn spawn_with_webhook(url: &str) -> TestApp {
    let database = fresh_database().await;
    let mut settings = settings_for(&database.url);
    settings.webhook = Some(WebhookSettings {
        url: url.to_owned(),
        secret: SECRET.to_owned(),
        timeout: Duration::from_millis(300),
        retries: 2,
        backoff: Duration::from_millis(50),
    });
    spawn_app_with(settings, database).await
}

async fn promote_to(app: &TestApp, targets: &[&str]) -> (i32, HashMap<String, (i32, String)>) {
    app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    for target in targets {
        app.create_app(target).await;
        app.couple(target, "shop", Stage::Staging, &[]).await;
    }
    app.create_release("shop-dev", "registry/shop:7").await;
    let created = app
        .promotions
        .clone()
        .create_promotion(CreatePromotionRequest {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(Created::Promotion(promotion)) = created.result else {
        panic!()
    };
    let finished = app.finished_promotion(&promotion.id).await;
    let targets = app
        .promotions
        .clone()
        .list_promotion_targets(ListPromotionTargetsRequest { id: promotion.id })
        .await
        .unwrap()
        .into_inner()
        .targets
        .into_iter()
        .map(|t| (t.app.unwrap().name, (t.status, t.error_message)))
        .collect();
    (finished.status, targets)
}

#[tokio::test]
async fn the_webhook_deployer_succeeds_retries_times_out_and_refuses() {
    let (url, receiver) = start_receiver().await;
    let app = spawn_with_webhook(&url).await;
    let (status, targets) =
        promote_to(&app, &["ok-app", "flaky-app", "slow-app", "reject-app"]).await;
    assert_eq!(status, PromotionStatus::PartiallyFailed as i32);

    assert_eq!(
        targets["ok-app"],
        (TargetStatus::Succeeded as i32, String::new())
    );
    assert_eq!(
        targets["flaky-app"].0,
        TargetStatus::Succeeded as i32,
        "a 5xx is retried"
    );
    let (slow_status, slow_error) = &targets["slow-app"];
    assert_eq!(*slow_status, TargetStatus::Failed as i32);
    assert!(
        slow_error.contains("did not answer within 300 ms"),
        "{slow_error}"
    );
    assert!(
        slow_error.contains("gave up after 3 attempts"),
        "{slow_error}"
    );
    let (reject_status, reject_error) = &targets["reject-app"];
    assert_eq!(*reject_status, TargetStatus::Failed as i32);
    assert!(reject_error.contains("404"), "{reject_error}");
    assert!(
        reject_error.contains("no such app in this cluster"),
        "{reject_error}"
    );

    let deliveries = receiver.deliveries.lock().unwrap();
    assert_eq!(deliveries["ok-app"].len(), 1);
    assert_eq!(deliveries["flaky-app"].len(), 2);
    assert_eq!(deliveries["slow-app"].len(), 3, "bounded retries");
    assert_eq!(deliveries["reject-app"].len(), 1, "a 4xx is not retried");
    assert!(
        deliveries.values().flatten().all(|valid| *valid),
        "every signature verifies"
    );

    let payloads = receiver.payloads.lock().unwrap();
    let ok = payloads
        .iter()
        .find(|p| p["app"]["name"] == "ok-app")
        .unwrap();
    assert_eq!(ok["release"]["image"], "registry/shop:7");
    assert_eq!(ok["release"]["version"], 1);
    assert_eq!(ok["source"]["app"]["name"], "shop-dev");
    assert_eq!(ok["pipeline"]["name"], "shop");
    assert_eq!(ok["event"], "release.deploy");
}

#[tokio::test]
async fn a_refused_connection_fails_the_target_after_retries() {
    let closed_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let app = spawn_with_webhook(&format!("http://127.0.0.1:{closed_port}/deploy")).await;
    let (status, targets) = promote_to(&app, &["ok-app"]).await;
    assert_eq!(status, PromotionStatus::Failed as i32);
    let (target_status, error) = &targets["ok-app"];
    assert_eq!(*target_status, TargetStatus::Failed as i32);
    assert!(
        error.contains("unreachable") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
}

#[tokio::test]
async fn a_receiver_can_reject_a_forged_signature() {
    // The receiver recomputes the HMAC; a body signed with another key does not verify.
    let body = br#"{"app":{"name":"ok-app"}}"#;
    assert_ne!(signature("another-key", body), signature(SECRET, body));
    assert_eq!(signature(SECRET, body), signature(SECRET, body));
}
