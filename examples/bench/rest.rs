//! REST read throughput next to a bare axum handler, driven by `wrk` (`apt-get install
//! wrk`): 2 threads, 32 connections, as one would probe a service in front of a load
//! balancer.
//!
//! The ceiling is an axum handler started by this harness that returns the stage graph
//! from memory: no authentication, no database, no logging. Every endpoint of the service
//! is called with a real `admin` token, not in protected mode.
//!
//! The machine's speed drifts within a run, so each endpoint is measured in alternation
//! with the ceiling (ceiling, endpoint, ceiling, endpoint; 4 s each after a 2 s warm-up of
//! both) and its share is the ratio of the two totals.

use std::{net::SocketAddr, process::Command};

use pipelines::proto::{
    release_service_client::ReleaseServiceClient, CreateReleaseStatusRequest, ListReleasesRequest,
    StatusState,
};

use super::{channel, promote, setup, start_logging, watch_to_end, Backend, BenchResult, Server};

/// `wrk`'s requests per second against `url` over `duration` (such as `4s`). Any non-2xx
/// answer fails the run: a fast error is not a result.
pub fn wrk(url: &str, token: Option<&str>, duration: &str) -> BenchResult<f64> {
    let authorization = token.map(|token| format!("Authorization: Bearer {token}"));
    wrk_with_headers(url, authorization.as_slice(), duration)
}

/// [`wrk`], sending each of `headers` (`Name: value`) with every request.
pub fn wrk_with_headers(url: &str, headers: &[String], duration: &str) -> BenchResult<f64> {
    let run = |duration: &str| -> BenchResult<String> {
        let mut command = Command::new("wrk");
        command.args(["-t2", "-c32", "--timeout", "10s", "-d", duration]);
        for header in headers {
            command.args(["-H", header]);
        }
        let output = command.arg(url).output().map_err(|error| {
            format!("cannot run wrk: {error} (install it: apt-get install wrk)")
        })?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() || text.contains("Non-2xx") || text.contains("Socket errors") {
            return Err(format!("wrk against {url} saw failures:\n{text}").into());
        }
        Ok(text)
    };
    let text = run(duration)?;
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{text}").into())
}

/// Serves `body` as JSON at every path, from memory: the ceiling.
async fn bare_handler(body: String) -> BenchResult<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let body: &'static str = Box::leak(body.into_boxed_str());
    let router = axum::Router::new().fallback(move || async move {
        ([(http::header::CONTENT_TYPE, "application/json")], body)
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(address)
}

pub(super) fn admin_token(server: &Server) -> BenchResult<String> {
    let output = Command::new(super::server_binary())
        .args(["tokens", "create", "--name", "bench", "--role", "admin"])
        .env("DATABASE_URL", &server.database_url)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "cannot create a token: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// One pipeline, three coupled apps, one release with two statuses, and a finished
/// promotion. Returns the promotion's id.
async fn data(server: &Server) -> BenchResult<String> {
    let channel = channel(server).await?;
    let targets = setup(&channel, 2).await?;
    let mut releases = ReleaseServiceClient::new(channel.clone());
    let release = releases
        .list_releases(ListReleasesRequest {
            app: "shop-dev".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .releases
        .pop()
        .ok_or("no release")?;
    for context in ["ci/test", "ci/lint"] {
        releases
            .create_release_status(CreateReleaseStatusRequest {
                app: "shop-dev".into(),
                release_id: release.id.clone(),
                context: context.into(),
                name: context.into(),
                state: StatusState::Success as i32,
                ..Default::default()
            })
            .await?;
    }
    let id = promote(&channel, targets).await?;
    watch_to_end(&channel, id.clone()).await?;
    Ok(id)
}

/// One endpoint measured in alternation with the ceiling.
pub struct Paired {
    pub endpoint: String,
    /// Requests per second, endpoint and ceiling, each over its 8 measured seconds.
    pub rate: f64,
    pub ceiling: f64,
}

/// Measures `url` and the ceiling in alternation, after warming both up.
fn paired(endpoint: String, url: &str, token: &str, ceiling_url: &str) -> BenchResult<Paired> {
    wrk(ceiling_url, None, "2s")?;
    wrk(url, Some(token), "2s")?;
    let (mut rate, mut ceiling) = (0.0, 0.0);
    for _ in 0..2 {
        ceiling += wrk(ceiling_url, None, "4s")? / 2.0;
        rate += wrk(url, Some(token), "4s")? / 2.0;
    }
    Ok(Paired {
        endpoint,
        rate,
        ceiling,
    })
}

/// Each endpoint next to the ceiling measured around it.
pub async fn rest_table(backend: &Backend) -> BenchResult<Vec<Paired>> {
    let mut rows = Vec::new();
    for (log, label) in [("info", ""), ("warn", ", access log off (RUST_LOG=warn)")] {
        let server = start_logging(backend, log).await?;
        let promotion = data(&server).await?;
        let token = admin_token(&server)?;
        // The token list is read again within a second: let the server see the new token.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let base = format!("http://{}", server.address);
        let stages = reqwest::Client::new()
            .get(format!("{base}/pipeline-stages"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let ceiling_address = bare_handler(stages).await?;
        let ceiling_url = format!("http://{ceiling_address}/pipeline-stages");
        let paths = if log == "info" {
            vec![
                "/pipeline-stages".to_owned(),
                "/pipelines/shop".to_owned(),
                "/pipelines/shop/pipeline-couplings".to_owned(),
                "/pipelines/shop/statuses".to_owned(),
                format!("/pipeline-promotions/{promotion}"),
            ]
        } else {
            vec!["/pipeline-stages".to_owned()]
        };
        for path in paths {
            let shown = if path.starts_with("/pipeline-promotions/") {
                "/pipeline-promotions/{id}"
            } else {
                &path
            };
            rows.push(paired(
                format!("GET {shown}{label}"),
                &format!("{base}{path}"),
                &token,
                &ceiling_url,
            )?);
        }
    }
    Ok(rows)
}
