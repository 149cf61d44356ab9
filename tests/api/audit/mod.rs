//! The audit log: an entry for every change, written with the change, over REST with real
//! tokens (here), refused changes and break-glass (`gates`), paged and filtered (`list`),
//! over gRPC (`grpc`), and for what the engine and retention do (`engine`).

mod engine;
mod gates;
mod grpc;
mod list;

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, TestApp},
    policies::{call_ok, post_status, release, shop, tokens, Tokens},
};

/// Every entry matching `query` (`?` and all), newest first, read page by page.
pub(crate) async fn entries(app: &TestApp, query: &str, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut token_param = String::new();
    loop {
        let separator = if query.is_empty() { "?" } else { "&" };
        let path = format!("/audit-events{query}{separator}page_size=1000{token_param}");
        let (status, page) = app.call(Method::GET, &path, None, Some(token)).await;
        assert_eq!(status, 200, "{path}: {page}");
        all.extend(page["audit_events"].as_array().unwrap().iter().cloned());
        match page["next_page_token"].as_str() {
            Some(next) => token_param = format!("&page_token={next}"),
            None => return all,
        }
    }
}

/// The actions of `entries`, oldest first.
pub(crate) fn actions(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .rev()
        .map(|entry| entry["action"].as_str().unwrap().to_owned())
        .collect()
}

/// The one entry of `action`.
pub(crate) fn only<'a>(entries: &'a [Value], action: &str) -> &'a Value {
    let found: Vec<&Value> = entries.iter().filter(|e| e["action"] == action).collect();
    assert_eq!(found.len(), 1, "one {action}: {found:?}");
    found[0]
}

async fn promote(app: &TestApp, body: Value, token: &str) -> (u16, Value) {
    app.call(
        Method::POST,
        "/pipeline-promotions",
        Some(body),
        Some(token),
    )
    .await
}

fn from_staging() -> Value {
    json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-stg"}}})
}

/// `shop` where production needs one approval, with a release on every app.
async fn shop_needing_approval(app: &TestApp) -> Tokens {
    let tokens = tokens(app).await;
    shop(
        app,
        &tokens.ops,
        json!({}),
        json!({"promotion_policy": {"required_approvals": 1}}),
    )
    .await;
    for name in ["shop-dev", "shop-stg", "shop-prod"] {
        release(app, name, "registry.example.com/shop:1", &tokens.ci).await;
    }
    tokens
}

#[tokio::test]
async fn every_kind_of_change_is_recorded_with_who_made_it_and_never_a_secret() {
    let app = spawn_app().await;
    let tokens = shop_needing_approval(&app).await;
    let secret_value = "hunter2-config-secret-value";
    call_ok(
        &app,
        Method::PATCH,
        "/apps/shop-stg/config-vars",
        json!({"DATABASE_PASSWORD": secret_value, "LOG_LEVEL": "debug"}),
        &tokens.alice,
    )
    .await;
    call_ok(
        &app,
        Method::PATCH,
        "/apps/shop-stg/config-vars",
        json!({"LOG_LEVEL": null, "DATABASE_PASSWORD": "rotated-secret-value"}),
        &tokens.alice,
    )
    .await;
    let built = release(&app, "shop-dev", "registry.example.com/shop:2", &tokens.ci).await;
    let status = post_status(&app, "shop-dev", &built, "ci/tests", "pending", &tokens.ci).await;
    let status_path = format!(
        "/apps/shop-dev/releases/{}/statuses/{}",
        built["id"].as_str().unwrap(),
        status["id"].as_str().unwrap()
    );
    call_ok(
        &app,
        Method::PATCH,
        &status_path,
        json!({"state": "success"}),
        &tokens.ci,
    )
    .await;
    let (_, staging) = app
        .call(
            Method::GET,
            "/apps/shop-stg/pipeline-couplings",
            None,
            Some(&tokens.reader),
        )
        .await;
    let coupling_path = format!("/pipeline-couplings/{}", staging["id"].as_str().unwrap());
    call_ok(
        &app,
        Method::PATCH,
        &coupling_path,
        json!({"required_status_checks": {"contexts": ["ci/tests"]}, "promotion_policy": {"auto_promote": false, "required_approvals": 2}}),
        &tokens.alice,
    )
    .await;
    call_ok(
        &app,
        Method::PATCH,
        &coupling_path,
        json!({"required_status_checks": {"contexts": []}, "promotion_policy": {"required_approvals": 0}}),
        &tokens.ops,
    )
    .await;

    // Three promotions into production: one approved, one rejected, one canceled.
    let (_, approved) = promote(&app, from_staging(), &tokens.alice).await;
    let approved_id = approved["id"].as_str().unwrap();
    call_ok(
        &app,
        Method::POST,
        &format!("/pipeline-promotions/{approved_id}/approvals"),
        json!({"comment": "looks good"}),
        &tokens.bob,
    )
    .await;
    let (_, rejected) = promote(&app, from_staging(), &tokens.alice).await;
    call_ok(
        &app,
        Method::POST,
        &format!(
            "/pipeline-promotions/{}/rejections",
            rejected["id"].as_str().unwrap()
        ),
        json!({"comment": "not during the sale"}),
        &tokens.bob,
    )
    .await;
    let (_, canceled) = promote(&app, from_staging(), &tokens.alice).await;
    call_ok(
        &app,
        Method::POST,
        &format!(
            "/pipeline-promotions/{}/cancel",
            canceled["id"].as_str().unwrap()
        ),
        json!({}),
        &tokens.alice,
    )
    .await;
    let (_, frozen) = app
        .call(
            Method::POST,
            "/pipelines/shop/freezes",
            Some(json!({"stages": ["production"], "ends_at": "2099-01-01T00:00:00Z", "reason": "sale weekend"})),
            Some(&tokens.alice),
        )
        .await;
    call_ok(
        &app,
        Method::DELETE,
        &format!("/pipelines/shop/freezes/{}", frozen["id"].as_str().unwrap()),
        json!({}),
        &tokens.ops,
    )
    .await;
    call_ok(
        &app,
        Method::POST,
        "/apps/shop-dev/releases",
        json!({"release": "v1"}),
        &tokens.ci,
    )
    .await;
    call_ok(
        &app,
        Method::POST,
        "/apps",
        json!({"name": "gone-app"}),
        &tokens.ci,
    )
    .await;
    call_ok(
        &app,
        Method::DELETE,
        "/apps/gone-app",
        json!({}),
        &tokens.ops,
    )
    .await;
    call_ok(&app, Method::DELETE, &coupling_path, json!({}), &tokens.ops).await;
    call_ok(
        &app,
        Method::DELETE,
        "/pipelines/shop",
        json!({}),
        &tokens.ops,
    )
    .await;

    let all = entries(&app, "", &tokens.reader).await;
    let mut expected: Vec<&str> = vec!["token.create"; 6];
    expected.push("pipeline.create");
    expected.extend(["app.create", "coupling.create"].repeat(3));
    expected.extend(["release.create"; 3]);
    expected.extend([
        "config_vars.update",
        "config_vars.update",
        "release.create",
        "status.create",
        "status.update",
        "coupling.update",
        "coupling.update",
        "promotion.create",
        "approval.grant",
        "promotion.create",
        "approval.reject",
        "promotion.create",
        "promotion.cancel",
        "freeze.create",
        "freeze.delete",
        "release.rollback",
        "app.create",
        "app.delete",
        "coupling.delete",
        "pipeline.delete",
    ]);
    assert_eq!(actions(&all), expected);

    // Who, with which role; every request's entry carries its request id.
    for entry in &all {
        let actor = entry["actor"].as_str().unwrap();
        if entry["action"] == "token.create" {
            assert_eq!(
                (actor, entry["role"].as_str()),
                ("operator", Some("operator"))
            );
            assert!(entry["request_id"].is_null(), "{entry}");
            continue;
        }
        let role = match actor {
            "ops" => "admin",
            "reader" => "read",
            _ => "write",
        };
        assert_eq!(entry["role"], role, "{entry}");
        assert!(
            entry["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{entry}"
        );
    }
    let approval = only(&all, "approval.grant");
    assert_eq!(approval["actor"], "bob");
    assert_eq!(approval["resource"]["kind"], "promotion");
    assert_eq!(approval["resource"]["id"], approved_id);
    assert_eq!(approval["changes"]["comment"], "looks good");
    assert_eq!(approval["pipeline"]["name"], "shop");

    // Config vars: key names only.
    let vars: Vec<&Value> = all
        .iter()
        .filter(|e| e["action"] == "config_vars.update")
        .collect();
    assert_eq!(
        vars[1]["changes"]["added"],
        json!(["DATABASE_PASSWORD", "LOG_LEVEL"])
    );
    assert_eq!(vars[0]["changes"]["changed"], json!(["DATABASE_PASSWORD"]));
    assert_eq!(vars[0]["changes"]["removed"], json!(["LOG_LEVEL"]));
    assert_eq!(vars[0]["app"]["name"], "shop-stg");
    assert_eq!(
        vars[0]["pipeline"]["name"], "shop",
        "an app's entry names its pipeline"
    );

    // Policy and checks: before and after, only what changed.
    let updates: Vec<&Value> = all
        .iter()
        .filter(|e| e["action"] == "coupling.update")
        .collect();
    assert_eq!(
        updates[1]["changes"],
        json!({
            "required_status_checks": {"before": [], "after": ["ci/tests"]},
            "promotion_policy": {
                "before": {"auto_promote": false, "required_approvals": 0},
                "after": {"auto_promote": false, "required_approvals": 2}
            }
        })
    );
    assert_eq!(updates[0]["actor"], "ops");
    let freeze = only(&all, "freeze.create");
    assert_eq!(freeze["changes"]["freeze"]["before"], Value::Null);
    assert_eq!(
        freeze["changes"]["freeze"]["after"]["reason"],
        "sale weekend"
    );
    assert_eq!(
        only(&all, "freeze.delete")["changes"]["freeze"]["before"]["stages"],
        json!(["production"])
    );
    let status_update = only(&all, "status.update");
    assert_eq!(
        status_update["changes"]["state"],
        json!({"before": "pending", "after": "success"})
    );
    assert_eq!(only(&all, "release.rollback")["changes"]["to_version"], 1);

    // The whole answer holds no config var value and no token.
    let text = app
        .rest(Method::GET, "/audit-events?page_size=1000")
        .bearer_auth(&tokens.reader)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [
        secret_value,
        "rotated-secret-value",
        &tokens.ops,
        &tokens.ci,
        &tokens.alice,
        &tokens.bob,
        &tokens.carol,
        &tokens.reader,
    ] {
        assert!(!text.contains(secret), "the log leaks {secret}");
    }
}
