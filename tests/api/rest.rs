//! The REST gateway over a real socket with a real HTTP client: every path's success and
//! failures, the exact JSON shapes, and malformed input.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

fn assert_error(status: u16, body: &Value, wanted_status: u16, grpc_code: i64, fragment: &str) {
    assert_eq!(status, wanted_status, "{body}");
    assert_eq!(
        keys(body),
        sorted(&["code", "message", "details"]),
        "{body}"
    );
    assert_eq!(body["code"], json!(grpc_code), "{body}");
    assert!(body["details"].is_array());
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
}

fn is_rfc3339_utc(value: &Value) -> bool {
    value
        .as_str()
        .and_then(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|_| text.ends_with('Z'))
        })
        .unwrap_or(false)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.call(Method::POST, path, Some(body), None).await
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    app.call(Method::GET, path, None, None).await
}

/// A pipeline with a development and a staging app, each coupled.
async fn shop(app: &TestApp) -> (Value, Value, Value) {
    let (_, pipeline) = post(app, "/pipelines", json!({"name": "shop"})).await;
    let (_, dev) = post(app, "/apps", json!({"name": "shop-dev"})).await;
    let (_, stg) = post(app, "/apps", json!({"name": "shop-stg"})).await;
    let (status, _) = post(
        app,
        "/pipeline-couplings",
        json!({"app": "shop-dev", "pipeline": "shop", "stage": "development"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = post(
        app,
        "/pipeline-couplings",
        json!({"app": "shop-stg", "pipeline": "shop", "stage": "staging",
               "required_status_checks": {"contexts": ["ci/unit"]}}),
    )
    .await;
    assert_eq!(status, 201);
    (pipeline, dev, stg)
}

#[tokio::test]
async fn pipelines_have_the_akkeris_shape() {
    let app = spawn_app().await;
    let (status, created) = post(
        &app,
        "/pipelines",
        json!({"name": "shop", "description": "web"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        keys(&created),
        sorted(&["id", "name", "description", "created_at", "updated_at"])
    );
    assert_eq!(created["name"], "shop");
    assert_eq!(created["description"], "web");
    assert!(is_rfc3339_utc(&created["created_at"]), "{created}");

    let id = created["id"].as_str().unwrap();
    for reference in [id, "shop"] {
        let (status, fetched) = get(&app, &format!("/pipelines/{reference}")).await;
        assert_eq!(status, 200);
        assert_eq!(fetched, created);
    }
    post(&app, "/pipelines", json!({"name": "api"})).await;
    let (status, listed) = get(&app, "/pipelines").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "shop"]);

    let (status, deleted) = app
        .call(Method::DELETE, "/pipelines/shop", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["id"], created["id"]);
    let (status, body) = get(&app, "/pipelines/shop").await;
    assert_error(status, &body, 404, 5, "shop");
}

#[tokio::test]
async fn pipeline_rejections_map_to_http_statuses() {
    let app = spawn_app().await;
    let (status, body) = post(&app, "/pipelines", json!({"name": "Bad Name"})).await;
    assert_error(status, &body, 422, 3, "name");
    let (status, body) = post(&app, "/pipelines", json!({})).await;
    assert_error(status, &body, 422, 3, "name");
    let (status, body) = post(&app, "/pipelines", json!({"name": 7})).await;
    assert_error(status, &body, 422, 3, "name");
    post(&app, "/pipelines", json!({"name": "shop"})).await;
    let (status, body) = post(&app, "/pipelines", json!({"name": "shop"})).await;
    assert_error(status, &body, 409, 6, "already exists");
    let (status, body) = app
        .call(Method::DELETE, "/pipelines/ghost", None, None)
        .await;
    assert_error(status, &body, 404, 5, "ghost");
    let (status, body) = get(&app, "/pipelines/ghost/statuses").await;
    assert_error(status, &body, 404, 5, "ghost");
    let (status, body) = get(&app, "/pipelines/ghost/pipeline-couplings").await;
    assert_error(status, &body, 404, 5, "ghost");
}

#[tokio::test]
async fn the_stage_graph_is_an_object_in_order() {
    let app = spawn_app().await;
    let response = app
        .rest(Method::GET, "/pipeline-stages")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"review":"development","development":"staging","staging":"production","production":null}"#
    );
}

#[tokio::test]
async fn couplings_have_the_akkeris_shape() {
    let app = spawn_app().await;
    let (pipeline, dev, _) = shop(&app).await;
    let (status, coupling) = get(&app, "/apps/shop-dev/pipeline-couplings").await;
    assert_eq!(status, 200, "a single object");
    assert_eq!(
        keys(&coupling),
        sorted(&[
            "id",
            "app",
            "pipeline",
            "stage",
            "required_status_checks",
            "release",
            "promotion_policy",
            "verification",
            "frozen",
            "created_at",
            "updated_at"
        ])
    );
    assert_eq!(coupling["frozen"], Value::Null, "not frozen");
    assert_eq!(
        coupling["promotion_policy"],
        json!({"auto_promote": false, "required_approvals": 0})
    );
    assert_eq!(coupling["verification"], Value::Null);
    assert_eq!(
        coupling["app"],
        json!({"id": dev["id"], "name": "shop-dev"})
    );
    assert_eq!(
        coupling["pipeline"],
        json!({"id": pipeline["id"], "name": "shop"})
    );
    assert_eq!(coupling["stage"], "development");
    assert_eq!(coupling["required_status_checks"], json!({"contexts": []}));
    assert_eq!(coupling["release"], Value::Null);

    let (_, release) = post(&app, "/apps/shop-dev/releases", json!({"image": "shop:1"})).await;
    let id = coupling["id"].as_str().unwrap();
    let (status, fetched) = get(&app, &format!("/pipeline-couplings/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        keys(&fetched["release"]),
        sorted(&["id", "version", "image", "created_at"])
    );
    assert_eq!(fetched["release"]["id"], release["id"]);
    assert_eq!(fetched["release"]["version"], 1);

    let dev_id = dev["id"].as_str().unwrap();
    let (status, by_id) = get(&app, &format!("/apps/{dev_id}/pipeline-couplings")).await;
    assert_eq!(status, 200);
    assert_eq!(by_id["id"], coupling["id"]);

    let (status, listed) = get(&app, "/pipeline-couplings").await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let pipeline_id = pipeline["id"].as_str().unwrap();
    for reference in ["shop", pipeline_id] {
        let (status, listed) =
            get(&app, &format!("/pipelines/{reference}/pipeline-couplings")).await;
        assert_eq!(status, 200);
        let stages: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["stage"].as_str().unwrap())
            .collect();
        assert_eq!(stages, ["development", "staging"]);
    }
}

#[tokio::test]
async fn a_pipeline_without_couplings_lists_an_empty_array() {
    let app = spawn_app().await;
    post(&app, "/pipelines", json!({"name": "empty"})).await;
    let response = app
        .rest(Method::GET, "/pipelines/empty/pipeline-couplings")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn coupling_rejections_map_to_http_statuses() {
    let app = spawn_app().await;
    shop(&app).await;
    post(&app, "/apps", json!({"name": "loner"})).await;
    let cases = [
        (
            json!({"app": "ghost", "pipeline": "shop", "stage": "staging"}),
            404,
            5,
            "ghost",
        ),
        (
            json!({"app": "loner", "pipeline": "ghost", "stage": "staging"}),
            404,
            5,
            "ghost",
        ),
        (
            json!({"app": "loner", "pipeline": "shop", "stage": "qa"}),
            422,
            3,
            "stage",
        ),
        (json!({"app": "loner", "pipeline": "shop"}), 422, 3, "stage"),
        (
            json!({"app": "loner", "pipeline": "shop", "stage": "review",
                "required_status_checks": {"contexts": ["ci/unit"]}}),
            422,
            3,
            "review",
        ),
        (
            json!({"app": "loner", "pipeline": "shop", "stage": "staging",
                "required_status_checks": {"contexts": "ci/unit"}}),
            422,
            3,
            "required_status_checks.contexts",
        ),
        (
            json!({"app": "shop-dev", "pipeline": "shop", "stage": "staging"}),
            409,
            6,
            "the application already is pipelined",
        ),
    ];
    for (body, status_wanted, code, fragment) in cases {
        let (status, answer) = post(&app, "/pipeline-couplings", body.clone()).await;
        assert_error(status, &answer, status_wanted, code, fragment);
    }
    // The {id} object form of a reference is accepted too.
    let (status, coupling) = post(
        &app,
        "/pipeline-couplings",
        json!({"app": {"id": "loner"}, "pipeline": {"id": "shop"}, "stage": "production"}),
    )
    .await;
    assert_eq!(status, 201, "{coupling}");

    let (status, body) = get(&app, "/apps/ghost/pipeline-couplings").await;
    assert_error(status, &body, 404, 5, "ghost");
    post(&app, "/apps", json!({"name": "single"})).await;
    let (status, body) = get(&app, "/apps/single/pipeline-couplings").await;
    assert_error(status, &body, 404, 5, "single");
    let missing = uuid::Uuid::new_v4();
    let (status, body) = get(&app, &format!("/pipeline-couplings/{missing}")).await;
    assert_error(status, &body, 404, 5, "coupling");
    let (status, body) = get(&app, "/pipeline-couplings/not-a-uuid").await;
    assert_error(status, &body, 422, 3, "id");
}

#[tokio::test]
async fn patching_a_coupling_replaces_its_contexts_only() {
    let app = spawn_app().await;
    shop(&app).await;
    let (_, coupling) = get(&app, "/apps/shop-stg/pipeline-couplings").await;
    let path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"required_status_checks": {"contexts": ["ci/e2e", "qa"]}})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["required_status_checks"]["contexts"],
        json!(["ci/e2e", "qa"])
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"app": "shop-prod"})),
            None,
        )
        .await;
    assert_error(status, &body, 422, 3, "app");
    let (status, body) = app.call(Method::PATCH, &path, Some(json!({})), None).await;
    assert_error(status, &body, 422, 3, "required_status_checks");
    let (_, unchanged) = get(&app, &path).await;
    assert_eq!(unchanged["stage"], "staging");

    let (status, deleted) = app.call(Method::DELETE, &path, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["id"], coupling["id"]);
    let (status, body) = app.call(Method::DELETE, &path, None, None).await;
    assert_error(status, &body, 404, 5, "coupling");
}

#[tokio::test]
async fn statuses_list_distinct_contexts() {
    let app = spawn_app().await;
    shop(&app).await;
    let (_, release) = post(&app, "/apps/shop-dev/releases", json!({"image": "shop:1"})).await;
    let path = format!(
        "/apps/shop-dev/releases/{}/statuses",
        release["id"].as_str().unwrap()
    );
    post(
        &app,
        &path,
        json!({"context": "ci/unit", "name": "Unit", "state": "success"}),
    )
    .await;
    post(
        &app,
        &path,
        json!({"context": "ci/e2e", "name": "E2E", "state": "pending"}),
    )
    .await;
    let (status, statuses) = get(&app, "/pipelines/shop/statuses").await;
    assert_eq!(status, 200);
    assert_eq!(
        statuses,
        json!([{"context": "ci/e2e", "name": "E2E"}, {"context": "ci/unit", "name": "Unit"}])
    );
}

#[tokio::test]
async fn apps_and_config_vars() {
    let app = spawn_app().await;
    let (status, created) = post(&app, "/apps", json!({"name": "shop-dev"})).await;
    assert_eq!(status, 201);
    assert_eq!(
        keys(&created),
        sorted(&["id", "name", "created_at", "updated_at"])
    );
    let (status, body) = post(&app, "/apps", json!({"name": "shop-dev"})).await;
    assert_error(status, &body, 409, 6, "shop-dev");
    let (status, body) = post(&app, "/apps", json!({"name": "x"})).await;
    assert_error(status, &body, 422, 3, "name");
    let (status, listed) = get(&app, "/apps").await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let id = created["id"].as_str().unwrap();
    let (status, by_id) = get(&app, &format!("/apps/{id}")).await;
    assert_eq!((status, &by_id), (200, &created));

    let (status, vars) = get(&app, "/apps/shop-dev/config-vars").await;
    assert_eq!((status, vars), (200, json!({})));
    let (status, vars) = app
        .call(
            Method::PATCH,
            "/apps/shop-dev/config-vars",
            Some(json!({"A": "1", "B": "2"})),
            None,
        )
        .await;
    assert_eq!((status, vars), (200, json!({"A": "1", "B": "2"})));
    let (status, vars) = app
        .call(
            Method::PATCH,
            "/apps/shop-dev/config-vars",
            Some(json!({"A": null, "C": "3"})),
            None,
        )
        .await;
    assert_eq!((status, vars), (200, json!({"B": "2", "C": "3"})));
    let (status, body) = app
        .call(
            Method::PATCH,
            "/apps/shop-dev/config-vars",
            Some(json!({"BAD-KEY": "1"})),
            None,
        )
        .await;
    assert_error(status, &body, 422, 3, "BAD-KEY");
    let (status, body) = app
        .call(
            Method::PATCH,
            "/apps/shop-dev/config-vars",
            Some(json!({"NUM": 5})),
            None,
        )
        .await;
    assert_error(status, &body, 422, 3, "NUM");
    let (status, body) = get(&app, "/apps/ghost/config-vars").await;
    assert_error(status, &body, 404, 5, "ghost");

    let (status, deleted) = app.call(Method::DELETE, "/apps/shop-dev", None, None).await;
    assert_eq!(
        (status, deleted["id"].clone()),
        (200, created["id"].clone())
    );
    let (status, body) = get(&app, "/apps/shop-dev").await;
    assert_error(status, &body, 404, 5, "shop-dev");
}

#[tokio::test]
async fn releases_and_release_statuses() {
    let app = spawn_app().await;
    let (_, shop_app) = post(&app, "/apps", json!({"name": "shop-dev"})).await;
    let (status, release) = post(
        &app,
        "/apps/shop-dev/releases",
        json!({"image": "shop:1", "description": "first"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        keys(&release),
        sorted(&[
            "id",
            "app",
            "version",
            "image",
            "description",
            "status",
            "promoted_from",
            "current",
            "eligible_for_rollback",
            "user",
            "created_at",
            "updated_at"
        ])
    );
    assert_eq!(
        release["app"],
        json!({"id": shop_app["id"], "name": "shop-dev"})
    );
    assert_eq!(release["version"], 1);
    assert_eq!(release["status"], "succeeded");
    assert_eq!(release["promoted_from"], Value::Null);
    post(&app, "/apps/shop-dev/releases", json!({"image": "shop:2"})).await;
    let (status, listed) = get(&app, "/apps/shop-dev/releases").await;
    assert_eq!(status, 200);
    let versions: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(
        versions,
        [1, 2],
        "oldest first, as Akkeris clients read them"
    );
    let (status, newest) = get(&app, "/apps/shop-dev/releases?page_size=1").await;
    assert_eq!(status, 200);
    assert_eq!(newest.as_array().unwrap().len(), 1);
    assert_eq!(newest[0]["version"], 2);
    let (_, everything) = get(&app, "/apps/shop-dev/releases?page_size=0").await;
    assert_eq!(everything.as_array().unwrap().len(), 2, "0 means no limit");
    // Found by schemathesis: a size past i64::MAX once panicked in the SQLite binder.
    for huge in [
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
    ] {
        let (status, all) = get(&app, &format!("/apps/shop-dev/releases?page_size={huge}")).await;
        assert_eq!(status, 200, "{huge}: {all}");
        assert_eq!(all.as_array().unwrap().len(), 2, "{huge}");
    }
    let release_id = release["id"].as_str().unwrap();
    let (status, fetched) = get(&app, &format!("/apps/shop-dev/releases/{release_id}")).await;
    // A second release was made since: the first is no longer current.
    let mut expected = release.clone();
    expected["current"] = json!(false);
    assert_eq!((status, &fetched), (200, &expected));
    let (status, body) = post(&app, "/apps/shop-dev/releases", json!({"image": ""})).await;
    assert_error(status, &body, 422, 3, "image");
    let (status, body) = post(&app, "/apps/ghost/releases", json!({"image": "x"})).await;
    assert_error(status, &body, 404, 5, "ghost");
    let (status, body) = get(
        &app,
        &format!("/apps/shop-dev/releases/{}", uuid::Uuid::new_v4()),
    )
    .await;
    assert_error(status, &body, 404, 5, "release");

    let statuses = format!("/apps/shop-dev/releases/{release_id}/statuses");
    let (status, posted) = post(
        &app,
        &statuses,
        json!({"context": "ci/unit", "name": "Unit tests", "state": "pending",
               "target_url": "https://ci.example.com/1"}),
    )
    .await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(
        keys(&posted),
        sorted(&[
            "id",
            "release",
            "context",
            "name",
            "state",
            "description",
            "target_url",
            "image_url",
            "created_at",
            "updated_at"
        ])
    );
    assert_eq!(posted["release"], json!({"id": release["id"]}));
    assert_eq!(posted["state"], "pending");
    let (status, body) = post(
        &app,
        &statuses,
        json!({"context": "ci/unit", "name": "again", "state": "success"}),
    )
    .await;
    assert_error(status, &body, 409, 6, "ci/unit");
    let (status, body) = post(
        &app,
        &statuses,
        json!({"context": "ci/x", "name": "x", "state": "green"}),
    )
    .await;
    assert_error(status, &body, 422, 3, "state");

    let status_path = format!("{statuses}/{}", posted["id"].as_str().unwrap());
    let (status, updated) = app
        .call(
            Method::PATCH,
            &status_path,
            Some(json!({"state": "success"})),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["state"], "success");
    assert_eq!(updated["name"], "Unit tests");
    let (status, body) = app
        .call(
            Method::PATCH,
            &status_path,
            Some(json!({"context": "ci/other"})),
            None,
        )
        .await;
    assert_error(status, &body, 422, 3, "immutable");
    let (status, listed) = get(&app, &statuses).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&listed), sorted(&["state", "release", "statuses"]));
    assert_eq!(listed["state"], "success", "the only status succeeded");
    assert_eq!(listed["release"]["id"], release["id"]);
    assert_eq!(listed["statuses"].as_array().unwrap().len(), 1);
    post(
        &app,
        &statuses,
        json!({"context": "ci/lint", "name": "Lint", "state": "pending"}),
    )
    .await;
    let (_, listed) = get(&app, &statuses).await;
    assert_eq!(listed["state"], "pending", "one status still runs");
    let missing_status = format!("{statuses}/{}", uuid::Uuid::new_v4());
    let (status, body) = app
        .call(
            Method::PATCH,
            &missing_status,
            Some(json!({"state": "success"})),
            None,
        )
        .await;
    assert_error(status, &body, 404, 5, "release status");
}

#[tokio::test]
async fn malformed_requests_get_clear_client_errors() {
    let app = spawn_app().await;
    let send = |method: Method, path: &str, body: Vec<u8>| {
        app.rest(method, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(Method, &str, Vec<u8>, u16, &str)> = vec![
        (
            Method::POST,
            "/pipelines",
            b"{\"name\":".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            Method::POST,
            "/pipelines",
            b"not json".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            Method::POST,
            "/pipelines",
            b"{\"name\":\"ab1\"} trailing".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            Method::POST,
            "/pipelines",
            Vec::new(),
            400,
            "body is required",
        ),
        (Method::POST, "/pipelines", b"[1,2]".to_vec(), 422, "body"),
        (
            Method::POST,
            "/pipelines",
            vec![b' '; 1024 * 1024 + 1],
            413,
            "1 MiB",
        ),
        (
            Method::PUT,
            "/pipelines",
            Vec::new(),
            405,
            "method not allowed",
        ),
        (
            Method::GET,
            "/no/such/path",
            Vec::new(),
            404,
            "no such path",
        ),
        (
            Method::POST,
            "/apps",
            vec![0xff, 0xfe],
            400,
            "malformed JSON",
        ),
    ];
    for (method, path, body, wanted, fragment) in cases {
        let response = send(method.clone(), path, body)
            .await
            .expect("answered, not dropped");
        let status = response.status().as_u16();
        let json: Value = response.json().await.expect("a JSON error body");
        assert_eq!(status, wanted, "{method} {path}: {json}");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
    // Nothing was created by any of them.
    let (_, listed) = get(&app, "/pipelines").await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn healthz_answers_while_the_database_does() {
    let app = spawn_app().await;
    let (status, body) = get(&app, "/healthz").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn rest_speaks_http2_too() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(format!("http://{}/pipeline-stages", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn nul_characters_are_refused_or_not_found_never_a_server_error() {
    let app = spawn_app().await;
    post(&app, "/apps", json!({"name": "shop-dev"})).await;
    let (status, body) = post(
        &app,
        "/pipelines",
        json!({"name": "shop", "description": "a\u{0}b"}),
    )
    .await;
    assert_error(status, &body, 422, 3, "description");
    let (status, body) = app
        .call(
            Method::PATCH,
            "/apps/shop-dev/config-vars",
            Some(json!({"K": "a\u{0}b"})),
            None,
        )
        .await;
    assert_error(status, &body, 422, 3, "config_vars.K");
    let (status, body) = post(
        &app,
        "/apps/shop-dev/releases",
        json!({"image": "shop:1", "description": "\u{0}"}),
    )
    .await;
    assert_error(status, &body, 422, 3, "description");
    for path in [
        "/pipelines/a%00b",
        "/apps/a%00b",
        "/pipelines/a%00b/pipeline-couplings",
        "/pipeline-promotions?pipeline=a%00b",
    ] {
        let (status, body) = get(&app, path).await;
        assert_error(status, &body, 404, 5, "not found");
    }
    let mut promotion = json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}});
    promotion["request_id"] = json!("key\u{0}");
    post(&app, "/pipelines", json!({"name": "shop"})).await;
    let (status, body) = post(&app, "/pipeline-promotions", promotion).await;
    assert_ne!(status, 500, "{body}");
    // Nothing with a NUL was stored.
    let (_, pipelines) = get(&app, "/pipelines").await;
    assert_eq!(pipelines.as_array().unwrap().len(), 1);
    let (_, vars) = get(&app, "/apps/shop-dev/config-vars").await;
    assert_eq!(vars, json!({}));
}
