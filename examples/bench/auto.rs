//! What auto-promotion adds between "status posted" and "the next stage runs the release",
//! next to a client that promotes by hand as soon as its status is answered. Both are
//! timed the same way: from posting the `success` status until the target app's current
//! release has the new image, watched by polling its coupling every millisecond.

use std::time::{Duration, Instant};

use pipelines::proto::{
    app_service_client::AppServiceClient, coupling_service_client::CouplingServiceClient,
    pipeline_service_client::PipelineServiceClient,
    promotion_service_client::PromotionServiceClient, release_service_client::ReleaseServiceClient,
    CreateAppRequest, CreateCouplingRequest, CreatePipelineRequest, CreatePromotionRequest,
    CreateReleaseRequest, CreateReleaseStatusRequest, GetAppCouplingRequest, PromotionPolicy,
    RequiredStatusChecks, Stage, StatusState,
};
use tonic::transport::Channel;

use super::{channel, ms, percentile, start, Backend, BenchResult};

const ROUNDS: usize = 20;

/// Pipeline `name`: `<name>-dev` and `<name>-stg`, which requires `ci/tests` and
/// auto-promotes when `auto` is set.
async fn pipeline(channel: &Channel, name: &str, auto: bool) -> BenchResult<()> {
    PipelineServiceClient::new(channel.clone())
        .create_pipeline(CreatePipelineRequest {
            name: name.into(),
            description: String::new(),
        })
        .await?;
    for (suffix, stage) in [("dev", Stage::Development), ("stg", Stage::Staging)] {
        let app = format!("{name}-{suffix}");
        AppServiceClient::new(channel.clone())
            .create_app(CreateAppRequest { name: app.clone() })
            .await?;
        let staging = stage == Stage::Staging;
        CouplingServiceClient::new(channel.clone())
            .create_coupling(CreateCouplingRequest {
                verification: None,
                app,
                pipeline: name.into(),
                stage: stage as i32,
                required_status_checks: Some(RequiredStatusChecks {
                    contexts: if staging {
                        vec!["ci/tests".into()]
                    } else {
                        vec![]
                    },
                }),
                promotion_policy: Some(PromotionPolicy {
                    auto_promote: Some(staging && auto),
                    required_approvals: None,
                }),
            })
            .await?;
    }
    Ok(())
}

/// Waits until `app` runs `image`.
async fn runs(channel: &Channel, app: &str, image: &str) -> BenchResult<()> {
    let mut couplings = CouplingServiceClient::new(channel.clone());
    let started = Instant::now();
    loop {
        let coupling = couplings
            .get_app_coupling(GetAppCouplingRequest { app: app.into() })
            .await?
            .into_inner();
        if coupling
            .release
            .is_some_and(|release| release.image == image)
        {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("{app} never ran {image}").into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One round on pipeline `name`: a release, then timed from its green status until
/// staging runs it, promoting by hand unless the pipeline auto-promotes.
async fn round(channel: &Channel, name: &str, auto: bool, round: usize) -> BenchResult<Duration> {
    let image = format!("registry/{name}:{round}");
    let release = ReleaseServiceClient::new(channel.clone())
        .create_release(CreateReleaseRequest {
            app: format!("{name}-dev"),
            image: image.clone(),
            description: String::new(),
        })
        .await?
        .into_inner();
    let started = Instant::now();
    ReleaseServiceClient::new(channel.clone())
        .create_release_status(CreateReleaseStatusRequest {
            app: format!("{name}-dev"),
            release_id: release.id.clone(),
            context: "ci/tests".into(),
            name: "tests".into(),
            state: StatusState::Success as i32,
            ..Default::default()
        })
        .await?;
    if !auto {
        PromotionServiceClient::new(channel.clone())
            .create_promotion(CreatePromotionRequest {
                pipeline: name.into(),
                source_app: format!("{name}-dev"),
                source_release_id: release.id,
                ..Default::default()
            })
            .await?;
    }
    runs(channel, &format!("{name}-stg"), &image).await?;
    Ok(started.elapsed())
}

/// Prints the manual and automatic rows, rounds interleaved on one server.
pub async fn auto_promotion_rows(backend: &Backend) -> BenchResult<()> {
    let server = start(backend).await?;
    let channel = channel(&server).await?;
    pipeline(&channel, "hand", false).await?;
    pipeline(&channel, "auto", true).await?;
    let (mut by_hand, mut automatic) = (Vec::new(), Vec::new());
    for n in 0..ROUNDS {
        by_hand.push(round(&channel, "hand", false, n).await?);
        automatic.push(round(&channel, "auto", true, n).await?);
    }
    by_hand.sort();
    automatic.sort();
    for (label, samples) in [
        ("client promotes on its status's answer", &by_hand),
        ("auto-promotion", &automatic),
    ] {
        println!(
            "| status posted → staging runs it, {label} ({ROUNDS} rounds) | {} | p50 {}, p90 {} |",
            backend.name(),
            ms(percentile(samples, 0.5)),
            ms(percentile(samples, 0.9)),
        );
    }
    Ok(())
}
