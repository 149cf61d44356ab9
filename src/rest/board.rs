//! The pipeline board: a page and its assets, embedded in the binary, served at `/` and
//! `/ui/...` without a token (the data the page reads needs one), with a
//! Content-Security-Policy that lets only this origin's scripts run.

use axum::{
    extract::Path,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Extension, Router,
};

use super::{error::ApiError, GatewayState};

/// Whether the page must ask for a token: false in protected mode (no token exists yet and
/// the server listens on loopback). The request middleware sets it on the page's request.
#[derive(Debug, Clone, Copy)]
pub struct TokenNeeded(pub bool);

/// The page's path.
pub const PAGE: &str = "/";
/// Where its assets live.
pub const ASSETS: &str = "/ui/";

const INDEX: &str = include_str!("../board/index.html");

/// Each asset: its name under `/ui/`, content type and content.
const FILES: [(&str, &str, &str); 7] = [
    (
        "board.js",
        "text/javascript; charset=utf-8",
        include_str!("../board/board.js"),
    ),
    (
        "stages.js",
        "text/javascript; charset=utf-8",
        include_str!("../board/stages.js"),
    ),
    (
        "promotions.js",
        "text/javascript; charset=utf-8",
        include_str!("../board/promotions.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../board/api.js"),
    ),
    (
        "view.js",
        "text/javascript; charset=utf-8",
        include_str!("../board/view.js"),
    ),
    (
        "board.css",
        "text/css; charset=utf-8",
        include_str!("../board/board.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../board/favicon.svg"),
    ),
];

/// Scripts, styles, images and connections from this origin only; no inline script, no
/// frames, no plugins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

pub(super) fn routes() -> Router<GatewayState> {
    Router::new()
        .route(PAGE, get(page))
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/{file}", get(asset))
}

fn secured(content_type: &'static str, body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn page(token: Option<Extension<TokenNeeded>>) -> Response {
    let needed = token.is_none_or(|Extension(TokenNeeded(needed))| needed);
    let html = INDEX.replace("{{TOKEN}}", if needed { "required" } else { "none" });
    secured("text/html; charset=utf-8", html)
}

async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => secured(content_type, (*body).to_owned()),
        None => {
            let mut response = ApiError::UnknownPath(format!("{ASSETS}{file}")).into_response();
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// The total size of the page and its assets, in bytes.
pub fn page_weight() -> usize {
    INDEX.len() + FILES.iter().map(|(_, _, body)| body.len()).sum::<usize>()
}
