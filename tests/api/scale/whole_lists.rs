//! Whole lists that Akkeris clients read stay whole, and are sent as they are read and
//! encoded once they outgrow one batch (500 releases, 256 couplings). What arrives must be
//! exactly the list, at every batch boundary.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{spawn_app, TestApp};

/// The versions `GET path` answers, in order, and whether it came with a length.
async fn versions(app: &TestApp, path: &str) -> (Vec<i64>, bool) {
    let response = app.rest(Method::GET, path).send().await.expect("GET");
    assert_eq!(response.status(), 200, "{path}");
    let sized = response.headers().contains_key("content-length");
    let body: Value = response.json().await.expect("a whole JSON array");
    let versions = body
        .as_array()
        .expect("array")
        .iter()
        .map(|release| release["version"].as_i64().expect("version"))
        .collect();
    (versions, sized)
}

#[tokio::test]
async fn whole_release_lists_are_exact_at_every_batch_boundary() {
    let app = spawn_app().await;
    app.create_app("web").await;
    let mut made = 0;
    for count in [499_i64, 500, 501, 1000, 1001] {
        while made < count {
            made += 1;
            app.create_release("web", &format!("registry.example/web:{made}"))
                .await;
        }
        let (all, sized) = versions(&app, "/apps/web/releases").await;
        assert_eq!(all, (1..=count).collect::<Vec<_>>(), "{count} releases");
        assert_eq!(sized, count <= 500, "one batch has a length: {count}");
        for newest in [1, 499, 500, 501, count, count + 1] {
            let (some, _) = versions(&app, &format!("/apps/web/releases?page_size={newest}")).await;
            let first = (count - newest + 1).max(1);
            assert_eq!(
                some,
                (first..=count).collect::<Vec<_>>(),
                "the {newest} newest of {count}"
            );
        }
    }
    let (status, body) = app
        .call(Method::GET, "/apps/no-such-app/releases", None, None)
        .await;
    assert_eq!(
        status, 404,
        "an unknown app is refused before anything is sent: {body}"
    );
}

#[tokio::test]
async fn a_whole_coupling_list_longer_than_a_batch_arrives_whole() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    for n in 0..300 {
        let name = format!("shop-{n:03}");
        app.create_app(&name).await;
        app.couple(&name, "shop", pipelines::proto::Stage::Development, &[])
            .await;
    }
    let response = app
        .rest(Method::GET, "/pipeline-couplings")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert!(
        !response.headers().contains_key("content-length"),
        "sent as it is encoded"
    );
    let whole: Value = response.json().await.expect("a whole JSON array");
    let names: Vec<&str> = whole
        .as_array()
        .expect("array")
        .iter()
        .map(|coupling| coupling["app"]["name"].as_str().expect("name"))
        .collect();
    let expected: Vec<String> = (0..300).map(|n| format!("shop-{n:03}")).collect();
    assert_eq!(names, expected);
    let (status, page) = app
        .call(Method::GET, "/pipeline-couplings?page_size=300", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page, whole, "the same couplings as one page");
}
