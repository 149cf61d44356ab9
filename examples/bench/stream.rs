//! The pipeline event stream and the board: how long a change takes to reach a watcher
//! (on the process that made it, and on another replica), how long the board takes to
//! draw 50 apps in Chromium, and what the page weighs.

use std::time::{Duration, Instant};

use pipelines::proto::{
    app_service_client::AppServiceClient, coupling_service_client::CouplingServiceClient,
    pipeline_service_client::PipelineServiceClient, release_service_client::ReleaseServiceClient,
    CreateAppRequest, CreateCouplingRequest, CreatePipelineRequest, CreateReleaseRequest,
    RequiredStatusChecks, Stage, WatchPipelineRequest,
};
use tonic::transport::Channel;

use super::{channel, ms, percentile, start, start_replica, Backend, BenchResult};

const ROUNDS: usize = 200;

/// Pipeline `name` with `apps` apps spread over the four stages, each with a release.
async fn pipeline_of(channel: &Channel, name: &str, apps: usize) -> BenchResult<()> {
    PipelineServiceClient::new(channel.clone())
        .create_pipeline(CreatePipelineRequest {
            name: name.into(),
            description: String::new(),
        })
        .await?;
    let stages = [
        Stage::Review,
        Stage::Development,
        Stage::Staging,
        Stage::Production,
    ];
    for n in 0..apps {
        let app = format!("{name}-app-{n:02}");
        AppServiceClient::new(channel.clone())
            .create_app(CreateAppRequest { name: app.clone() })
            .await?;
        let stage = stages[n % stages.len()];
        CouplingServiceClient::new(channel.clone())
            .create_coupling(CreateCouplingRequest {
                app: app.clone(),
                pipeline: name.into(),
                stage: stage as i32,
                required_status_checks: Some(RequiredStatusChecks {
                    contexts: if stage == Stage::Review {
                        vec![]
                    } else {
                        vec!["ci/tests".into()]
                    },
                }),
                promotion_policy: None,
                verification: None,
            })
            .await?;
        ReleaseServiceClient::new(channel.clone())
            .create_release(CreateReleaseRequest {
                app,
                image: format!("registry/{name}:{n}"),
                description: String::new(),
            })
            .await?;
    }
    Ok(())
}

/// From sending a release create to its `release.created` on a watcher of `watched`,
/// and from the create's answer (its commit) to the event: p50 and p99 of each.
async fn change_to_stream(
    writer: &Channel,
    watched: &Channel,
) -> BenchResult<((Duration, Duration), (Duration, Duration))> {
    pipeline_of(writer, "latency", 1).await?;
    let mut stream = PipelineServiceClient::new(watched.clone())
        .watch_pipeline(WatchPipelineRequest {
            pipeline: "latency".into(),
            after_sequence: None,
        })
        .await?
        .into_inner();
    let mut releases = ReleaseServiceClient::new(writer.clone());
    let mut from_request = Vec::with_capacity(ROUNDS);
    let mut from_commit = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let started = Instant::now();
        let made = releases
            .create_release(CreateReleaseRequest {
                app: "latency-app-00".into(),
                image: format!("registry/latency:r{round}"),
                description: String::new(),
            })
            .await?
            .into_inner();
        let answered = Instant::now();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await??
                .ok_or("the stream ended")?;
            let this_one = match &event.resource {
                Some(pipelines::proto::pipeline_event::Resource::Release(release)) => {
                    release.id == made.id
                }
                _ => false,
            };
            if this_one {
                break;
            }
        }
        from_request.push(started.elapsed());
        from_commit.push(answered.elapsed());
    }
    from_request.sort();
    from_commit.sort();
    let p = |samples: &[Duration]| (percentile(samples, 0.5), percentile(samples, 0.99));
    Ok((p(&from_request), p(&from_commit)))
}

pub async fn stream_rows(backend: &Backend) -> BenchResult<()> {
    let server = start(backend).await?;
    let writer = channel(&server).await?;
    let watcher = channel(&server).await?;
    let ((p50, p99), (c50, c99)) = change_to_stream(&writer, &watcher).await?;
    println!(
        "| change → pipeline stream, same process ({ROUNDS} releases): request sent → event; create answered → event | {} | p50 {}, p99 {}; p50 {}, p99 {} |",
        backend.name(),
        ms(p50),
        ms(p99),
        ms(c50),
        ms(c99)
    );
    if let Backend::Postgres(_) = backend {
        let replica = start_replica(&server).await?;
        let other = channel(&replica).await?;
        let writer = channel(&server).await?;
        // A fresh pipeline name: the first one exists on this database.
        PipelineServiceClient::new(writer.clone())
            .delete_pipeline(pipelines::proto::DeletePipelineRequest {
                pipeline: "latency".into(),
            })
            .await?;
        AppServiceClient::new(writer.clone())
            .delete_app(pipelines::proto::DeleteAppRequest {
                app: "latency-app-00".into(),
            })
            .await?;
        let ((p50, p99), (c50, c99)) = change_to_stream(&writer, &other).await?;
        println!(
            "| change → pipeline stream, written on one replica, watched on another ({ROUNDS} releases) | {} | p50 {}, p99 {}; p50 {}, p99 {} |",
            backend.name(),
            ms(p50),
            ms(p99),
            ms(c50),
            ms(c99)
        );
    }
    Ok(())
}

/// The board: its weight, and its first paint with 50 apps measured in Chromium by
/// `tests/browser/first_paint.py` (skipped when selenium or Chromium is missing).
pub async fn board_rows() -> BenchResult<()> {
    let weight = pipelines::rest::board::page_weight();
    println!(
        "| board page weight, the page and all its assets | embedded | {:.1} kB ({weight} bytes) |",
        weight as f64 / 1000.0
    );
    let server = start(&Backend::Sqlite).await?;
    let writer = channel(&server).await?;
    pipeline_of(&writer, "board", 50).await?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/first_paint.py");
    let output = std::process::Command::new("python3")
        .args([script, &format!("http://{}/#board", server.address)])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    match text.trim().lines().last() {
        Some(line) if output.status.success() => println!(
            "| board first paint, 50 apps: navigation start → cards drawn, Chromium headless | SQLite | {line} |"
        ),
        _ => println!(
            "| board first paint, 50 apps | SQLite | not measured: {} |",
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("python3 failed")
        ),
    }
    Ok(())
}
