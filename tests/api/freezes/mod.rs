//! Freezes: stopping the line for some stages, over REST with real tokens (here), over
//! gRPC (`grpc`), and what the engine does with the targets a freeze holds (`engine`).

mod cli;
mod engine;
mod grpc;

use chrono::{DateTime, Duration as TimeDelta, SubsecRound, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, TestApp},
    policies::{call_ok, release, shop, tokens, Tokens},
};

/// An RFC 3339 time `seconds` from now, in whole milliseconds.
fn in_seconds(seconds: i64) -> String {
    (Utc::now() + TimeDelta::seconds(seconds))
        .trunc_subsecs(3)
        .to_rfc3339()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

async fn freeze(app: &TestApp, body: Value, token: &str) -> (u16, Value) {
    app.call(
        Method::POST,
        "/pipelines/shop/freezes",
        Some(body),
        Some(token),
    )
    .await
}

/// `shop` with no policies, and a token of each kind.
async fn shop_with_tokens(app: &TestApp) -> Tokens {
    let tokens = tokens(app).await;
    shop(app, &tokens.ops, json!({}), json!({})).await;
    tokens
}

async fn coupling_of(app: &TestApp, name: &str, token: &str) -> Value {
    let path = format!("/apps/{name}/pipeline-couplings");
    let (status, coupling) = app.call(Method::GET, &path, None, Some(token)).await;
    assert_eq!(status, 200, "{coupling}");
    coupling
}

#[tokio::test]
async fn a_freeze_is_made_listed_shown_on_couplings_and_lifted() {
    let app = spawn_app().await;
    let tokens = shop_with_tokens(&app).await;

    // Anyone who may promote may stop the line.
    let ends_at = in_seconds(3600);
    let (status, made) = freeze(
        &app,
        json!({"stages": ["production", "staging"], "ends_at": ends_at, "reason": "sale weekend"}),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["stages"], json!(["staging", "production"]));
    assert_eq!(made["reason"], "sale weekend");
    assert_eq!(made["created_by"], "alice");
    assert_eq!(made["active"], true);
    assert_eq!(made["pipeline"]["name"], "shop");
    assert_eq!(time(&made["current"]["ends_at"]), time(&json!(ends_at)));
    assert!(
        made["next"].is_null(),
        "a one-off freeze that started has no next: {made}"
    );
    assert!(made.get("freeze_start").is_none(), "{made}");
    let freeze_id = made["id"].as_str().unwrap().to_owned();

    // A recurring freeze in GitLab's shape: Saturdays in Berlin, not in effect now unless
    // today is one.
    let (status, weekly) = freeze(
        &app,
        json!({"stages": ["development"], "freeze_start": "0 0 * * 6", "freeze_end": "0 0 * * 0",
               "cron_timezone": "Europe/Berlin", "reason": "weekend"}),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 201, "{weekly}");
    assert_eq!(weekly["cron_timezone"], "Europe/Berlin");
    assert_eq!(weekly["freeze_start"], "0 0 * * 6");
    assert!(weekly.get("ends_at").is_none(), "{weekly}");
    let next = &weekly["next"];
    assert!(time(&next["starts_at"]) > Utc::now(), "{weekly}");
    assert!(
        time(&next["ends_at"]) - time(&next["starts_at"]) >= TimeDelta::hours(23),
        "{weekly}"
    );

    let (status, listed) = app
        .call(
            Method::GET,
            "/pipelines/shop/freezes",
            None,
            Some(&tokens.reader),
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [freeze_id.as_str(), weekly["id"].as_str().unwrap()]);

    // Couplings at a frozen stage say so; the others say null.
    let prod = coupling_of(&app, "shop-prod", &tokens.reader).await;
    assert_eq!(prod["frozen"]["reason"], "sale weekend", "{prod}");
    assert_eq!(prod["frozen"]["freeze_id"], freeze_id.as_str());
    assert_eq!(time(&prod["frozen"]["until"]), time(&json!(ends_at)));
    let stg = coupling_of(&app, "shop-stg", &tokens.reader).await;
    assert_eq!(stg["frozen"]["freeze_id"], freeze_id.as_str());
    let (_, all) = app
        .call(
            Method::GET,
            "/pipelines/shop/pipeline-couplings",
            None,
            Some(&tokens.reader),
        )
        .await;
    let frozen_apps: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|coupling| !coupling["frozen"].is_null())
        .map(|coupling| coupling["app"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(frozen_apps.len(), 2, "{all}");

    // Only an admin restarts the line early.
    let path = format!("/pipelines/shop/freezes/{freeze_id}");
    let (status, refused) = app
        .call(Method::DELETE, &path, None, Some(&tokens.alice))
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], 7);
    let (status, lifted) = app
        .call(Method::DELETE, &path, None, Some(&tokens.ops))
        .await;
    assert_eq!(status, 200, "{lifted}");
    assert_eq!(lifted["id"], freeze_id.as_str());
    assert_eq!(lifted["active"], false);
    assert_eq!(lifted["lifted_by"], "ops");
    let (status, again) = app
        .call(Method::DELETE, &path, None, Some(&tokens.ops))
        .await;
    assert_eq!(status, 404, "{again}");

    let prod = coupling_of(&app, "shop-prod", &tokens.reader).await;
    assert!(prod["frozen"].is_null(), "{prod}");
    let (_, listed) = app
        .call(
            Method::GET,
            "/pipelines/shop/freezes",
            None,
            Some(&tokens.reader),
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn who_may_freeze_and_what_is_not_found() {
    let app = spawn_app().await;
    let tokens = shop_with_tokens(&app).await;
    let body = json!({"stages": ["production"], "ends_at": in_seconds(60), "reason": "incident"});
    let (status, refused) = freeze(&app, body.clone(), &tokens.reader).await;
    assert_eq!(status, 403, "{refused}");
    let (status, _) = app
        .call(
            Method::POST,
            "/pipelines/shop/freezes",
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(status, 401);
    let (status, missing) = app
        .call(
            Method::POST,
            "/pipelines/no-such-pipeline/freezes",
            Some(body),
            Some(&tokens.alice),
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    for path in [
        "/pipelines/shop/freezes/6d0b6f8e-93f5-4bb1-9d7e-6d1c5b0b3a11",
        "/pipelines/shop/freezes/not-a-uuid",
        "/pipelines/no-such-pipeline/freezes/6d0b6f8e-93f5-4bb1-9d7e-6d1c5b0b3a11",
    ] {
        let (status, answer) = app
            .call(Method::DELETE, path, None, Some(&tokens.ops))
            .await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    let (status, unknown) = app
        .call(
            Method::GET,
            "/pipelines/shop/freezes?stage=production",
            None,
            Some(&tokens.reader),
        )
        .await;
    assert_eq!(
        status, 422,
        "an unknown query parameter is refused: {unknown}"
    );
}

#[tokio::test]
async fn a_bad_freeze_is_refused_naming_its_field_and_nothing_is_made() {
    let app = spawn_app().await;
    let tokens = shop_with_tokens(&app).await;
    let later = in_seconds(600);
    let cases = [
        (
            json!({"stages": ["production"], "ends_at": later, "reason": ""}),
            "reason",
        ),
        (
            json!({"stages": ["production"], "ends_at": later}),
            "reason",
        ),
        (
            json!({"stages": ["production"], "ends_at": later, "reason": "x".repeat(201)}),
            "reason",
        ),
        (
            json!({"stages": [], "ends_at": later, "reason": "r"}),
            "stages",
        ),
        (json!({"ends_at": later, "reason": "r"}), "stages"),
        (
            json!({"stages": ["qa"], "ends_at": later, "reason": "r"}),
            "stages[0]",
        ),
        (
            json!({"stages": ["staging", "staging"], "ends_at": later, "reason": "r"}),
            "stages[1]",
        ),
        (json!({"stages": ["production"], "reason": "r"}), "ends_at"),
        (
            json!({"stages": ["production"], "starts_at": in_seconds(900), "ends_at": later, "reason": "r"}),
            "ends_at",
        ),
        (
            json!({"stages": ["production"], "ends_at": in_seconds(-60), "reason": "r"}),
            "ends_at",
        ),
        (
            json!({"stages": ["production"], "ends_at": "next tuesday", "reason": "r"}),
            "ends_at",
        ),
        (
            json!({"stages": ["production"], "starts_at": "2026-13-01T00:00:00Z", "ends_at": later, "reason": "r"}),
            "starts_at",
        ),
        (
            json!({"stages": ["production"], "freeze_start": "0 18 * * 5", "freeze_end": "0 8 * * 1", "cron_timezone": "Mars/Olympus", "reason": "r"}),
            "cron_timezone",
        ),
        (
            json!({"stages": ["production"], "freeze_start": "0 18 * *", "freeze_end": "0 8 * * 1", "reason": "r"}),
            "freeze_start",
        ),
        (
            json!({"stages": ["production"], "freeze_start": "0 18 * * 5", "freeze_end": "0 24 * * 1", "reason": "r"}),
            "freeze_end",
        ),
        (
            json!({"stages": ["production"], "freeze_start": "0 18 * * 5", "reason": "r"}),
            "freeze_end",
        ),
        (
            json!({"stages": ["production"], "freeze_start": "0 18 * * 5", "freeze_end": "0 8 * * 1", "ends_at": later, "reason": "r"}),
            "ends_at",
        ),
        (
            json!({"stages": "production", "ends_at": later, "reason": "r"}),
            "stages",
        ),
        (
            json!({"stages": ["production"], "ends_at": later, "reason": 5}),
            "reason",
        ),
    ];
    for (body, field) in cases {
        let (status, refused) = freeze(&app, body.clone(), &tokens.alice).await;
        assert_eq!(status, 422, "{body}: {refused}");
        assert_eq!(refused["code"], 3, "{body}: {refused}");
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: '{message}' names {field}");
    }
    let (status, listed) = app
        .call(
            Method::GET,
            "/pipelines/shop/freezes",
            None,
            Some(&tokens.reader),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed, json!([]), "nothing was made");
}

#[tokio::test]
async fn a_promotion_into_a_frozen_stage_is_refused_unless_an_admin_breaks_glass() {
    let app = spawn_app().await;
    let tokens = shop_with_tokens(&app).await;
    release(&app, "shop-stg", "shop:1", &tokens.ci).await;
    release(&app, "shop-dev", "shop:1", &tokens.ci).await;
    let (status, made) = freeze(
        &app,
        json!({"stages": ["production"], "ends_at": in_seconds(3600), "reason": "sale weekend"}),
        &tokens.alice,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let freeze_id = made["id"].as_str().unwrap();

    let into_production =
        json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-stg"}}});
    for body in [
        into_production.clone(),
        json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-stg"}}, "dry_run": true}),
        json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-stg"}}, "safe": true}),
    ] {
        let (status, refused) = app
            .call(
                Method::POST,
                "/pipeline-promotions",
                Some(body.clone()),
                Some(&tokens.alice),
            )
            .await;
        assert_eq!(status, 409, "{body}: {refused}");
        assert_eq!(refused["code"], 9, "FAILED_PRECONDITION: {refused}");
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains("frozen"), "{message}");
        assert!(
            message.contains("sale weekend"),
            "quotes the reason: {message}"
        );
        let detail = &refused["details"][0];
        assert_eq!(
            detail["@type"], "type.googleapis.com/pipelines.v1.Frozen",
            "{refused}"
        );
        assert_eq!(detail["stage"], "production");
        assert_eq!(detail["reason"], "sale weekend");
        assert_eq!(detail["freeze_id"], freeze_id);
        let until = detail["until"].as_str().unwrap();
        assert!(message.contains(until), "says until when: {message}");
    }

    // safe: false from a write token is no way through.
    let mut unsafe_promotion = into_production.clone();
    unsafe_promotion["safe"] = json!(false);
    let (status, refused) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(unsafe_promotion.clone()),
            Some(&tokens.alice),
        )
        .await;
    assert_eq!(status, 403, "{refused}");

    // Other stages still flow.
    let (status, staging) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})),
            Some(&tokens.alice),
        )
        .await;
    assert_eq!(status, 201, "{staging}");

    // An admin's dry run says which freeze it would break glass through.
    let mut unsafe_dry_run = unsafe_promotion.clone();
    unsafe_dry_run["dry_run"] = json!(true);
    let plan = call_ok(
        &app,
        Method::POST,
        "/pipeline-promotions",
        unsafe_dry_run,
        &tokens.ops,
    )
    .await;
    assert_eq!(plan["dry_run"], true, "{plan}");
    assert_eq!(
        plan["overridden_freezes"][0]["freeze_id"], freeze_id,
        "{plan}"
    );
    assert_eq!(plan["overridden_freezes"][0]["reason"], "sale weekend");

    // An admin breaks glass: recorded, and the target starts at once.
    let broke = call_ok(
        &app,
        Method::POST,
        "/pipeline-promotions",
        unsafe_promotion,
        &tokens.ops,
    )
    .await;
    assert_eq!(
        broke["overridden_freezes"][0]["freeze_id"], freeze_id,
        "{broke}"
    );
    assert_eq!(broke["overridden_freezes"][0]["stage"], "production");
    assert_eq!(broke["overridden_freezes"][0]["reason"], "sale weekend");
    let done = crate::policies::finished(&app, broke["id"].as_str().unwrap(), &tokens.reader).await;
    assert_eq!(done["status"], "successful", "{done}");
    assert_eq!(
        crate::policies::current_image(&app, "shop-prod", &tokens.reader)
            .await
            .as_deref(),
        Some("shop:1")
    );
    let events = app
        .watch_to_end_as(broke["id"].as_str().unwrap(), &tokens.reader)
        .await;
    assert!(
        events[0].message.contains("overridden by 'ops'"),
        "the creation says who broke glass: {}",
        events[0].message
    );
    assert!(
        events
            .iter()
            .all(|event| event.waiting_for_freeze.is_none()),
        "an exempt target never waits for the freeze"
    );
}
