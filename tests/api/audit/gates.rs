//! What a refused change leaves (nothing), and what a break-glass promotion records.

use reqwest::Method;
use serde_json::json;

use super::{actions, entries, from_staging, only, promote, shop_needing_approval};
use crate::{
    helpers::spawn_app,
    policies::{call_ok, release, shop, tokens},
};

#[tokio::test]
async fn a_refused_or_rolled_back_change_leaves_no_entry() {
    let app = spawn_app().await;
    let tokens = shop_needing_approval(&app).await;
    let before = entries(&app, "", &tokens.reader).await;

    let refused = [
        // Too low a role.
        (
            Method::POST,
            "/pipelines",
            json!({"name": "other"}),
            &tokens.reader,
            403,
        ),
        // A bad name, a taken one.
        (
            Method::POST,
            "/pipelines",
            json!({"name": "X"}),
            &tokens.ops,
            422,
        ),
        (
            Method::POST,
            "/pipelines",
            json!({"name": "shop"}),
            &tokens.ops,
            409,
        ),
        // Refused after the write began: the app is coupled already.
        (
            Method::POST,
            "/pipeline-couplings",
            json!({"app": "shop-dev", "pipeline": "shop", "stage": "staging"}),
            &tokens.ops,
            409,
        ),
        // A bad config var key, a bad release.
        (
            Method::PATCH,
            "/apps/shop-dev/config-vars",
            json!({"1BAD": "x"}),
            &tokens.ci,
            422,
        ),
        (
            Method::POST,
            "/apps/shop-dev/releases",
            json!({"image": ""}),
            &tokens.ci,
            422,
        ),
        (
            Method::POST,
            "/apps/shop-dev/releases",
            json!({"release": "v99"}),
            &tokens.ci,
            404,
        ),
        // A target at the wrong stage, and a freeze with no reason.
        (
            Method::POST,
            "/pipeline-promotions",
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}, "safe": true, "dry_run": false, "targets": [{"app": {"id": "shop-prod"}}]}),
            &tokens.ci,
            422,
        ),
        (
            Method::POST,
            "/pipelines/shop/freezes",
            json!({"stages": ["production"], "ends_at": "2099-01-01T00:00:00Z", "reason": ""}),
            &tokens.ci,
            422,
        ),
        (
            Method::DELETE,
            "/pipelines/shop",
            json!({}),
            &tokens.ci,
            403,
        ),
    ];
    for (method, path, body, token, expected) in refused {
        let (status, answer) = app.call(method, path, Some(body), Some(token)).await;
        assert_eq!(status, expected, "{path}: {answer}");
    }
    // Config vars set to what they already are change nothing.
    call_ok(
        &app,
        Method::PATCH,
        "/apps/shop-dev/config-vars",
        json!({"A": "1"}),
        &tokens.ci,
    )
    .await;
    call_ok(
        &app,
        Method::PATCH,
        "/apps/shop-dev/config-vars",
        json!({"A": "1"}),
        &tokens.ci,
    )
    .await;
    // A dry run writes nothing either.
    let mut dry_run = from_staging();
    dry_run["dry_run"] = json!(true);
    let (status, plan) = promote(&app, dry_run, &tokens.ci).await;
    assert_eq!(status, 200, "{plan}");

    let after = entries(&app, "", &tokens.reader).await;
    assert_eq!(
        actions(&after)[before.len()..],
        ["config_vars.update".to_owned()],
        "only the one real change is recorded"
    );
}

#[tokio::test]
async fn a_break_glass_promotion_records_what_it_overrode() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({"required_status_checks": {"contexts": ["ci/tests"]}}),
        json!({}),
    )
    .await;
    release(&app, "shop-dev", "registry.example.com/shop:1", &tokens.ci).await;
    call_ok(
        &app,
        Method::POST,
        "/pipelines/shop/freezes",
        json!({"stages": ["staging"], "ends_at": "2099-01-01T00:00:00Z", "reason": "incident 42"}),
        &tokens.alice,
    )
    .await;
    let body =
        json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}, "safe": false});
    let (status, made) = promote(&app, body, &tokens.ops).await;
    assert_eq!(status, 201, "{made}");

    let all = entries(&app, "?action=promotion", &tokens.reader).await;
    assert_eq!(actions(&all), ["promotion.create", "promotion.override"]);
    let created = only(&all, "promotion.create");
    assert_eq!(created["actor"], "ops");
    assert_eq!(created["resource"]["id"], made["id"]);
    assert_eq!(created["changes"]["targets"], json!(["shop-stg"]));
    let override_entry = only(&all, "promotion.override");
    assert_eq!(override_entry["role"], "admin");
    let checks = &override_entry["changes"]["overridden_checks"];
    assert_eq!(checks[0]["context"], "ci/tests", "{override_entry}");
    let freezes = &override_entry["changes"]["overridden_freezes"];
    assert_eq!(freezes[0]["reason"], "incident 42", "{override_entry}");
    assert_eq!(override_entry["request_id"], created["request_id"]);
}
