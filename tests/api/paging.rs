//! Bounded lists: gRPC pages at 100 by default, resumes exactly with `page_token`, and
//! refuses foreign tokens; REST returns whole lists unless `?page_size=` asks for a page.

use pipelines::proto::{ListPipelinesRequest, ListReleasesRequest};
use reqwest::Method;
use tonic::Code;

use crate::helpers::{assert_status, spawn_app, TestApp};

async fn pipelines_page(app: &TestApp, size: u32, token: &str) -> (Vec<String>, String) {
    let page = app
        .pipelines
        .clone()
        .list_pipelines(ListPipelinesRequest {
            page_size: size,
            page_token: token.into(),
        })
        .await
        .expect("list pipelines")
        .into_inner();
    (
        page.pipelines.into_iter().map(|p| p.name).collect(),
        page.next_page_token,
    )
}

#[tokio::test]
async fn grpc_lists_page_at_a_hundred_and_resume_exactly() {
    let app = spawn_app().await;
    let mut expected = Vec::new();
    for n in 0..130 {
        let name = format!("pipeline-{n:03}");
        app.create_pipeline(&name).await;
        expected.push(name);
    }
    let (first, token) = pipelines_page(&app, 0, "").await;
    assert_eq!(first.len(), 100, "the default page");
    assert!(!token.is_empty());
    // A pipeline deleted between pages does not shift the next one.
    let (status, _) = app
        .call(Method::DELETE, "/pipelines/pipeline-000", None, None)
        .await;
    assert_eq!(status, 200);
    let (second, last) = pipelines_page(&app, 0, &token).await;
    assert_eq!(second.len(), 30);
    assert!(last.is_empty(), "the last page has no token");
    assert_eq!([first, second].concat(), expected);

    let (small, token) = pipelines_page(&app, 7, "").await;
    assert_eq!(small, expected[1..8]);
    let (next, _) = pipelines_page(&app, 7, &token).await;
    assert_eq!(next, expected[8..15]);
}

#[tokio::test]
async fn releases_page_newest_first_across_many_versions() {
    let app = spawn_app().await;
    app.create_app("busy").await;
    for n in 1..=230 {
        app.create_release("busy", &format!("busy:{n}")).await;
    }
    let mut versions = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .releases
            .clone()
            .list_releases(ListReleasesRequest {
                app: "busy".into(),
                page_size: 0,
                page_token: token.clone(),
            })
            .await
            .expect("list releases")
            .into_inner();
        assert!(page.releases.len() <= 100);
        versions.extend(page.releases.iter().map(|r| r.version));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(versions, (1..=230).rev().collect::<Vec<i64>>());

    // REST keeps the Akkeris full list, oldest first.
    let (status, body) = app
        .call(Method::GET, "/apps/busy/releases", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(230));
}

#[tokio::test]
async fn foreign_page_tokens_are_refused_on_both_transports() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    for token in ["not-a-token", "p1.zz", "12_3f"] {
        let refused = app
            .pipelines
            .clone()
            .list_pipelines(ListPipelinesRequest {
                page_size: 0,
                page_token: token.into(),
            })
            .await;
        assert_status(refused, Code::InvalidArgument, &["page_token"]);
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/pipelines?page_size=5&page_token={token}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, 422, "an invalid field, as everywhere: {body}");
        assert!(body.to_string().contains("page_token"), "{body}");
    }
    app.create_app("busy").await;
    let refused = app
        .releases
        .clone()
        .list_releases(ListReleasesRequest {
            app: "busy".into(),
            page_size: 0,
            page_token: "p1.6e6f".into(),
        })
        .await;
    assert_status(refused, Code::InvalidArgument, &["page_token"]);
    let (status, body) = app
        .call(Method::GET, "/pipelines?page_size=many", None, None)
        .await;
    assert!(
        status == 400 || status == 422,
        "a malformed page size: {status} {body}"
    );
    assert!(body.to_string().contains("page_size"), "{body}");
}

#[tokio::test]
async fn rest_lists_are_whole_unless_a_page_is_asked_for() {
    let app = spawn_app().await;
    for n in 0..120 {
        app.create_pipeline(&format!("pipeline-{n:03}")).await;
    }
    let (status, body) = app.call(Method::GET, "/pipelines", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body.as_array().map(Vec::len),
        Some(120),
        "Akkeris's full list"
    );

    let mut seen = 0;
    let mut path = "/pipelines?page_size=50".to_owned();
    loop {
        let response = app.rest(Method::GET, &path).send().await.expect("list");
        assert_eq!(response.status(), 200);
        let next = response
            .headers()
            .get("next-page-token")
            .map(|value| value.to_str().expect("ASCII token").to_owned());
        let page: serde_json::Value = response.json().await.expect("JSON");
        seen += page.as_array().map(Vec::len).unwrap_or_default();
        match next {
            Some(token) => path = format!("/pipelines?page_size=50&page_token={token}"),
            None => break,
        }
    }
    assert_eq!(seen, 120);
}
