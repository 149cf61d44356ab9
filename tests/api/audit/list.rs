//! Reading the log: pages, filters, refusals of bad filters, and request ids.

use reqwest::Method;
use serde_json::json;

use super::{actions, entries};
use crate::{
    helpers::spawn_app,
    policies::{call_ok, release, shop, tokens},
};

#[tokio::test]
async fn the_log_is_paged_newest_first_and_filtered() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(&app, &tokens.ops, json!({}), json!({})).await;
    call_ok(
        &app,
        Method::POST,
        "/pipelines",
        json!({"name": "other"}),
        &tokens.alice,
    )
    .await;
    release(&app, "shop-dev", "registry.example.com/shop:1", &tokens.ci).await;
    let all = entries(&app, "", &tokens.reader).await;
    assert_eq!(all.len(), 6 + 7 + 2);

    // Pages of two walk the whole log once, newest first.
    let mut walked = Vec::new();
    let mut path = "/audit-events?page_size=2".to_owned();
    loop {
        let (status, page) = app
            .call(Method::GET, &path, None, Some(&tokens.reader))
            .await;
        assert_eq!(status, 200, "{page}");
        let items = page["audit_events"].as_array().unwrap();
        assert!(items.len() <= 2);
        walked.extend(items.iter().cloned());
        match page["next_page_token"].as_str() {
            Some(next) => path = format!("/audit-events?page_size=2&page_token={next}"),
            None => break,
        }
    }
    assert_eq!(walked, all);
    for pair in all.windows(2) {
        assert!(pair[0]["at"].as_str() >= pair[1]["at"].as_str(), "{pair:?}");
    }

    // Each filter, by name or by id.
    let (_, shop_pipeline) = app
        .call(Method::GET, "/pipelines/shop", None, Some(&tokens.reader))
        .await;
    let by_name = entries(&app, "?pipeline=shop", &tokens.reader).await;
    let by_id = entries(
        &app,
        &format!("?pipeline={}", shop_pipeline["id"].as_str().unwrap()),
        &tokens.reader,
    )
    .await;
    assert_eq!(by_name, by_id);
    // Apps join the pipeline when coupled: their creation is not about it.
    assert_eq!(
        actions(&by_name),
        [
            "pipeline.create",
            "coupling.create",
            "coupling.create",
            "coupling.create",
            "release.create"
        ]
    );
    assert!(by_name.iter().all(|e| e["pipeline"]["name"] == "shop"));
    let dev = entries(&app, "?app=shop-dev", &tokens.reader).await;
    assert_eq!(
        actions(&dev),
        ["app.create", "coupling.create", "release.create"]
    );
    let alice = entries(&app, "?actor=alice", &tokens.reader).await;
    assert_eq!(actions(&alice), ["pipeline.create"]);
    let couplings = entries(&app, "?action=coupling", &tokens.reader).await;
    assert_eq!(couplings.len(), 3);
    let exact = entries(&app, "?action=coupling.create&app=shop-stg", &tokens.reader).await;
    assert_eq!(exact.len(), 1);
    let since = all[1]["at"].as_str().unwrap().replace('+', "%2B");
    let recent = entries(&app, &format!("?since={since}"), &tokens.reader).await;
    assert_eq!(recent, all[..2], "entries at or after the time");
    let nobody = entries(
        &app,
        "?actor=nobody&pipeline=no-such-pipeline",
        &tokens.reader,
    )
    .await;
    assert!(nobody.is_empty());

    // Bad filters are refused by name; no filter is ignored.
    for (query, field) in [
        ("action=Promotion.Create", "action"),
        ("action=a.b.c", "action"),
        ("since=yesterday", "since"),
        ("page_token=forged", "page_token"),
        ("colour=red", "colour"),
        ("actor=a&actor=b", "actor"),
        ("actor=a%00b", "actor"),
        ("pipeline=shop%00", "pipeline"),
        ("app=a%0Ab", "app"),
    ] {
        let path = format!("/audit-events?{query}");
        let (status, error) = app
            .call(Method::GET, &path, None, Some(&tokens.reader))
            .await;
        assert_eq!(status, 422, "{query}: {error}");
        assert_eq!(error["code"], 3);
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{query}: {error}"
        );
    }
    let (status, _) = app.call(Method::GET, "/audit-events", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn an_entry_carries_the_request_id_the_client_sent() {
    let app = spawn_app().await;
    let token = app.create_token("ops", "admin").await;
    let response = app
        .rest(Method::POST, "/pipelines")
        .bearer_auth(&token)
        .header("x-request-id", "deploy-7f3a-audit")
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created = entries(&app, "?action=pipeline.create", &token).await;
    assert_eq!(created[0]["request_id"], "deploy-7f3a-audit");
    // Without one, the id the server made and answered with.
    let response = app
        .rest(Method::POST, "/apps")
        .bearer_auth(&token)
        .json(&json!({"name": "shop-dev"}))
        .send()
        .await
        .unwrap();
    let answered = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let created = entries(&app, "?action=app.create", &token).await;
    assert_eq!(created[0]["request_id"], answered.as_str());
    assert_eq!(created[0]["resource"]["name"], "shop-dev");
}
