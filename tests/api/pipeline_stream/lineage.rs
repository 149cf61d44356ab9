//! Release lineage: every release of one image, across apps, newest first.

use reqwest::Method;
use serde_json::{json, Value};

use super::shop;
use crate::helpers::spawn_app;

#[tokio::test]
async fn lineage_lists_every_app_that_ran_an_image_and_which_runs_it_now() {
    let app = spawn_app().await;
    shop(&app).await;
    let first = app.create_release("shop-dev", "registry/shop:1").await;
    app.call(
        Method::POST,
        &format!("/apps/shop-dev/releases/{}/statuses", first.id),
        Some(json!({"context": "ci/test", "name": "CI", "state": "success"})),
        None,
    )
    .await;
    let (status, promotion) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{promotion}");
    app.finished_promotion(promotion["id"].as_str().unwrap())
        .await;
    app.create_release("shop-dev", "registry/shop:2").await;

    let (status, lineage) = app
        .call(Method::GET, "/releases?image=registry/shop:1", None, None)
        .await;
    assert_eq!(status, 200, "{lineage}");
    let rows: Vec<(&str, bool)> = lineage
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["app"]["name"].as_str().unwrap(),
                r["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("shop-stg", true), ("shop-dev", false)],
        "newest first"
    );
    assert_eq!(lineage[0]["promoted_from"]["app"]["name"], "shop-dev");
    assert_eq!(
        lineage[0]["promoted_from"]["release"]["id"],
        first.id.as_str()
    );
    assert_eq!(
        lineage[0]["promoted_from"]["pipeline_promotion"]["id"],
        promotion["id"]
    );
    assert_eq!(lineage[1]["promoted_from"], Value::Null);
    assert_eq!(lineage[1]["status"], "succeeded");

    let (_, none) = app
        .call(Method::GET, "/releases?image=registry/shop", None, None)
        .await;
    assert_eq!(none, json!([]), "the reference must match exactly");

    let mut releases = app.releases.clone();
    let found = releases
        .find_releases(pipelines::proto::FindReleasesRequest {
            image: "registry/shop:1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let rows: Vec<(String, bool)> = found
        .releases
        .iter()
        .map(|r| {
            (
                r.release
                    .as_ref()
                    .unwrap()
                    .app
                    .as_ref()
                    .unwrap()
                    .name
                    .clone(),
                r.current,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("shop-stg".to_owned(), true),
            ("shop-dev".to_owned(), false)
        ]
    );
}

#[tokio::test]
async fn lineage_refuses_a_missing_or_malformed_image_by_name() {
    let app = spawn_app().await;
    for path in ["/releases", "/releases?image=", "/releases?image=%01x"] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("image"),
            "{body}"
        );
    }
    let long = "x".repeat(1001);
    let (status, _) = app
        .call(Method::GET, &format!("/releases?image={long}"), None, None)
        .await;
    assert_eq!(status, 422);
    let (status, body) = app
        .call(Method::GET, "/releases?image=a&app=b", None, None)
        .await;
    assert_eq!(status, 422, "{body}");
    let error = app
        .releases
        .clone()
        .find_releases(pipelines::proto::FindReleasesRequest { image: " ".into() })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
}
