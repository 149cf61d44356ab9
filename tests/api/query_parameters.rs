//! Query parameters: every REST route accepts exactly the ones `/openapi.json` documents
//! for it, each once, and refuses anything else with 422 before it acts. The route list
//! is read from the served document, so a new route is tested the moment it is routed.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// Routes for operators and tools, which ignore query strings.
const IGNORING_QUERY: [&str; 2] = ["/healthz", "/metrics"];

/// Every documented operation: its method, its path with each `{parameter}` filled in, and
/// its documented query parameters.
async fn documented_operations(app: &TestApp) -> Vec<(Method, String, Vec<String>)> {
    let (status, document) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let mut operations = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        if IGNORING_QUERY.contains(&template.as_str()) {
            continue;
        }
        for (method, operation) in item.as_object().expect("a path item") {
            let method: Method = method.to_uppercase().parse().expect("a method");
            let accepted: Vec<String> = operation["parameters"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|parameter| parameter["in"] == "query")
                .map(|parameter| parameter["name"].as_str().expect("a name").to_owned())
                .collect();
            operations.push((method, filled_in(template), accepted));
        }
    }
    operations
}

/// A path template with its parameters filled in with things that exist.
fn filled_in(template: &str) -> String {
    template
        .replace("{pipeline}", "shop")
        .replace("{app}", "shop-dev")
        .replace("{release}", "1")
        .replace("{id}", "00000000-0000-4000-8000-000000000001")
        .replace("{status}", "ci")
}

async fn send(app: &TestApp, method: Method, path: &str) -> (u16, Value) {
    let response = app
        .rest(method, path)
        .header("content-type", "application/json")
        .body(json!({"name": "shop"}).to_string())
        .send()
        .await
        .expect("REST call");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn assert_refused(status: u16, body: &Value, what: &str, fragments: &[&str]) {
    assert_eq!(status, 422, "{what}: {body}");
    assert_eq!(body["code"], 3, "{what}: {body}");
    let message = body["message"].as_str().expect("a message");
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "{what}: {message:?} lacks {fragment:?}"
        );
    }
}

/// A pipeline `shop` with its app `shop-dev` coupled at development.
async fn shop(app: &TestApp) {
    for (path, body) in [
        ("/pipelines", json!({"name": "shop"})),
        ("/apps", json!({"name": "shop-dev"})),
        (
            "/pipeline-couplings",
            json!({"pipeline": "shop", "app": "shop-dev", "stage": "development"}),
        ),
    ] {
        let (status, created) = app.call(Method::POST, path, Some(body), None).await;
        assert_eq!(status, 201, "{path}: {created}");
    }
}

#[tokio::test]
async fn every_route_refuses_an_unknown_query_parameter_before_it_acts() {
    let app = spawn_app().await;
    shop(&app).await;
    let operations = documented_operations(&app).await;
    assert!(operations.len() >= 30, "{} operations", operations.len());
    for (method, path, accepted) in &operations {
        let what = format!("{method} {path}?no_such_filter=1");
        let (status, body) = send(&app, method.clone(), &format!("{path}?no_such_filter=1")).await;
        let mut fragments = vec!["'no_such_filter'", "is not accepted"];
        fragments.extend(accepted.iter().map(String::as_str));
        if accepted.is_empty() {
            fragments.push("accepts no query parameters");
        }
        assert_refused(status, &body, &what, &fragments);
    }
    // Nothing was created, changed or deleted by any of those requests.
    let (_, pipelines) = app.call(Method::GET, "/pipelines", None, None).await;
    assert_eq!(pipelines.as_array().map(Vec::len), Some(1), "{pipelines}");
    let (_, couplings) = app
        .call(Method::GET, "/pipeline-couplings", None, None)
        .await;
    assert_eq!(couplings.as_array().map(Vec::len), Some(1), "{couplings}");
    let (_, apps) = app.call(Method::GET, "/apps", None, None).await;
    assert_eq!(apps.as_array().map(Vec::len), Some(1), "{apps}");
    let (_, releases) = app
        .call(Method::GET, "/apps/shop-dev/releases", None, None)
        .await;
    assert_eq!(releases, json!([]));
}

#[tokio::test]
async fn every_documented_parameter_given_twice_is_refused() {
    let app = spawn_app().await;
    shop(&app).await;
    let mut checked = 0;
    for (method, path, accepted) in documented_operations(&app).await {
        for name in accepted {
            let query = format!("{name}=1&{name}=2");
            let what = format!("{method} {path}?{query}");
            let (status, body) = send(&app, method.clone(), &format!("{path}?{query}")).await;
            assert_refused(status, &body, &what, &[&name, "more than once"]);
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} parameters");
}

#[tokio::test]
async fn documented_parameters_are_accepted_percent_encoded_or_not() {
    let app = spawn_app().await;
    shop(&app).await;
    for path in [
        "/pipelines?page_size=1",
        "/pipelines?eq[name]=shop",
        "/pipelines?eq%5Bname%5D=shop",
        "/pipelines?eq%5Bname%5D=shop&page_size=5",
        "/pipeline-promotions?pipeline=shop&page_size=5",
        "/apps/shop-dev/releases?extended=true",
        "/apps/shop-dev/releases?page_size=2&extended=false",
        "/pipelines?",
    ] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_pipeline_is_found_by_name_with_a_filter_and_an_unknown_name_finds_none() {
    let app = spawn_app().await;
    let (_, only) = app
        .call(
            Method::POST,
            "/pipelines",
            Some(json!({"name": "only-one"})),
            None,
        )
        .await;
    let (status, found) = app
        .call(Method::GET, "/pipelines?eq%5Bname%5D=only-one", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(found, json!([only]));

    let id = only["id"].as_str().expect("an id");
    for missing in [
        "no-such-pipeline",
        id,
        "Only-One",
        "only-one%20",
        "x",
        "%00",
        "",
    ] {
        let (status, found) = app
            .call(
                Method::GET,
                &format!("/pipelines?eq[name]={missing}"),
                None,
                None,
            )
            .await;
        assert_eq!((status, &found), (200, &json!([])), "eq[name]={missing}");
    }

    // `heroku pipelines:destroy no-such-pipeline` asks for the name, finds nothing and
    // stops: the only pipeline there is stays.
    let (_, all) = app.call(Method::GET, "/pipelines", None, None).await;
    assert_eq!(all, json!([only]));
}

#[tokio::test]
async fn the_filter_finds_only_live_pipelines() {
    let app = spawn_app().await;
    app.call(
        Method::POST,
        "/pipelines",
        Some(json!({"name": "gone"})),
        None,
    )
    .await;
    let (status, _) = app
        .call(Method::DELETE, "/pipelines/gone", None, None)
        .await;
    assert_eq!(status, 200);
    let (status, found) = app
        .call(Method::GET, "/pipelines?eq[name]=gone", None, None)
        .await;
    assert_eq!((status, found), (200, json!([])));
}

#[tokio::test]
async fn operator_routes_ignore_query_strings() {
    let app = spawn_app().await;
    for path in [
        "/healthz?probe=1",
        "/metrics?format=text",
        "/openapi.json?v=2",
    ] {
        let response = app.rest(Method::GET, path).send().await.expect("REST call");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_caller_without_a_token_is_told_so_before_the_query_is_read() {
    let app = spawn_app().await;
    app.create_token("ops", "admin").await;
    let (status, body) = app
        .call(Method::GET, "/pipelines?no_such_filter=1", None, None)
        .await;
    assert_eq!(status, 401, "{body}");
}
