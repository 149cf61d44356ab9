//! Promotion policies: auto-promotion along the pipeline, and approvals before a promotion
//! runs. Most of it goes through REST with real tokens; the gRPC RPCs are checked too.

use std::time::{Duration, Instant};

use pipelines::proto::{ApprovePromotionRequest, CreatePromotionRequest, RejectPromotionRequest};
use reqwest::Method;
use serde_json::{json, Value};
use tonic::Code;

use crate::helpers::{
    fresh_database, settings_for, spawn_app, spawn_app_deploying_with, spawn_app_with, with_token,
    TestApp, TestDeployer,
};

/// Tokens of every kind, named after who holds them.
pub(crate) struct Tokens {
    pub(crate) ops: String,
    pub(crate) ci: String,
    pub(crate) alice: String,
    pub(crate) bob: String,
    pub(crate) carol: String,
    pub(crate) reader: String,
}

pub(crate) async fn tokens(app: &TestApp) -> Tokens {
    Tokens {
        ops: app.create_token("ops", "admin").await,
        ci: app.create_token("ci-bot", "write").await,
        alice: app.create_token("alice", "write").await,
        bob: app.create_token("bob", "write").await,
        carol: app.create_token("carol", "write").await,
        reader: app.create_token("reader", "read").await,
    }
}

pub(crate) async fn call_ok(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Value,
    token: &str,
) -> Value {
    let (status, answer) = app.call(method, path, Some(body), Some(token)).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// Pipeline `shop`: `shop-dev` (development), `shop-stg` (staging) and `shop-prod`
/// (production), each coupling with the given extra fields.
pub(crate) async fn shop(app: &TestApp, token: &str, staging: Value, production: Value) {
    call_ok(
        app,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        token,
    )
    .await;
    for (name, stage, extra) in [
        ("shop-dev", "development", json!({})),
        ("shop-stg", "staging", staging),
        ("shop-prod", "production", production),
    ] {
        call_ok(app, Method::POST, "/apps", json!({"name": name}), token).await;
        let mut body = json!({"app": name, "pipeline": "shop", "stage": stage});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        call_ok(app, Method::POST, "/pipeline-couplings", body, token).await;
    }
}

pub(crate) async fn release(app: &TestApp, name: &str, image: &str, token: &str) -> Value {
    let path = format!("/apps/{name}/releases");
    call_ok(app, Method::POST, &path, json!({"image": image}), token).await
}

pub(crate) async fn post_status(
    app: &TestApp,
    name: &str,
    release: &Value,
    context: &str,
    state: &str,
    token: &str,
) -> Value {
    let path = format!(
        "/apps/{name}/releases/{}/statuses",
        release["id"].as_str().unwrap()
    );
    let body = json!({"context": context, "name": context, "state": state});
    call_ok(app, Method::POST, &path, body, token).await
}

pub(crate) async fn promotions(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, list) = app
        .call(
            Method::GET,
            "/pipeline-promotions?pipeline=shop",
            None,
            Some(token),
        )
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

/// Polls `check` until it answers `Some`, for at most 20 seconds.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
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
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn current_image(app: &TestApp, name: &str, token: &str) -> Option<String> {
    let path = format!("/apps/{name}/pipeline-couplings");
    let (_, coupling) = app.call(Method::GET, &path, None, Some(token)).await;
    coupling["release"]["image"].as_str().map(str::to_owned)
}

async fn promotion(app: &TestApp, id: &str, token: &str) -> Value {
    let path = format!("/pipeline-promotions/{id}");
    let (status, found) = app.call(Method::GET, &path, None, Some(token)).await;
    assert_eq!(status, 200, "{found}");
    found
}

pub(crate) async fn finished(app: &TestApp, id: &str, token: &str) -> Value {
    eventually("the promotion to finish", || async {
        let found = promotion(app, id, token).await;
        let status = found["status"].as_str().unwrap().to_owned();
        let unfinished = ["pending", "running", "awaiting_approval"];
        (!unfinished.contains(&status.as_str())).then_some(found)
    })
    .await
}

pub(crate) async fn targets(app: &TestApp, id: &str, token: &str) -> Vec<Value> {
    let path = format!("/pipeline-promotions/{id}/promotion-targets");
    let (status, list) = app.call(Method::GET, &path, None, Some(token)).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

async fn vote(
    app: &TestApp,
    id: &str,
    kind: &str,
    body: Option<Value>,
    token: &str,
) -> (u16, Value) {
    let path = format!("/pipeline-promotions/{id}/{kind}");
    app.call(Method::POST, &path, body, Some(token)).await
}

/// Creates a promotion from `source` to the next stage and returns it.
async fn promote(app: &TestApp, source: &str, targets: &[&str], token: &str) -> Value {
    let targets: Vec<Value> = targets.iter().map(|t| json!({"app": {"id": t}})).collect();
    let body = json!({
        "pipeline": {"id": "shop"},
        "source": {"app": {"id": source}},
        "targets": targets,
    });
    call_ok(app, Method::POST, "/pipeline-promotions", body, token).await
}

#[tokio::test]
async fn an_auto_promotion_chain_flows_from_development_to_production() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({"required_status_checks": {"contexts": ["ci/tests"]}, "promotion_policy": {"auto_promote": true}}),
        json!({"promotion_policy": {"auto_promote": true}}),
    )
    .await;
    let built = release(&app, "shop-dev", "registry.example.com/shop:1", &tokens.ci).await;

    // Not yet eligible: the staging coupling requires ci/tests, and a pending status is no pass.
    post_status(&app, "shop-dev", &built, "ci/tests", "pending", &tokens.ci).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(promotions(&app, &tokens.reader).await.is_empty());

    // One green status at the start, and the release flows to production by itself.
    let path = format!(
        "/apps/shop-dev/releases/{}/statuses",
        built["id"].as_str().unwrap()
    );
    let (_, statuses) = app.call(Method::GET, &path, None, Some(&tokens.ci)).await;
    let status_id = statuses["statuses"][0]["id"].as_str().unwrap().to_owned();
    call_ok(
        &app,
        Method::PATCH,
        &format!("{path}/{status_id}"),
        json!({"state": "success"}),
        &tokens.ci,
    )
    .await;
    eventually("production to run the image", || async {
        (current_image(&app, "shop-prod", &tokens.reader)
            .await
            .as_deref()
            == Some("registry.example.com/shop:1"))
        .then_some(())
    })
    .await;
    assert_eq!(
        current_image(&app, "shop-stg", &tokens.reader)
            .await
            .as_deref(),
        Some("registry.example.com/shop:1")
    );

    let all = promotions(&app, &tokens.reader).await;
    assert_eq!(all.len(), 2, "{all:?}");
    for made in &all {
        let made = finished(&app, made["id"].as_str().unwrap(), &tokens.reader).await;
        assert_eq!(made["status"], "successful", "{made}");
        assert_eq!(made["created_by"], "auto-promotion");
        assert_eq!(
            made["triggered_by"], "ci-bot",
            "the token whose status started the chain"
        );
        assert_eq!(made["safe"], false);
    }
    // Newest first: staging → production, then development → staging.
    for (made, source) in all.iter().zip(["shop-stg", "shop-dev"]) {
        let (_, source) = app
            .call(
                Method::GET,
                &format!("/apps/{source}"),
                None,
                Some(&tokens.reader),
            )
            .await;
        assert_eq!(made["source"]["app"]["id"], source["id"], "{made}");
    }
    let first_events = app
        .watch_to_end_as(all[1]["id"].as_str().unwrap(), &tokens.reader)
        .await;
    assert!(
        first_events[0].message.contains("ci/tests"),
        "the first event says what triggered it: {}",
        first_events[0].message
    );
}

#[tokio::test]
async fn flapping_statuses_never_promote_a_release_twice() {
    // Staging refuses every deploy, so it never runs the image and the release stays
    // eligible: only the once-per-(release, target) claim keeps it from a second try.
    let app = spawn_app_deploying_with(TestDeployer::failing(&["shop-stg"])).await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({"required_status_checks": {"contexts": ["ci/tests"]}, "promotion_policy": {"auto_promote": true}}),
        json!({}),
    )
    .await;
    let built = release(&app, "shop-dev", "shop:1", &tokens.ci).await;
    let status = post_status(&app, "shop-dev", &built, "ci/tests", "success", &tokens.ci).await;
    let first = eventually("the auto-promotion", || async {
        promotions(&app, &tokens.reader).await.into_iter().next()
    })
    .await;
    let first = finished(&app, first["id"].as_str().unwrap(), &tokens.reader).await;
    assert_eq!(first["status"], "failed");

    let path = format!(
        "/apps/shop-dev/releases/{}/statuses/{}",
        built["id"].as_str().unwrap(),
        status["id"].as_str().unwrap()
    );
    for state in ["failure", "success", "error", "success", "success"] {
        call_ok(
            &app,
            Method::PATCH,
            &path,
            json!({"state": state}),
            &tokens.ci,
        )
        .await;
    }
    post_status(
        &app,
        "shop-dev",
        &built,
        "security/scan",
        "success",
        &tokens.alice,
    )
    .await;
    // The engine polls every 100 ms here; give it many chances to get it wrong.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = promotions(&app, &tokens.reader).await;
    assert_eq!(all.len(), 1, "one promotion, ever: {all:?}");
}

#[tokio::test]
async fn a_newer_auto_promotion_supersedes_one_that_has_not_started() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({"promotion_policy": {"auto_promote": true, "required_approvals": 1}}),
        json!({}),
    )
    .await;
    release(&app, "shop-dev", "shop:1", &tokens.ci).await;
    let older = eventually("the first auto-promotion", || async {
        promotions(&app, &tokens.reader).await.into_iter().next()
    })
    .await;
    assert_eq!(older["status"], "awaiting_approval", "{older}");
    assert_eq!(older["required_approvals"], 1);

    // The token whose release triggered it cannot approve it.
    let older_id = older["id"].as_str().unwrap().to_owned();
    let (status, refused) = vote(&app, &older_id, "approvals", None, &tokens.ci).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("triggered"),
        "{refused}"
    );

    release(&app, "shop-dev", "shop:2", &tokens.bob).await;
    let older = finished(&app, &older_id, &tokens.reader).await;
    assert_eq!(older["status"], "canceled", "{older}");
    let newer = promotions(&app, &tokens.reader)
        .await
        .into_iter()
        .next()
        .unwrap();
    let newer_id = newer["id"].as_str().unwrap().to_owned();
    assert_ne!(newer_id, older_id);
    assert_eq!(newer["triggered_by"], "bob");
    let canceled = targets(&app, &older_id, &tokens.reader).await;
    assert_eq!(canceled[0]["status"], "canceled");
    assert!(
        canceled[0]["error_message"]
            .as_str()
            .unwrap()
            .contains(&newer_id),
        "the canceled target names the newer promotion: {}",
        canceled[0]
    );

    let (status, approved) = vote(&app, &newer_id, "approvals", None, &tokens.alice).await;
    assert_eq!(status, 200, "{approved}");
    let newer = finished(&app, &newer_id, &tokens.reader).await;
    assert_eq!(newer["status"], "successful");
    assert_eq!(
        current_image(&app, "shop-stg", &tokens.reader)
            .await
            .as_deref(),
        Some("shop:2"),
        "the stale version never deployed"
    );
}

#[tokio::test]
async fn two_replicas_given_the_same_release_promote_it_once() {
    let database = fresh_database().await;
    if !database.is_postgres() {
        eprintln!(
            "SKIPPED on SQLite: replicas share PostgreSQL; the embedded file has one process"
        );
        return;
    }
    let second_handle = database.another_handle();
    let first = spawn_app_with(settings_for(&database.url), database).await;
    let second = spawn_app_with(settings_for(&second_handle.url), second_handle).await;
    let tokens = tokens(&first).await;
    shop(
        &first,
        &tokens.ops,
        json!({"required_status_checks": {"contexts": ["ci/a"]}, "promotion_policy": {"auto_promote": true}}),
        json!({}),
    )
    .await;
    let mut releases = Vec::new();
    for round in 0..5 {
        let built = release(&first, "shop-dev", &format!("shop:{round}"), &tokens.ci).await;
        // Both statuses make the release eligible once ci/a passed; each replica takes one.
        let (a, b) = tokio::join!(
            post_status(&first, "shop-dev", &built, "ci/a", "success", &tokens.ci),
            post_status(
                &second,
                "shop-dev",
                &built,
                "ci/b",
                "success",
                &tokens.alice
            ),
        );
        assert_eq!(a["state"], "success");
        assert_eq!(b["state"], "success");
        releases.push(built["id"].as_str().unwrap().to_owned());
        eventually("the round's auto-promotion", || async {
            promotions(&first, &tokens.reader)
                .await
                .iter()
                .any(|p| p["source"]["release"]["id"] == releases[round])
                .then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let all = promotions(&second, &tokens.reader).await;
    for id in &releases {
        let count = all
            .iter()
            .filter(|p| p["source"]["release"]["id"] == id.as_str())
            .count();
        assert_eq!(count, 1, "release {id} was auto-promoted once: {all:?}");
    }
}

#[tokio::test]
async fn two_approvals_start_a_gated_promotion_and_refusals_are_explained() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({}),
        json!({"promotion_policy": {"required_approvals": 2}}),
    )
    .await;
    release(&app, "shop-stg", "shop:1", &tokens.ci).await;

    // The dry run reports the requirement.
    let (status, plan) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-stg"}}, "dry_run": true})),
            Some(&tokens.ops),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["required_approvals"], 2);

    // An admin creates it: admins get no exemption from the approvals either.
    let created = promote(&app, "shop-stg", &[], &tokens.ops).await;
    assert_eq!(created["status"], "awaiting_approval", "{created}");
    assert_eq!(created["required_approvals"], 2);
    assert_eq!(created["approvals"], json!([]));
    let id = created["id"].as_str().unwrap().to_owned();

    // Nothing of it runs.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        promotion(&app, &id, &tokens.reader).await["status"],
        "awaiting_approval"
    );
    assert_eq!(
        targets(&app, &id, &tokens.reader).await[0]["status"],
        "pending"
    );
    assert_eq!(current_image(&app, "shop-prod", &tokens.reader).await, None);

    // Refusals, in the contract's order.
    let missing = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        vote(&app, &missing, "approvals", None, &tokens.alice)
            .await
            .0,
        404
    );
    let (status, body) = vote(&app, &id, "approvals", None, &tokens.reader).await;
    assert_eq!(status, 403, "a read token cannot vote: {body}");
    let (status, body) = vote(&app, &id, "approvals", None, &tokens.ops).await;
    assert_eq!(status, 403, "the creator cannot approve: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("created"),
        "{body}"
    );
    let (status, body) = vote(
        &app,
        &id,
        "approvals",
        Some(json!({"comment": "looks good"})),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "awaiting_approval", "one of two");
    assert_eq!(body["approvals"][0]["by"], "alice");
    assert_eq!(body["approvals"][0]["comment"], "looks good");
    let (status, body) = vote(&app, &id, "approvals", None, &tokens.alice).await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (409, Some(6)),
        "one vote per token: {body}"
    );
    for bad in [None, Some(json!({})), Some(json!({"comment": "   "}))] {
        let (status, body) = vote(&app, &id, "rejections", bad, &tokens.bob).await;
        assert_eq!(status, 422, "a rejection needs a comment: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("comment"),
            "{body}"
        );
    }
    let (status, body) = vote(
        &app,
        &id,
        "approvals",
        Some(json!({"note": "x"})),
        &tokens.bob,
    )
    .await;
    assert_eq!(status, 422, "unknown fields are named: {body}");

    // gRPC: a read token is refused, bob's approval reaches the count.
    let refused = app
        .promotions
        .clone()
        .approve_promotion(with_token(
            ApprovePromotionRequest {
                id: id.clone(),
                comment: String::new(),
            },
            &tokens.reader,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let approved = app
        .promotions
        .clone()
        .approve_promotion(with_token(
            ApprovePromotionRequest {
                id: id.clone(),
                comment: "ship it".into(),
            },
            &tokens.bob,
        ))
        .await
        .expect("second approval")
        .into_inner();
    assert_ne!(
        approved.status,
        pipelines::proto::PromotionStatus::AwaitingApproval as i32
    );
    assert_eq!(approved.approvals.len(), 2);
    assert_eq!(approved.required_approvals, 2);

    let done = finished(&app, &id, &tokens.reader).await;
    assert_eq!(done["status"], "successful", "{done}");
    assert_eq!(
        current_image(&app, "shop-prod", &tokens.reader)
            .await
            .as_deref(),
        Some("shop:1")
    );
    let events = app.watch_to_end_as(&id, &tokens.reader).await;
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "promotion.created",
            "promotion.awaiting_approval",
            "approval.granted",
            "approval.granted"
        ],
        "{names:?}"
    );
    assert_eq!(
        (events[2].actor.as_str(), events[2].comment.as_str()),
        ("alice", "looks good")
    );
    assert_eq!(
        (events[3].actor.as_str(), events[3].comment.as_str()),
        ("bob", "ship it")
    );
    assert!(names.contains(&"target.succeeded"));

    // Too late to vote now.
    let (status, body) = vote(&app, &id, "approvals", None, &tokens.carol).await;
    assert_eq!((status, body["code"].as_i64()), (409, Some(9)), "{body}");
}

#[tokio::test]
async fn a_rejection_ends_the_promotion_and_cancels_its_targets() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({}),
        json!({"promotion_policy": {"required_approvals": 1}}),
    )
    .await;
    release(&app, "shop-stg", "shop:1", &tokens.ci).await;
    let created = promote(&app, "shop-stg", &["shop-prod"], &tokens.ci).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let refused = app
        .promotions
        .clone()
        .reject_promotion(with_token(
            RejectPromotionRequest {
                id: id.clone(),
                comment: String::new(),
            },
            &tokens.alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("comment"),
        "{}",
        refused.message()
    );

    let (status, rejected) = vote(
        &app,
        &id,
        "rejections",
        Some(json!({"comment": "the migration is not reviewed"})),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(
        targets(&app, &id, &tokens.reader).await[0]["status"],
        "canceled"
    );

    let events = app.watch_to_end_as(&id, &tokens.reader).await;
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "promotion.created",
            "promotion.awaiting_approval",
            "approval.rejected",
            "target.canceled",
            "promotion.finished"
        ]
    );
    assert_eq!(events[2].actor, "alice");
    assert_eq!(events[2].comment, "the migration is not reviewed");
    assert_eq!(
        events[4].promotion_status,
        pipelines::proto::PromotionStatus::Rejected as i32
    );

    for kind in ["approvals", "rejections"] {
        let (status, body) = vote(
            &app,
            &id,
            kind,
            Some(json!({"comment": "late"})),
            &tokens.bob,
        )
        .await;
        assert_eq!((status, body["code"].as_i64()), (409, Some(9)), "{body}");
    }
    assert_eq!(current_image(&app, "shop-prod", &tokens.reader).await, None);

    // Cancel works on a promotion awaiting approval as on a pending one.
    let second = promote(&app, "shop-stg", &["shop-prod"], &tokens.ci).await;
    let second_id = second["id"].as_str().unwrap();
    let (status, canceled) = app
        .call(
            Method::POST,
            &format!("/pipeline-promotions/{second_id}/cancel"),
            None,
            Some(&tokens.ci),
        )
        .await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
}

#[tokio::test]
async fn concurrent_approvals_that_reach_the_count_start_the_promotion_once() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({}),
        json!({"promotion_policy": {"required_approvals": 2}}),
    )
    .await;
    release(&app, "shop-stg", "shop:1", &tokens.ci).await;
    let created = promote(&app, "shop-stg", &[], &tokens.ci).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let (a, b, c) = tokio::join!(
        vote(&app, &id, "approvals", None, &tokens.alice),
        vote(&app, &id, "approvals", None, &tokens.bob),
        vote(&app, &id, "approvals", None, &tokens.carol),
    );
    let mut statuses = vec![a.0, b.0, c.0];
    statuses.sort();
    assert_eq!(statuses, [200, 200, 409], "{a:?} {b:?} {c:?}");

    let done = finished(&app, &id, &tokens.reader).await;
    assert_eq!(done["status"], "successful");
    assert_eq!(done["approvals"].as_array().unwrap().len(), 2);
    let events = app.watch_to_end_as(&id, &tokens.reader).await;
    let count = |name: &str| events.iter().filter(|e| e.name == name).count();
    assert_eq!(count("approval.granted"), 2);
    assert_eq!(count("target.running"), 1, "started once");
    let (_, releases) = app
        .call(
            Method::GET,
            "/apps/shop-prod/releases",
            None,
            Some(&tokens.reader),
        )
        .await;
    assert_eq!(
        releases.as_array().unwrap().len(),
        1,
        "one release on production"
    );
}

/// Approves a promotion, which must be answered 200.
async fn approve_ok(app: &TestApp, id: &str, token: &str) {
    let (status, body) = vote(app, id, "approvals", None, token).await;
    assert_eq!(status, 200, "{body:?}");
}

/// Two promotions from staging to production, which needs one approval, deploying only
/// as the gate allows: shop:1 (the earlier) and shop:2 (the later), both awaiting approval.
async fn two_promotions_awaiting_approval() -> (
    TestApp,
    std::sync::Arc<tokio::sync::Semaphore>,
    Tokens,
    String,
    String,
) {
    let (deployer, gate) = TestDeployer::gated();
    let app = spawn_app_deploying_with(deployer).await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({}),
        json!({"promotion_policy": {"required_approvals": 1}}),
    )
    .await;
    release(&app, "shop-stg", "shop:1", &tokens.ci).await;
    let earlier = promote(&app, "shop-stg", &[], &tokens.ci).await;
    let earlier_id = earlier["id"].as_str().unwrap().to_owned();
    release(&app, "shop-stg", "shop:2", &tokens.ci).await;
    let later = promote(&app, "shop-stg", &[], &tokens.ci).await;
    let later_id = later["id"].as_str().unwrap().to_owned();
    (app, gate, tokens, earlier_id, later_id)
}

#[tokio::test]
async fn a_promotion_awaiting_approval_neither_holds_nor_blocks_a_place_in_the_queue() {
    let (app, gate, tokens, earlier_id, later_id) = two_promotions_awaiting_approval().await;

    // The later one is approved first and runs at once: the earlier one holds no place.
    approve_ok(&app, &later_id, &tokens.alice).await;
    gate.add_permits(1);
    let later = finished(&app, &later_id, &tokens.reader).await;
    assert_eq!(later["status"], "successful");
    assert_eq!(
        promotion(&app, &earlier_id, &tokens.reader).await["status"],
        "awaiting_approval"
    );

    // Approved now, the earlier one joins the queue now, and runs.
    approve_ok(&app, &earlier_id, &tokens.alice).await;
    gate.add_permits(1);
    let earlier = finished(&app, &earlier_id, &tokens.reader).await;
    assert_eq!(earlier["status"], "successful");
    assert_eq!(
        current_image(&app, "shop-prod", &tokens.reader)
            .await
            .as_deref(),
        Some("shop:1")
    );
    let events = app.watch_to_end_as(&earlier_id, &tokens.reader).await;
    assert!(
        events.iter().all(|e| e.name != "target.queued"),
        "nothing was ahead of it when it joined: {events:?}"
    );
}

#[tokio::test]
async fn an_approved_promotion_that_joins_behind_running_work_says_it_is_queued() {
    let (app, gate, tokens, earlier_id, later_id) = two_promotions_awaiting_approval().await;

    // The later one is approved first and holds shop-prod, deploying behind the gate.
    approve_ok(&app, &later_id, &tokens.alice).await;
    app.watch_until_as(&later_id, "target.running", &tokens.reader)
        .await;
    // Approved now, the earlier one joins behind it, and says so before it runs.
    approve_ok(&app, &earlier_id, &tokens.bob).await;
    app.watch_until_as(&earlier_id, "target.queued", &tokens.reader)
        .await;
    gate.add_permits(10);
    let events = app.watch_to_end_as(&earlier_id, &tokens.reader).await;
    let queued: Vec<_> = events
        .iter()
        .filter(|event| event.name == "target.queued")
        .collect();
    assert!(!queued.is_empty(), "{events:#?}");
    assert!(
        queued
            .iter()
            .all(|event| event.waiting_for_promotion_id == later_id),
        "it waits for the promotion that holds the app: {queued:#?}"
    );
    assert_eq!(
        finished(&app, &earlier_id, &tokens.reader).await["status"],
        "successful"
    );
}

#[tokio::test]
async fn policies_are_changed_with_the_right_role_and_refused_by_field() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(&app, &tokens.ops, json!({}), json!({})).await;
    let (_, coupling) = app
        .call(
            Method::GET,
            "/apps/shop-prod/pipeline-couplings",
            None,
            Some(&tokens.reader),
        )
        .await;
    let path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
    let patch = |body: Value, token: &str| {
        let path = path.clone();
        let token = token.to_owned();
        let app = &app;
        async move {
            app.call(Method::PATCH, &path, Some(body), Some(&token))
                .await
        }
    };

    let (status, body) = patch(
        json!({"promotion_policy": {"auto_promote": true}}),
        &tokens.ci,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["promotion_policy"],
        json!({"auto_promote": true, "required_approvals": 0})
    );
    let (status, body) = patch(
        json!({"promotion_policy": {"required_approvals": 2}}),
        &tokens.ci,
    )
    .await;
    assert_eq!(status, 200, "raising needs write: {body}");
    assert_eq!(
        body["promotion_policy"],
        json!({"auto_promote": true, "required_approvals": 2})
    );
    let (status, body) = patch(
        json!({"promotion_policy": {"auto_promote": false}}),
        &tokens.ci,
    )
    .await;
    assert_eq!(
        status, 200,
        "turning auto-promotion off needs write: {body}"
    );
    let (status, body) = patch(
        json!({"promotion_policy": {"required_approvals": 1}}),
        &tokens.ci,
    )
    .await;
    assert_eq!(status, 403, "lowering needs elevated access: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("lowering"),
        "{body}"
    );
    let (status, body) = patch(
        json!({"promotion_policy": {"auto_promote": true}}),
        &tokens.reader,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = patch(
        json!({"promotion_policy": {"required_approvals": 0}}),
        &tokens.ops,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["promotion_policy"],
        json!({"auto_promote": false, "required_approvals": 0})
    );

    for bad in [json!(6), json!(-1), json!(1.5), json!("two")] {
        let (status, body) = patch(
            json!({"promotion_policy": {"required_approvals": bad}}),
            &tokens.ops,
        )
        .await;
        assert_eq!(status, 422, "{bad}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("promotion_policy.required_approvals"),
            "{message}"
        );
        assert!(
            !message.contains("u32") && !message.contains("i64"),
            "{message}"
        );
    }
    let (status, body) = patch(
        json!({"promotion_policy": {"auto_promote": "yes"}}),
        &tokens.ops,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("promotion_policy.auto_promote"),
        "{body}"
    );
    let (status, body) = patch(json!({"promotion_policy": {"approvers": 1}}), &tokens.ops).await;
    assert_eq!(status, 422, "{body}");

    // Nothing is promoted into review, so its couplings take no policy.
    call_ok(
        &app,
        Method::POST,
        "/apps",
        json!({"name": "shop-pr-1"}),
        &tokens.ops,
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            "/pipeline-couplings",
            Some(json!({"app": "shop-pr-1", "pipeline": "shop", "stage": "review", "promotion_policy": {"auto_promote": true}})),
            Some(&tokens.ops),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("promotion_policy"),
        "{body}"
    );

    // gRPC: a policy alone changes the policy and keeps the contexts.
    let updated = app
        .couplings
        .clone()
        .update_coupling(with_token(
            pipelines::proto::UpdateCouplingRequest {
                stage: None,
                verification: None,
                remove_verification: false,
                id: coupling["id"].as_str().unwrap().into(),
                required_status_checks: None,
                promotion_policy: Some(pipelines::proto::PromotionPolicy {
                    auto_promote: None,
                    required_approvals: Some(3),
                }),
            },
            &tokens.ci,
        ))
        .await
        .expect("update over gRPC")
        .into_inner();
    let policy = updated.promotion_policy.expect("a policy");
    assert_eq!(
        (policy.auto_promote, policy.required_approvals),
        (Some(false), Some(3))
    );
    let refused = app
        .couplings
        .clone()
        .update_coupling(with_token(
            pipelines::proto::UpdateCouplingRequest {
                stage: None,
                verification: None,
                remove_verification: false,
                id: coupling["id"].as_str().unwrap().into(),
                required_status_checks: None,
                promotion_policy: Some(pipelines::proto::PromotionPolicy {
                    auto_promote: None,
                    required_approvals: Some(9),
                }),
            },
            &tokens.ops,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("required_approvals"),
        "{}",
        refused.message()
    );
}

/// The create's status-check gate and auto-promotion apply one rule: for each state the
/// required contexts are in, a person's promotion (a dry run) is refused exactly when no
/// auto-promotion happens.
#[tokio::test]
async fn a_person_and_auto_promotion_are_held_to_the_same_status_checks() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({"required_status_checks": {"contexts": ["ci/tests", "ci/lint"]}, "promotion_policy": {"auto_promote": true}}),
        json!({}),
    )
    .await;
    let dry_run = || async {
        let body = json!({
            "pipeline": {"id": "shop"},
            "source": {"app": {"id": "shop-dev"}},
            "dry_run": true,
        });
        app.call(
            Method::POST,
            "/pipeline-promotions",
            Some(body),
            Some(&tokens.alice),
        )
        .await
    };
    let grpc_dry_run = || async {
        let request = CreatePromotionRequest {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            dry_run: true,
            ..Default::default()
        };
        app.promotions
            .clone()
            .create_promotion(with_token(request, &tokens.alice))
            .await
    };
    let built = release(&app, "shop-dev", "shop:1", &tokens.ci).await;
    // Each step turns one context to `success`, which triggers an evaluation, while the
    // other is missing, pending, failed or errored.
    let tests = post_status(&app, "shop-dev", &built, "ci/tests", "success", &tokens.ci).await;
    let tests_path = format!(
        "/apps/shop-dev/releases/{}/statuses/{}",
        built["id"].as_str().unwrap(),
        tests["id"].as_str().unwrap()
    );
    let lint = post_status(&app, "shop-dev", &built, "ci/lint", "pending", &tokens.ci).await;
    let lint_path = format!(
        "/apps/shop-dev/releases/{}/statuses/{}",
        built["id"].as_str().unwrap(),
        lint["id"].as_str().unwrap()
    );
    for (lint_state, step) in [("pending", 0), ("failure", 1), ("error", 2)] {
        call_ok(
            &app,
            Method::PATCH,
            &lint_path,
            json!({"state": lint_state}),
            &tokens.ci,
        )
        .await;
        for state in ["failure", "success"] {
            call_ok(
                &app,
                Method::PATCH,
                &tests_path,
                json!({"state": state}),
                &tokens.ci,
            )
            .await;
        }
        let (status, refusal) = dry_run().await;
        assert_eq!(status, 409, "step {step}: {refusal}");
        assert!(
            refusal.to_string().contains("ci/lint"),
            "step {step}: {refusal}"
        );
        let refused = grpc_dry_run()
            .await
            .expect_err("the gRPC dry run is refused");
        assert_eq!(refused.code(), Code::FailedPrecondition, "step {step}");
        assert!(refused.message().contains("ci/lint"), "step {step}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let all = promotions(&app, &tokens.reader).await;
        assert!(
            all.is_empty(),
            "step {step}: lint {lint_state}, yet auto-promoted: {all:?}"
        );
    }
    call_ok(
        &app,
        Method::PATCH,
        &lint_path,
        json!({"state": "success"}),
        &tokens.ci,
    )
    .await;
    let (status, plan) = dry_run().await;
    assert!((200..300).contains(&status), "{status} {plan}");
    grpc_dry_run().await.expect("the gRPC dry run is accepted");
    let auto = eventually("the auto-promotion", || async {
        promotions(&app, &tokens.reader).await.into_iter().next()
    })
    .await;
    assert_eq!(auto["created_by"], "auto-promotion");
}
