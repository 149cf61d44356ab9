//! `GET /metrics`: the Prometheus text format, labelled by route template and gRPC method,
//! with the promotion, deployer and database series. Metrics are per process and the test
//! binary runs many servers at once, so counts are checked as "at least".

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, with_token, TestApp};

async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String, String) {
    let mut request = app.rest(Method::GET, "/metrics");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The value of the first sample of `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_template_and_promotions_by_outcome() {
    let app = spawn_app().await;
    let ops = app.create_token("ops", "admin").await;
    let reader = app.create_token("dashboard", "read").await;
    let (status, _) = app
        .call(
            Method::POST,
            "/pipelines",
            Some(json!({"name": "shop"})),
            Some(&ops),
        )
        .await;
    assert_eq!(status, 201);
    for name in ["shop-dev", "shop-stg"] {
        app.call(
            Method::POST,
            "/apps",
            Some(json!({"name": name})),
            Some(&ops),
        )
        .await;
    }
    for (name, stage) in [("shop-dev", "development"), ("shop-stg", "staging")] {
        let body = json!({"app": name, "pipeline": "shop", "stage": stage});
        app.call(Method::POST, "/pipeline-couplings", Some(body), Some(&ops))
            .await;
    }
    app.call(
        Method::POST,
        "/apps/shop-dev/releases",
        Some(json!({"image": "shop:1"})),
        Some(&ops),
    )
    .await;
    // Two raw paths of one template, and a miss.
    app.call(Method::GET, "/pipelines/shop", None, Some(&reader))
        .await;
    app.call(
        Method::GET,
        "/pipelines/no-such-pipeline",
        None,
        Some(&reader),
    )
    .await;
    app.call(Method::GET, "/no/such/path", None, Some(&reader))
        .await;
    // gRPC: a call that succeeds and one to a method the server lacks.
    app.pipelines
        .clone()
        .get_pipeline(with_token(
            pipelines::proto::GetPipelineRequest {
                pipeline: "shop".into(),
            },
            &reader,
        ))
        .await
        .expect("get pipeline");
    let (status, created) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})),
            Some(&ops),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let events = app.watch_to_end_as(id, &reader).await;
    assert_eq!(events.last().unwrap().name, "promotion.finished");

    // A token is needed once tokens exist; any role may read the metrics.
    // Clients cannot make series: a refused gRPC call to a made-up method, and a made-up
    // HTTP method.
    let refused = app
        .rest(Method::POST, "/made.up.Service/Steal")
        .header("content-type", "application/grpc")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["grpc-status"], "16");
    let brewed = app
        .rest(Method::from_bytes(b"BREW").unwrap(), "/pipelines")
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(brewed.status(), 405);
    let (status, _, _) = scrape(&app, None).await;
    assert_eq!(status, 401);
    let (status, content_type, text) = scrape(&app, Some(&reader)).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");

    assert!(
        text.contains("# TYPE pipelines_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# HELP pipelines_http_requests_total"),
        "{text}"
    );
    let by_template = sample(
        &text,
        "pipelines_http_requests_total",
        &[
            r#"route="/pipelines/{pipeline}""#,
            r#"method="GET""#,
            r#"status="200""#,
        ],
    );
    assert!(by_template >= Some(1.0), "{text}");
    assert!(
        sample(
            &text,
            "pipelines_http_requests_total",
            &[r#"route="/pipelines/{pipeline}""#, r#"status="404""#],
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("no-such-pipeline"),
        "raw paths are never labels"
    );
    assert!(
        !text.contains("/no/such/path"),
        "raw paths are never labels"
    );
    assert!(
        !text.contains("made.up"),
        "unknown gRPC paths are never labels"
    );
    assert!(
        sample(
            &text,
            "pipelines_grpc_requests_total",
            &[r#"method="unknown""#, r#"code="16""#]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("BREW"),
        "unknown HTTP methods are never labels"
    );
    assert!(
        sample(
            &text,
            "pipelines_http_requests_total",
            &[r#"method="other""#, r#"status="405""#]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "pipelines_http_requests_total",
            &[r#"route="unmatched""#]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "pipelines_grpc_requests_total",
            &[
                r#"method="/pipelines.v1.PipelineService/GetPipeline""#,
                r#"code="0""#
            ],
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("pipelines_grpc_request_duration_seconds_bucket{"),
        "latency is a histogram: {text}"
    );
    assert!(
        text.contains("pipelines_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "pipelines_promotions_created_total",
            &[r#"trigger="request""#]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "pipelines_promotions_finished_total",
            &[r#"outcome="successful""#]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "pipelines_targets_finished_total",
            &[r#"state="succeeded""#]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "pipelines_deploy_attempts_total",
            &[r#"deployer="local""#]
        ) >= Some(1.0),
        "{text}"
    );
    // Database gauges, read at the scrape: nothing is left running here.
    assert_eq!(
        sample(&text, "pipelines_targets", &[r#"state="running""#]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pipelines_queue_depth", &[]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pipelines_promotions_awaiting_approval", &[]),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "pipelines_db_pool_max_connections",
            &[r#"pool="requests""#]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "pipelines_db_pool_connections",
            &[r#"pool="requests""#, r#"state="idle""#]
        )
        .is_some(),
        "{text}"
    );
    // On PostgreSQL the engine has a pool of its own: its limit is the parallel targets
    // and two more. On SQLite it shares the one connection.
    let engine_limit = sample(
        &text,
        "pipelines_db_pool_max_connections",
        &[r#"pool="engine""#],
    );
    if app.database.is_postgres() {
        assert!(engine_limit >= Some(3.0), "{text}");
    } else {
        assert_eq!(engine_limit, None, "{text}");
    }
}

#[tokio::test]
async fn the_database_gauges_count_work_waiting_for_approval_and_frozen_stages() {
    let app = spawn_app().await;
    let ops = app.create_token("ops", "admin").await;
    let created = |path: &'static str, body: serde_json::Value| {
        let app = &app;
        let ops = &ops;
        async move {
            let (status, answer) = app.call(Method::POST, path, Some(body), Some(ops)).await;
            assert_eq!(status, 201, "{path}: {answer}");
        }
    };
    created("/pipelines", json!({"name": "shop"})).await;
    created("/apps", json!({"name": "shop-dev"})).await;
    created("/apps", json!({"name": "shop-stg"})).await;
    created(
        "/pipeline-couplings",
        json!({"app": "shop-dev", "pipeline": "shop", "stage": "development"}),
    )
    .await;
    created(
        "/pipeline-couplings",
        json!({"app": "shop-stg", "pipeline": "shop", "stage": "staging",
               "promotion_policy": {"required_approvals": 1}}),
    )
    .await;
    created("/apps/shop-dev/releases", json!({"image": "shop:1"})).await;
    created(
        "/pipeline-promotions",
        json!({"pipeline": "shop", "source": {"app": "shop-dev"}}),
    )
    .await;
    let ends_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    created(
        "/pipelines/shop/freezes",
        json!({"stages": ["staging"], "ends_at": ends_at, "reason": "incident"}),
    )
    .await;

    let (status, _, text) = scrape(&app, Some(&ops)).await;
    assert_eq!(status, 200);
    assert_eq!(
        sample(&text, "pipelines_promotions_awaiting_approval", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pipelines_frozen_stages", &[r#"stage="staging""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pipelines_frozen_stages", &[r#"stage="production""#]),
        Some(0.0),
        "{text}"
    );
    let (status, _) = app
        .call(Method::DELETE, "/pipelines/shop", None, Some(&ops))
        .await;
    assert_eq!(status, 200);
    let (_, _, text) = scrape(&app, Some(&ops)).await;
    assert_eq!(
        sample(&text, "pipelines_frozen_stages", &[r#"stage="staging""#]),
        Some(0.0),
        "a deleted pipeline's freezes hold nothing: {text}"
    );
    assert_eq!(
        sample(&text, "pipelines_targets", &[r#"state="pending""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pipelines_targets", &[r#"state="running""#]),
        Some(0.0),
        "{text}"
    );
}
