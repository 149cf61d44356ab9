//! Promotion paths of the REST gateway: shapes, statuses, idempotency and the SSE stream.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_deploying_with, TestApp, TestDeployer};

async fn shop(app: &TestApp) -> Value {
    let call =
        |method: Method, path: &'static str, body: Value| app.call(method, path, Some(body), None);
    call(Method::POST, "/pipelines", json!({"name": "shop"})).await;
    for (name, stage) in [("shop-dev", "development"), ("shop-stg", "staging")] {
        app.call(Method::POST, "/apps", Some(json!({"name": name})), None)
            .await;
        app.call(
            Method::POST,
            "/pipeline-couplings",
            Some(json!({"app": name, "pipeline": "shop", "stage": stage})),
            None,
        )
        .await;
    }
    app.call(
        Method::POST,
        "/apps/shop-dev/releases",
        Some(json!({"image": "shop:1"})),
        None,
    )
    .await
    .1
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

fn body() -> Value {
    json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})
}

async fn finish(app: &TestApp, id: &str) -> Value {
    for _ in 0..200 {
        let (_, promotion) = app
            .call(
                Method::GET,
                &format!("/pipeline-promotions/{id}"),
                None,
                None,
            )
            .await;
        if !["pending", "running"].contains(&promotion["status"].as_str().unwrap()) {
            return promotion;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not finished");
}

#[tokio::test]
async fn promotions_and_targets_have_the_contract_shapes() {
    let app = spawn_app().await;
    let release = shop(&app).await;
    let (status, created) = app
        .call(Method::POST, "/pipeline-promotions", Some(body()), None)
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        keys(&created),
        [
            "approvals",
            "created_at",
            "created_by",
            "id",
            "overridden_checks",
            "overridden_freezes",
            "pipeline",
            "required_approvals",
            "safe",
            "source",
            "status",
            "triggered_by",
            "updated_at"
        ]
    );
    assert_eq!(created["status"], "pending");
    assert_eq!(created["approvals"], json!([]));
    assert_eq!(created["overridden_freezes"], json!([]));
    assert_eq!(created["required_approvals"], 0);
    assert_eq!(created["triggered_by"], Value::Null);
    assert_eq!(
        created["source"]["release"],
        json!({"id": release["id"], "version": 1})
    );
    assert_eq!(keys(&created["source"]["app"]), ["id", "name"]);
    assert_eq!(
        keys(&created["source"]),
        ["app", "release", "space"],
        "{created}"
    );
    let printed = format!(
        "{}-{}",
        created["source"]["app"]["name"].as_str().unwrap(),
        created["source"]["space"]["name"].as_str().unwrap()
    );
    assert_eq!(printed, "shop-dev", "app-space gives back the whole name");
    let id = created["id"].as_str().unwrap();
    let finished = finish(&app, id).await;
    assert_eq!(finished["status"], "successful");

    let (status, targets) = app
        .call(
            Method::GET,
            &format!("/pipeline-promotions/{id}/promotion-targets"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let target = &targets[0];
    assert_eq!(
        keys(target),
        [
            "app",
            "created_at",
            "error_message",
            "id",
            "pipeline_promotion",
            "release",
            "status",
            "updated_at",
            "verification"
        ]
    );
    assert_eq!(target["verification"], Value::Null);
    assert_eq!(target["pipeline_promotion"], json!({"id": id}));
    assert_eq!(target["release"]["version"], 1);

    let (status, listed) = app
        .call(
            Method::GET,
            "/pipeline-promotions?pipeline=shop",
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["id"], created["id"]);
    let (status, _) = app
        .call(
            Method::GET,
            "/pipeline-promotions?pipeline=ghost",
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/pipeline-promotions/{}", uuid::Uuid::new_v4()),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(Method::GET, "/pipeline-promotions/not-a-uuid", None, None)
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn promotion_rejections_map_to_http_statuses() {
    let app = spawn_app().await;
    shop(&app).await;
    let cases = [
        (
            json!({"pipeline": {"id": "ghost"}, "source": {"app": {"id": "shop-dev"}}}),
            404,
            "ghost",
        ),
        (
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "ghost"}}}),
            404,
            "ghost",
        ),
        (
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-stg"}}}),
            422,
            "no app is coupled at stage production",
        ),
        (
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}, "targets": [{"app": {"id": "shop-dev"}}]}),
            422,
            "targets[0].app",
        ),
        (
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev", "release": {"id": uuid::Uuid::new_v4().to_string()}}}}),
            404,
            "release",
        ),
        (
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}, "safe": "yes"}),
            422,
            "safe",
        ),
        (
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}, "targets": "shop-stg"}),
            422,
            "targets",
        ),
    ];
    for (request, wanted, fragment) in cases {
        let (status, answer) = app
            .call(
                Method::POST,
                "/pipeline-promotions",
                Some(request.clone()),
                None,
            )
            .await;
        assert_eq!(status, wanted, "{request}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(fragment),
            "{answer}"
        );
    }
    let (_, listed) = app
        .call(Method::GET, "/pipeline-promotions", None, None)
        .await;
    assert_eq!(listed, json!([]), "nothing was written");
}

#[tokio::test]
async fn a_dry_run_answers_200_with_the_plan() {
    let app = spawn_app().await;
    shop(&app).await;
    let mut request = body();
    request["dry_run"] = json!(true);
    let (status, plan) = app
        .call(Method::POST, "/pipeline-promotions", Some(request), None)
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["target_stage"], "staging");
    assert_eq!(plan["targets"][0]["app"]["name"], "shop-stg");
    assert_eq!(plan["targets"][0]["busy_with"], Value::Null);
    // The Akkeris way of naming the source: `<app>-<space>`.
    assert_eq!(plan["source"]["app"]["name"], "shop");
    assert_eq!(plan["source"]["space"]["name"], "dev");
    let (_, listed) = app
        .call(Method::GET, "/pipeline-promotions", None, None)
        .await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn the_idempotency_key_header_replays_the_first_promotion() {
    let app = spawn_app().await;
    shop(&app).await;
    let send = |request: Value| {
        app.rest(Method::POST, "/pipeline-promotions")
            .header("Idempotency-Key", "release-2026-11-26")
            .json(&request)
            .send()
    };
    let first: Value = send(body()).await.unwrap().json().await.unwrap();
    let again: Value = send(body()).await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let mut different = body();
    different["safe"] = json!(true);
    let response = send(different).await.unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let (_, listed) = app
        .call(Method::GET, "/pipeline-promotions", None, None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// The events of a Server-Sent Events answer, read to its end (the stream ends by itself
/// after `promotion.finished`): each one's id, name and data.
async fn server_sent_events(response: reqwest::Response) -> Vec<(i64, String, Value)> {
    let text = tokio::time::timeout(std::time::Duration::from_secs(20), response.text())
        .await
        .unwrap()
        .unwrap();
    text.split("\n\n")
        .filter(|block| block.contains("data:"))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}:")))
                    .map(|value| value.trim().to_owned())
                    .unwrap_or_default()
            };
            (
                field("id").parse().unwrap(),
                field("event"),
                serde_json::from_str(&field("data")).unwrap(),
            )
        })
        .collect()
}

/// The events carry these names, numbered 1, 2, 3… in order.
fn assert_names_in_sequence(events: &[(i64, String, serde_json::Value)], names: &[&str]) {
    let seen: Vec<&str> = events.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(seen, names);
    let ids: Vec<i64> = events.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, (1..=names.len() as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_waiting_target_says_so_in_the_server_sent_events() {
    let (deployer, gate) = TestDeployer::gated();
    let app = spawn_app_deploying_with(deployer).await;
    shop(&app).await;
    let (_, first) = app
        .call(Method::POST, "/pipeline-promotions", Some(body()), None)
        .await;
    let (_, second) = app
        .call(Method::POST, "/pipeline-promotions", Some(body()), None)
        .await;
    gate.add_permits(10);
    let path = format!(
        "/pipeline-promotions/{}/events",
        second["id"].as_str().unwrap()
    );
    let response = app.rest(Method::GET, &path).send().await.unwrap();
    let events = server_sent_events(response).await;
    assert_names_in_sequence(
        &events,
        &[
            "promotion.created",
            "target.queued",
            "target.running",
            "target.release_created",
            "target.succeeded",
            "promotion.finished",
        ],
    );
    let queued = &events[1].2;
    assert_eq!(queued["waiting_for"]["id"], first["id"], "{queued}");
    assert_eq!(queued["app"]["name"], "shop-stg");
    assert_eq!(queued["target_status"], "pending", "{queued}");
}

#[tokio::test]
async fn events_stream_as_server_sent_events_and_resume() {
    let app = spawn_app().await;
    shop(&app).await;
    let (_, created) = app
        .call(Method::POST, "/pipeline-promotions", Some(body()), None)
        .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/pipeline-promotions/{id}/events");
    let response = app.rest(Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = server_sent_events(response).await;
    assert_names_in_sequence(
        &events,
        &[
            "promotion.created",
            "target.running",
            "target.release_created",
            "target.succeeded",
            "promotion.finished",
        ],
    );
    assert_eq!(events[3].2["app"]["name"], "shop-stg");
    // Run in one transaction by the local deployer, each step still reports the
    // promotion's status at that step.
    let statuses: Vec<&str> = events
        .iter()
        .map(|(_, _, data)| data["promotion_status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        ["pending", "running", "running", "running", "successful"]
    );

    let resumed = app
        .rest(Method::GET, &path)
        .header("Last-Event-ID", "3")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ids: Vec<&str> = resumed
        .lines()
        .filter_map(|line| line.strip_prefix("id:"))
        .map(str::trim)
        .collect();
    assert_eq!(ids, ["4", "5"]);
    // Resumed after its last event, a finished promotion has nothing more to send.
    let at_the_end = app
        .rest(Method::GET, &path)
        .header("Last-Event-ID", "5")
        .send()
        .await
        .unwrap();
    assert_eq!(at_the_end.status().as_u16(), 204);
    assert_eq!(at_the_end.text().await.unwrap(), "");
    let unknown = app
        .rest(
            Method::GET,
            &format!("/pipeline-promotions/{}/events", uuid::Uuid::new_v4()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let bad = app
        .rest(Method::GET, &path)
        .header("Last-Event-ID", "four")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
}

#[tokio::test]
async fn cancel_over_rest() {
    let app = spawn_app().await;
    shop(&app).await;
    let (_, created) = app
        .call(Method::POST, "/pipeline-promotions", Some(body()), None)
        .await;
    let id = created["id"].as_str().unwrap();
    finish(&app, id).await;
    let (status, answer) = app
        .call(
            Method::POST,
            &format!("/pipeline-promotions/{id}/cancel"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], 9);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/pipeline-promotions/{}/cancel", uuid::Uuid::new_v4()),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
}
