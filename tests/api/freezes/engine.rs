//! What the engine does while a stage is frozen: auto-promotions are made and wait, told
//! so; they start when the freeze ends or is lifted; superseding still leaves only the
//! newest; rollbacks still run.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::{freeze, in_seconds, time};
use crate::{
    helpers::{spawn_app, TestApp},
    policies::{
        call_ok, current_image, eventually, finished, promotions, release, shop, targets, tokens,
        Tokens,
    },
};

/// `shop` whose staging coupling auto-promotes, with a token of each kind.
async fn auto_promoting_shop(app: &TestApp) -> Tokens {
    let tokens = tokens(app).await;
    shop(
        app,
        &tokens.ops,
        json!({"promotion_policy": {"auto_promote": true}}),
        json!({}),
    )
    .await;
    tokens
}

/// The newest promotion's target, once it exists and has said that a freeze holds it.
async fn held_target(app: &TestApp, tokens: &Tokens) -> (String, Value) {
    let promotion = eventually("an auto-promotion", || async {
        promotions(app, &tokens.reader).await.into_iter().next()
    })
    .await;
    let id = promotion["id"].as_str().unwrap().to_owned();
    let mut stream = app.watch_as(&id, &tokens.reader).await;
    let told = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = stream
                .message()
                .await
                .expect("the stream")
                .expect("an event");
            if event.waiting_for_freeze.is_some() {
                break event;
            }
        }
    })
    .await
    .expect("told within 10 s that a freeze holds it");
    let wait = told.waiting_for_freeze.as_ref().unwrap();
    assert_eq!(told.name, "target.queued");
    assert_eq!(wait.reason, "sale weekend");
    assert!(told.message.contains("frozen"), "{}", told.message);
    let (status, sse) = app
        .rest(Method::GET, &format!("/pipeline-promotions/{id}/events"))
        .bearer_auth(&tokens.reader)
        .header("Last-Event-ID", (told.sequence - 1).to_string())
        .timeout(Duration::from_millis(800))
        .send()
        .await
        .map(|response| (response.status().as_u16(), response))
        .expect("the event stream");
    assert_eq!(status, 200);
    let mut text = String::new();
    let mut response = sse;
    while let Ok(Some(chunk)) = response.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("waiting_for_freeze") {
            break;
        }
    }
    assert!(
        text.contains("\"waiting_for_freeze\":{") && text.contains("sale weekend"),
        "REST carries the freeze too: {text}"
    );
    (id, promotion)
}

/// Two servers on one PostgreSQL database whose engines poll once a minute, so that only a
/// freeze's boundary can wake them in time; `None` on SQLite, which has one process.
async fn slow_replicas() -> Option<(TestApp, TestApp)> {
    let database = crate::helpers::fresh_database().await;
    if !database.is_postgres() {
        eprintln!(
            "SKIPPED on SQLite: replicas share PostgreSQL; the embedded file has one process"
        );
        return None;
    }
    let slow = |url: &str| {
        let mut settings = crate::helpers::settings_for(url);
        settings.engine.poll_interval = Duration::from_secs(60);
        settings
    };
    let second_handle = database.another_handle();
    let first = crate::helpers::spawn_app_with(slow(&database.url), database).await;
    let second = crate::helpers::spawn_app_with(slow(&second_handle.url), second_handle).await;
    Some((first, second))
}

#[tokio::test]
async fn auto_promotions_wait_for_a_freeze_and_start_when_it_is_lifted() {
    let app = spawn_app().await;
    let tokens = auto_promoting_shop(&app).await;
    let (status, made) = freeze(
        &app,
        json!({"stages": ["staging"], "ends_at": in_seconds(3600), "reason": "sale weekend"}),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 201, "{made}");

    release(&app, "shop-dev", "shop:1", &tokens.ci).await;
    let (id, _) = held_target(&app, &tokens).await;
    // A newer release supersedes the waiting one: after the freeze only it deploys.
    release(&app, "shop-dev", "shop:2", &tokens.ci).await;
    let older = finished(&app, &id, &tokens.reader).await;
    assert_eq!(older["status"], "canceled", "{older}");
    let (newer_id, _) = held_target(&app, &tokens).await;
    assert_ne!(newer_id, id);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        targets(&app, &newer_id, &tokens.reader).await[0]["status"],
        "pending",
        "nothing starts into a frozen stage"
    );
    assert_eq!(current_image(&app, "shop-stg", &tokens.reader).await, None);

    let lifted_at = Instant::now();
    let path = format!("/pipelines/shop/freezes/{}", made["id"].as_str().unwrap());
    call_ok(&app, Method::DELETE, &path, json!(null), &tokens.ops).await;
    let done = finished(&app, &newer_id, &tokens.reader).await;
    assert_eq!(done["status"], "successful", "{done}");
    assert!(
        lifted_at.elapsed() < Duration::from_secs(10),
        "started within 10 s of the lifting: {:?}",
        lifted_at.elapsed()
    );
    assert_eq!(
        current_image(&app, "shop-stg", &tokens.reader)
            .await
            .as_deref(),
        Some("shop:2"),
        "the stale version never deployed"
    );
}

#[tokio::test]
async fn waiting_targets_start_when_a_freeze_ends_by_itself() {
    let app = spawn_app().await;
    let tokens = auto_promoting_shop(&app).await;
    let (status, made) = freeze(
        &app,
        json!({"stages": ["staging"], "ends_at": in_seconds(3), "reason": "sale weekend"}),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let ends_at = time(&made["ends_at"]);

    release(&app, "shop-dev", "shop:1", &tokens.ci).await;
    let (id, _) = held_target(&app, &tokens).await;
    let done = finished(&app, &id, &tokens.reader).await;
    assert_eq!(done["status"], "successful", "{done}");
    let started = targets(&app, &id, &tokens.reader).await[0]["updated_at"].clone();
    let finished_at = time(&started);
    assert!(
        finished_at >= ends_at,
        "not before the freeze ended: {finished_at} < {ends_at}"
    );
    assert!(
        finished_at - ends_at < chrono::Duration::seconds(10),
        "within 10 s of its end: {finished_at} vs {ends_at}"
    );
    let (_, listed) = app
        .call(
            Method::GET,
            "/pipelines/shop/freezes",
            None,
            Some(&tokens.reader),
        )
        .await;
    assert_eq!(listed, json!([]), "an ended one-off freeze drops out");
}

#[tokio::test]
async fn a_rollback_runs_while_its_stage_is_frozen_even_behind_a_held_target() {
    let app = spawn_app().await;
    let tokens = auto_promoting_shop(&app).await;
    release(&app, "shop-stg", "shop:0", &tokens.ci).await;
    let v2 = release(&app, "shop-stg", "shop:bad", &tokens.ci).await;
    assert_eq!(v2["version"], 2);
    let (status, _) = freeze(
        &app,
        json!({"stages": ["staging"], "ends_at": in_seconds(3600), "reason": "sale weekend"}),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 201);
    // An auto-promotion into staging is held ahead of the rollback in the app's queue.
    release(&app, "shop-dev", "shop:1", &tokens.ci).await;
    let (held, _) = held_target(&app, &tokens).await;

    let rollback = call_ok(
        &app,
        Method::POST,
        "/apps/shop-stg/releases",
        json!({"release": 1}),
        &tokens.alice,
    )
    .await;
    assert_eq!(rollback["status"], "pending", "{rollback}");
    eventually("the rollback to deploy", || async {
        (current_image(&app, "shop-stg", &tokens.reader)
            .await
            .as_deref()
            == Some("shop:0"))
        .then_some(())
    })
    .await;
    assert_eq!(
        targets(&app, &held, &tokens.reader).await[0]["status"],
        "pending",
        "the held target still waits"
    );
}

#[tokio::test]
async fn a_replica_that_did_not_make_the_freeze_holds_and_resumes_by_its_own_timer() {
    let Some((first, second)) = slow_replicas().await else {
        return;
    };
    let tokens = auto_promoting_shop(&first).await;
    let (status, made) = freeze(
        &first,
        json!({"stages": ["staging"], "ends_at": in_seconds(4), "reason": "sale weekend"}),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let ends_at = time(&made["ends_at"]);
    first.stop().await;

    release(&second, "shop-dev", "shop:1", &tokens.ci).await;
    let (id, _) = held_target(&second, &tokens).await;
    let done = finished(&second, &id, &tokens.reader).await;
    assert_eq!(done["status"], "successful", "{done}");
    let at = time(&targets(&second, &id, &tokens.reader).await[0]["updated_at"]);
    assert!(at >= ends_at, "held until the end: {at} < {ends_at}");
    assert!(
        at - ends_at < chrono::Duration::seconds(10),
        "started within 10 s of the end, by the boundary: {at} vs {ends_at}"
    );
}

#[tokio::test]
async fn when_a_freeze_ends_under_two_replicas_each_waiting_target_starts_once() {
    let Some((first, second)) = slow_replicas().await else {
        return;
    };
    let tokens = auto_promoting_shop(&first).await;
    let staging = ["shop-stg", "shop-stg-eu", "shop-stg-us"];
    for name in &staging[1..] {
        call_ok(
            &first,
            Method::POST,
            "/apps",
            json!({"name": name}),
            &tokens.ops,
        )
        .await;
        let body = json!({"app": name, "pipeline": "shop", "stage": "staging",
            "promotion_policy": {"auto_promote": true}});
        call_ok(
            &first,
            Method::POST,
            "/pipeline-couplings",
            body,
            &tokens.ops,
        )
        .await;
    }
    let (status, made) = freeze(
        &first,
        json!({"stages": ["staging"], "ends_at": in_seconds(4), "reason": "sale weekend"}),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let ends_at = time(&made["ends_at"]);
    release(&second, "shop-dev", "shop:1", &tokens.ci).await;
    let (id, _) = held_target(&first, &tokens).await;

    let done = finished(&second, &id, &tokens.reader).await;
    assert_eq!(done["status"], "successful", "{done}");
    let events = first.watch_to_end_as(&id, &tokens.reader).await;
    for name in staging {
        let runs = events
            .iter()
            .filter(|event| {
                event.name == "target.running"
                    && event.app.as_ref().is_some_and(|app| app.name == name)
            })
            .count();
        assert_eq!(runs, 1, "{name} started once: {events:?}");
        let path = format!("/apps/{name}/releases");
        let (_, releases) = second
            .call(Method::GET, &path, None, Some(&tokens.reader))
            .await;
        assert_eq!(
            releases.as_array().unwrap().len(),
            1,
            "{name}: one release: {releases}"
        );
    }
    for target in targets(&first, &id, &tokens.reader).await {
        let at = time(&target["updated_at"]);
        assert!(at >= ends_at, "held until the end: {at} < {ends_at}");
        assert!(
            at - ends_at < chrono::Duration::seconds(10),
            "{at} vs {ends_at}"
        );
    }
}
