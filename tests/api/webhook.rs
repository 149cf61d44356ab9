//! The webhook deployer against a real HTTP receiver started by the test.

use std::{collections::HashMap, time::Duration};

use pipelines::{
    deploy::{webhook::signature, WebhookSettings},
    proto::{
        create_promotion_response::Result as Created, CreatePromotionRequest,
        ListPromotionTargetsRequest, PromotionStatus, Stage, TargetStatus,
    },
};

use crate::helpers::{fresh_database, settings_for, spawn_app_with, TestApp, WebhookReceiver};

const SECRET: &str = "webhook-test-secret";

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
        .list_promotion_targets(ListPromotionTargetsRequest {
            id: promotion.id,
            ..Default::default()
        })
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
    let receiver = WebhookReceiver::start(SECRET, Duration::ZERO).await;
    let url = receiver.url.clone();
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

    assert_eq!(receiver.to_app("ok-app").len(), 1);
    assert_eq!(receiver.to_app("flaky-app").len(), 2);
    assert_eq!(receiver.to_app("slow-app").len(), 3, "bounded retries");
    assert_eq!(
        receiver.to_app("reject-app").len(),
        1,
        "a 4xx is not retried"
    );
    assert!(
        receiver.deliveries().iter().all(|delivery| delivery.signed),
        "every signature verifies"
    );

    let ok = &receiver.to_app("ok-app")[0].payload;
    assert_eq!(ok["release"]["image"], "registry/shop:7");
    assert_eq!(ok["release"]["version"], 1);
    assert_eq!(ok["source"]["app"]["name"], "shop-dev");
    assert_eq!(ok["pipeline"]["name"], "shop");
    assert_eq!(ok["event"], "release.deploy");

    // The audit log of everything that ran never holds the webhook's secret.
    let (status, log) = app
        .call(
            reqwest::Method::GET,
            "/audit-events?page_size=1000",
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    assert!(log["audit_events"].as_array().unwrap().len() >= 10, "{log}");
    assert!(!log.to_string().contains(SECRET), "{log}");

    // The deployer's metrics: attempts, retries, failures and the delivery latency. The test
    // binary runs many servers in one process, so these are lower bounds.
    let metrics = app
        .rest(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{prefix} in {metrics}"))
    };
    assert!(value(r#"pipelines_deploy_attempts_total{deployer="webhook"}"#) >= 4.0);
    assert!(value(r#"pipelines_deploy_failures_total{deployer="webhook"}"#) >= 2.0);
    assert!(
        value(r#"pipelines_deploy_retries_total{deployer="webhook"}"#) >= 3.0,
        "flaky-app once, slow-app twice"
    );
    assert!(value("pipelines_webhook_request_duration_seconds_count") >= 7.0);
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
