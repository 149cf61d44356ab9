//! Release versions never collide: any number of concurrent creates, rollbacks and
//! promotion targets on one app all succeed, and the app's versions stay contiguous.

use std::time::Duration;

use futures::future::join_all;
use pipelines::proto::Stage;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

const FIRST_BURST: usize = 1000;
const CREATES: usize = 100;
const ROLLBACKS: usize = 20;
const PROMOTIONS: usize = 10;

async fn post(app: &TestApp, path: String, body: Value) -> (u16, Value) {
    app.call(Method::POST, &path, Some(body), None).await
}

/// Every release of `app`, oldest first, as the whole REST list gives them.
async fn versions_of(app: &TestApp, name: &str) -> Vec<(i64, String)> {
    let (status, releases) = app
        .call(Method::GET, &format!("/apps/{name}/releases"), None, None)
        .await;
    assert_eq!(status, 200, "{releases}");
    releases
        .as_array()
        .unwrap()
        .iter()
        .map(|release| {
            (
                release["version"].as_i64().unwrap(),
                release["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn until_settled(app: &TestApp, name: &str, count: usize) -> Vec<(i64, String)> {
    for _ in 0..600 {
        let versions = versions_of(app, name).await;
        if versions.len() >= count && versions.iter().all(|(_, status)| status != "pending") {
            return versions;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the releases of {name} did not settle");
}

fn assert_contiguous(versions: &[(i64, String)], count: usize) {
    let numbers: Vec<i64> = versions.iter().map(|(version, _)| *version).collect();
    let expected: Vec<i64> = (1..=count as i64).collect();
    assert_eq!(numbers, expected, "versions are 1..={count}, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_rollbacks_and_promotions_on_one_app_all_get_a_version() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.create_app("shop-stg").await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    app.couple("shop-stg", "shop", Stage::Staging, &[]).await;
    app.create_release("shop-dev", "registry/shop:dev").await;

    // Reads go on throughout the bursts, and are answered.
    let bursts_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let url = format!("http://{}/apps/shop-dev/releases?page_size=5", app.address);
        let done = bursts_done.clone();
        let http = app.http.clone();
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                let response = http.get(&url).send().await.expect("a read");
                assert_eq!(response.status(), 200, "a read during the burst");
                slowest = slowest.max(started.elapsed());
                reads += 1;
            }
            (reads, slowest)
        })
    };

    // The first release of a fresh app is in the race too.
    let creates = (0..FIRST_BURST).map(|n| {
        post(
            &app,
            "/apps/shop-stg/releases".into(),
            json!({"image": format!("registry/shop:first-{n}")}),
        )
    });
    for (status, body) in join_all(creates).await {
        assert_eq!(status, 201, "{body}");
    }
    assert_contiguous(&versions_of(&app, "shop-stg").await, FIRST_BURST);

    let creates = (0..CREATES).map(|n| {
        post(
            &app,
            "/apps/shop-stg/releases".into(),
            json!({"image": format!("registry/shop:{n}")}),
        )
    });
    let rollbacks = (0..ROLLBACKS).map(|_| {
        post(
            &app,
            "/apps/shop-stg/releases".into(),
            json!({"release": "1"}),
        )
    });
    let promotions = (0..PROMOTIONS).map(|_| {
        post(
            &app,
            "/pipeline-promotions".into(),
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}}),
        )
    });
    let (created, rolled_back, promoted) =
        tokio::join!(join_all(creates), join_all(rollbacks), join_all(promotions));
    for (status, body) in created.iter().chain(&rolled_back).chain(&promoted) {
        assert_eq!(*status, 201, "{body}");
    }

    bursts_done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, slowest) = reader.await.expect("the reader");
    assert!(reads > 0);
    // The pool's acquire timeout: a read that waited longer would have been a 503.
    assert!(
        slowest < Duration::from_secs(10),
        "{reads} reads, the slowest {slowest:?}"
    );

    let total = FIRST_BURST + CREATES + ROLLBACKS + PROMOTIONS;
    let versions = until_settled(&app, "shop-stg", total).await;
    assert_contiguous(&versions, total);
    assert!(
        versions.iter().all(|(_, status)| status == "succeeded"),
        "every release deployed: {versions:?}"
    );
}
