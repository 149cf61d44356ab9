//! The built-in HTTP checks against a real local HTTP server: 2xx passes; an error status,
//! a redirect, a slow answer and no answer fail; a check with no success never passes.

use super::*;

/// A real HTTP server for the checks: `/ok` 200, `/down` 503, `/moved` 302, `/slow`
/// answers after 12 s.
async fn probe_target() -> String {
    use axum::{http::StatusCode, response::Redirect, routing::get};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route("/moved", get(|| async { Redirect::temporary("/ok") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(12)).await;
                "late"
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

#[tokio::test]
async fn http_checks_pass_on_2xx_and_fail_on_errors_redirects_timeouts_and_no_answer() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    let base = probe_target().await;
    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    call_ok(
        &app,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        &t.ops,
    )
    .await;
    call_ok(
        &app,
        Method::POST,
        "/apps",
        json!({"name": "shop-dev"}),
        &t.ops,
    )
    .await;
    let body = json!({"app": "shop-dev", "pipeline": "shop", "stage": "development"});
    call_ok(&app, Method::POST, "/pipeline-couplings", body, &t.ops).await;
    let checks = [
        ("shop-ok", format!("{base}/ok"), 2, 0),
        ("shop-down", format!("{base}/down"), 1, 0),
        ("shop-moved", format!("{base}/moved"), 1, 0),
        ("shop-slow", format!("{base}/slow"), 1, 0),
        // Every measurement may fail, yet a check with no success never passes.
        ("shop-closed", format!("http://127.0.0.1:{closed}/"), 2, 1),
    ];
    for (name, url, count, failure_limit) in &checks {
        call_ok(&app, Method::POST, "/apps", json!({"name": name}), &t.ops).await;
        let verification = json!({"timeout_seconds": 60, "on_failure": "keep", "http_checks": [
            {"name": "health", "url": url, "interval_seconds": 1, "count": count, "failure_limit": failure_limit}]});
        let body = json!({"app": name, "pipeline": "shop", "stage": "staging", "verification": verification});
        call_ok(&app, Method::POST, "/pipeline-couplings", body, &t.ops).await;
    }
    release(&app, "shop-dev", "shop:2", &t.ops).await;
    let id = promote(&app, &t.ci).await;

    let ok = target_in(&app, &id, "shop-ok", "succeeded", &t.ci).await;
    assert_eq!(ok["verification"]["results"][0]["context"], "http/health");
    assert_eq!(
        ok["verification"]["results"][0]["description"],
        "2 of 2 succeeded; last: 200 OK"
    );
    for (name, expected) in [
        (
            "shop-down",
            "0 of 1 succeeded; last: 503 Service Unavailable",
        ),
        ("shop-moved", "redirects are not followed"),
        ("shop-slow", "no answer within 10 s"),
        ("shop-closed", "0 of 2 succeeded; last: connection failed"),
    ] {
        let failed = target_in(&app, &id, name, "failed", &t.ci).await;
        let result = &failed["verification"]["results"][0];
        assert_eq!(result["context"], "http/health", "{name}");
        assert_eq!(result["state"], "failure", "{name}");
        assert!(
            result["description"].as_str().unwrap().contains(expected),
            "{name}: {result}"
        );
    }
    // The results are ordinary release statuses on the new releases.
    let release = get(&app, "/apps/shop-ok/releases", &t.ci).await;
    let newest = release.as_array().unwrap().last().unwrap().clone();
    let statuses = get(
        &app,
        &format!(
            "/apps/shop-ok/releases/{}/statuses",
            newest["id"].as_str().unwrap()
        ),
        &t.ci,
    )
    .await;
    assert_eq!(statuses["statuses"][0]["context"], "http/health");
    assert_eq!(statuses["statuses"][0]["state"], "success");
}
