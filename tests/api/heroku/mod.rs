//! What Heroku clients read and send: ranges on lists, releases by version with their
//! authors and config vars, pipeline renames, stage moves, the app filter, the caller's
//! identity and Heroku's status words. The real Heroku CLI runs in CI
//! (`tests/heroku/heroku_cli_test.py`).

mod changes;
mod ranges;
mod releases;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// A REST call with headers, answering its status, headers and JSON body.
async fn call_with(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app.rest(method, path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("REST call");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, headers, body)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// `app` with `count` releases, images `img:1` to `img:<count>`.
async fn app_with_releases(app: &TestApp, name: &str, count: usize) {
    let (status, body) = app
        .call(Method::POST, "/apps", Some(json!({"name": name})), None)
        .await;
    assert_eq!(status, 201, "{body}");
    for n in 1..=count {
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/apps/{name}/releases"),
                Some(json!({"image": format!("img:{n}")})),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}
