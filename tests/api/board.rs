//! The board's page and assets: served without a token, with a Content-Security-Policy
//! that allows only this origin's scripts, within the page-weight budget; and `GET
//! /account`, which tells the page who it is acting as.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

const ASSETS: [(&str, &str); 7] = [
    ("/ui/board.js", "text/javascript"),
    ("/ui/stages.js", "text/javascript"),
    ("/ui/promotions.js", "text/javascript"),
    ("/ui/api.js", "text/javascript"),
    ("/ui/view.js", "text/javascript"),
    ("/ui/board.css", "text/css"),
    ("/ui/favicon.svg", "image/svg+xml"),
];

#[tokio::test]
async fn the_page_and_its_assets_need_no_token_and_forbid_inline_and_foreign_scripts() {
    let app = spawn_app().await;
    app.create_token("ops", "admin").await;
    let mut weight = 0;
    for (path, content_type) in std::iter::once(("/", "text/html")).chain(ASSETS) {
        // Query strings are ignored here, as on the health and metrics endpoints.
        let response = app
            .rest(Method::GET, &format!("{path}?utm_source=x&x=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}: {:?}",
            headers["content-type"]
        );
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        weight += response.bytes().await.unwrap().len();
    }
    assert!(weight <= 150_000, "the page weighs {weight} bytes");

    let page = app
        .rest(Method::GET, "/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<meta name="pipelines-token" content="required">"#));
    for script in page.split("<script").skip(1) {
        assert!(
            script
                .trim_start()
                .starts_with("type=\"module\" src=\"/ui/"),
            "{script}"
        );
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no other origin"
    );

    let (status, body) = app.call(Method::GET, "/ui/missing.js", None, None).await;
    assert_eq!(status, 404, "{body}");
    // The data the page reads still needs a token.
    let (status, _) = app.call(Method::GET, "/pipelines", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn in_protected_mode_the_page_asks_for_no_token() {
    let app = spawn_app().await;
    let page = app
        .rest(Method::GET, "/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<meta name="pipelines-token" content="none">"#),
        "{page}"
    );
    let (status, account) = app.call(Method::GET, "/account", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        account,
        json!({"id": null, "email": "local", "name": "local", "role": "admin"})
    );
}

#[tokio::test]
async fn account_answers_the_token_s_stable_id_name_and_role() {
    let app = spawn_app().await;
    let token = app.create_token("alice", "write").await;
    let db = pipelines::store::connect(&app.database.url).await.unwrap();
    let listed = pipelines::auth::Tokens::new(db).list().await.unwrap();
    let alice = listed.iter().find(|t| t.name == "alice").unwrap();
    for path in ["/account", "/users/~"] {
        let (status, account) = app.call(Method::GET, path, None, Some(&token)).await;
        assert_eq!(status, 200, "{path}: {account}");
        assert_eq!(
            account,
            json!({"id": alice.id, "email": "alice", "name": "alice", "role": "write"}),
            "{path}"
        );
        let (status, _) = app.call(Method::GET, path, None, None).await;
        assert_eq!(status, 401, "{path} needs a token");
        let (status, _) = app
            .call(Method::GET, &format!("{path}?x=1"), None, Some(&token))
            .await;
        assert_eq!(status, 422, "{path} refuses unknown parameters");
    }
}
