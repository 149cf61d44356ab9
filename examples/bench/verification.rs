//! What verification after deploy costs: how fast a decisive status rolls an app back,
//! how late after its deadline a verification is decided, and what verifying adds to a
//! promotion to 100 apps.

use std::time::{Duration, Instant};

use pipelines::proto::{
    promotion_service_client::PromotionServiceClient, release_service_client::ReleaseServiceClient,
    CreateReleaseRequest, CreateReleaseStatusRequest, ListPromotionTargetsRequest, OnFailure,
    PromotionEvent, StatusState, Verification, WatchPromotionRequest,
};
use tokio_stream::StreamExt;
use tonic::{transport::Channel, Streaming};

use super::{
    channel, ms, percentile, promote, setup_verifying, start, watch_to_end, Backend, BenchResult,
};

/// Rounds of the rollback row.
const ROLLBACK_ROUNDS: usize = 100;
/// Rounds of the deadline row: each waits out the shortest timeout, 10 s.
const DEADLINE_ROUNDS: usize = 3;

fn verifying_on(contexts: &[&str], timeout_seconds: u32, on_failure: OnFailure) -> Verification {
    Verification {
        contexts: contexts.iter().map(|c| c.to_string()).collect(),
        timeout_seconds: Some(timeout_seconds),
        http_checks: Vec::new(),
        on_failure: on_failure as i32,
    }
}

async fn watch(channel: &Channel, id: &str) -> BenchResult<Streaming<PromotionEvent>> {
    Ok(PromotionServiceClient::new(channel.clone())
        .watch_promotion(WatchPromotionRequest {
            id: id.to_owned(),
            after_sequence: 0,
        })
        .await?
        .into_inner())
}

/// Reads the stream until `count` events named `name` arrived, and returns the last.
async fn until(
    stream: &mut Streaming<PromotionEvent>,
    name: &str,
    count: usize,
) -> BenchResult<PromotionEvent> {
    let mut seen = 0;
    while let Some(event) = stream.next().await {
        let event = event?;
        if event.name == name {
            seen += 1;
            if seen == count {
                return Ok(event);
            }
        }
    }
    Err(format!("the stream ended before {count} × {name}").into())
}

/// A new release of `shop-dev`, so that each round promotes something new.
async fn new_source_release(channel: &Channel, round: usize) -> BenchResult<()> {
    ReleaseServiceClient::new(channel.clone())
        .create_release(CreateReleaseRequest {
            app: "shop-dev".into(),
            image: format!("registry/shop:{}", round + 2),
            description: String::new(),
        })
        .await?;
    Ok(())
}

/// The new releases of a promotion's targets, by app name.
async fn target_releases(channel: &Channel, id: &str) -> BenchResult<Vec<(String, String)>> {
    let targets = PromotionServiceClient::new(channel.clone())
        .list_promotion_targets(ListPromotionTargetsRequest {
            id: id.to_owned(),
            page_size: 1000,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .targets;
    targets
        .into_iter()
        .map(|target| {
            let app = target.app.ok_or("a target without its app")?.name;
            let release = target
                .release
                .ok_or("a verifying target without release")?
                .id;
            Ok((app, release))
        })
        .collect()
}

async fn post_status(
    channel: Channel,
    app: String,
    release_id: String,
    state: StatusState,
) -> BenchResult<()> {
    ReleaseServiceClient::new(channel)
        .create_release_status(CreateReleaseStatusRequest {
            app,
            release_id,
            context: "smoke".into(),
            name: "smoke".into(),
            state: state as i32,
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// From a `failure` status posted on a verifying target's release until the stream
/// carries `target.rolled_back` (the previous image deployed again as a new release).
async fn rollback_samples(backend: &Backend) -> BenchResult<Vec<Duration>> {
    let server = start(backend).await?;
    let channel = channel(&server).await?;
    let verification = verifying_on(&["smoke"], 600, OnFailure::Rollback);
    let apps = setup_verifying(&channel, 1, Some(verification)).await?;
    let mut samples = Vec::with_capacity(ROLLBACK_ROUNDS);
    for round in 0..ROLLBACK_ROUNDS {
        new_source_release(&channel, round).await?;
        let id = promote(&channel, apps.clone()).await?;
        let mut stream = watch(&channel, &id).await?;
        until(&mut stream, "target.verifying", 1).await?;
        let (app, release) = target_releases(&channel, &id)
            .await?
            .pop()
            .ok_or("no target")?;
        let started = Instant::now();
        post_status(channel.clone(), app, release, StatusState::Failure).await?;
        until(&mut stream, "target.rolled_back", 1).await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(samples)
}

fn instant(
    timestamp: Option<&prost_types::Timestamp>,
) -> BenchResult<chrono::DateTime<chrono::Utc>> {
    let timestamp = timestamp.ok_or("no timestamp")?;
    chrono::DateTime::from_timestamp(timestamp.seconds, timestamp.nanos as u32)
        .ok_or_else(|| "a timestamp out of range".into())
}

/// From a verification's stored deadline to its `target.verification_failed` event, as
/// the server's clock has them, for verifications nothing ever answers.
async fn deadline_samples(backend: &Backend) -> BenchResult<Vec<Duration>> {
    let server = start(backend).await?;
    let channel = channel(&server).await?;
    let verification = verifying_on(&["smoke"], 10, OnFailure::Keep);
    let apps = setup_verifying(&channel, 1, Some(verification)).await?;
    let mut samples = Vec::with_capacity(DEADLINE_ROUNDS);
    for round in 0..DEADLINE_ROUNDS {
        new_source_release(&channel, round).await?;
        let id = promote(&channel, apps.clone()).await?;
        let mut stream = watch(&channel, &id).await?;
        until(&mut stream, "target.verifying", 1).await?;
        let targets = PromotionServiceClient::new(channel.clone())
            .list_promotion_targets(ListPromotionTargetsRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .targets;
        let deadline = instant(
            targets
                .first()
                .and_then(|t| t.verification.as_ref())
                .and_then(|v| v.deadline.as_ref()),
        )?;
        let failed = until(&mut stream, "target.verification_failed", 1).await?;
        let late = instant(failed.created_at.as_ref())? - deadline;
        samples.push(late.to_std().map_err(|_| "decided before its deadline")?);
    }
    samples.sort();
    Ok(samples)
}

/// What verification adds to a promotion to 100 apps, median of 3: create → every target
/// verifying next to create → finished without verification, and the 100 `success`
/// statuses posted at once → the promotion finished.
struct HundredTargets {
    unverified: Duration,
    to_verifying: Duration,
    statuses_to_finished: Duration,
}

async fn hundred_targets(backend: &Backend) -> BenchResult<HundredTargets> {
    const TARGETS: usize = 100;
    const ROUNDS: usize = 3;
    let plain = start(backend).await?;
    let plain_channel = channel(&plain).await?;
    let plain_apps = setup_verifying(&plain_channel, TARGETS, None).await?;
    let verified = start(backend).await?;
    let verified_channel = channel(&verified).await?;
    let verification = verifying_on(&["smoke"], 600, OnFailure::Rollback);
    let verified_apps = setup_verifying(&verified_channel, TARGETS, Some(verification)).await?;
    let (mut unverified, mut to_verifying, mut statuses_to_finished) =
        (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Interleaved, so that both see the same moment of the machine.
        new_source_release(&plain_channel, round).await?;
        let started = Instant::now();
        let id = promote(&plain_channel, plain_apps.clone()).await?;
        watch_to_end(&plain_channel, id).await?;
        unverified.push(started.elapsed());

        new_source_release(&verified_channel, round).await?;
        let started = Instant::now();
        let id = promote(&verified_channel, verified_apps.clone()).await?;
        let mut stream = watch(&verified_channel, &id).await?;
        until(&mut stream, "target.verifying", TARGETS).await?;
        to_verifying.push(started.elapsed());
        let releases = target_releases(&verified_channel, &id).await?;
        let started = Instant::now();
        let posts: Vec<_> = releases
            .into_iter()
            .map(|(app, release)| {
                tokio::spawn(post_status(
                    verified_channel.clone(),
                    app,
                    release,
                    StatusState::Success,
                ))
            })
            .collect();
        for post in posts {
            post.await??;
        }
        until(&mut stream, "promotion.finished", 1).await?;
        statuses_to_finished.push(started.elapsed());
    }
    let median = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    Ok(HundredTargets {
        unverified: median(unverified),
        to_verifying: median(to_verifying),
        statuses_to_finished: median(statuses_to_finished),
    })
}

pub async fn verification_rows(backend: &Backend) -> BenchResult<()> {
    let name = backend.name();
    let rollbacks = rollback_samples(backend).await?;
    println!(
        "| verification: `failure` status posted → `target.rolled_back` ({ROLLBACK_ROUNDS} rounds) | {name} | p50 {}, p90 {}, p99 {} |",
        ms(percentile(&rollbacks, 0.5)),
        ms(percentile(&rollbacks, 0.9)),
        ms(percentile(&rollbacks, 0.99)),
    );
    let deadlines = deadline_samples(backend).await?;
    println!(
        "| verification: stored deadline → `target.verification_failed`, server clock ({DEADLINE_ROUNDS} rounds of 10 s) | {name} | {} |",
        deadlines.iter().map(|late| ms(*late)).collect::<Vec<_>>().join(", "),
    );
    let hundred = hundred_targets(backend).await?;
    println!(
        "| verification: 100 targets, create → finished without verification; create → all verifying; 100 statuses posted at once → finished (median of 3) | {name} | {}; {} ({:.2}×); {} |",
        ms(hundred.unverified),
        ms(hundred.to_verifying),
        hundred.to_verifying.as_secs_f64() / hundred.unverified.as_secs_f64(),
        ms(hundred.statuses_to_finished),
    );
    Ok(())
}
