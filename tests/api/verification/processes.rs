//! Verification across a crash: a server SIGKILLed while its target verifies, and the
//! restarted process that decides the stored deadline and rolls the app back.

use std::time::{Duration, Instant};

use pipelines::proto::{
    app_service_client::AppServiceClient, coupling_service_client::CouplingServiceClient,
    create_promotion_response::Result as Created, pipeline_service_client::PipelineServiceClient,
    promotion_service_client::PromotionServiceClient, release_service_client::ReleaseServiceClient,
    CreateAppRequest, CreateCouplingRequest, CreatePipelineRequest, CreatePromotionRequest,
    CreateReleaseRequest, ListPromotionTargetsRequest, ListReleasesRequest, OnFailure,
    PromotionTarget, ReleaseState, Stage, TargetStatus, Verification, WatchPromotionRequest,
};
use tonic::transport::Channel;

use crate::{
    helpers::{fresh_database, rest_of},
    processes::ServerProcess,
};

/// `shop-dev` (development, `shop:2`) and `shop-stg` (staging, running `shop:1`), whose
/// coupling verifies the context `smoke` within the shortest timeout, 10 s.
async fn setup(channel: &Channel) {
    PipelineServiceClient::new(channel.clone())
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let mut apps = AppServiceClient::new(channel.clone());
    let mut couplings = CouplingServiceClient::new(channel.clone());
    for (name, stage) in [
        ("shop-dev", Stage::Development),
        ("shop-stg", Stage::Staging),
    ] {
        apps.create_app(CreateAppRequest { name: name.into() })
            .await
            .unwrap();
        let verification = (stage == Stage::Staging).then(|| Verification {
            contexts: vec!["smoke".into()],
            timeout_seconds: Some(10),
            http_checks: Vec::new(),
            on_failure: OnFailure::Rollback as i32,
        });
        couplings
            .create_coupling(CreateCouplingRequest {
                app: name.into(),
                pipeline: "shop".into(),
                stage: stage as i32,
                required_status_checks: None,
                promotion_policy: None,
                verification,
            })
            .await
            .unwrap();
    }
    let mut releases = ReleaseServiceClient::new(channel.clone());
    for (app, image) in [("shop-stg", "shop:1"), ("shop-dev", "shop:2")] {
        releases
            .create_release(CreateReleaseRequest {
                app: app.into(),
                image: image.into(),
                description: String::new(),
            })
            .await
            .unwrap();
    }
}

/// The promotion's only target, once it is in `status`.
async fn target_in(channel: &Channel, id: &str, status: TargetStatus) -> PromotionTarget {
    let started = Instant::now();
    let mut client = PromotionServiceClient::new(channel.clone());
    loop {
        let targets = client
            .list_promotion_targets(ListPromotionTargetsRequest {
                id: id.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .targets;
        if let Some(target) = targets.into_iter().find(|t| t.status == status as i32) {
            return target;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the target did not become {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn instant(timestamp: &prost_types::Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(timestamp.seconds, timestamp.nanos as u32).unwrap()
}

#[tokio::test]
async fn a_server_killed_while_verifying_is_decided_at_the_deadline_by_the_next_one() {
    let database = fresh_database().await;
    let flags = ["--lease-seconds", "2"];
    let mut first = ServerProcess::start_local(&database.url, &flags).await;
    let channel = first.channel().await;
    setup(&channel).await;
    let created = PromotionServiceClient::new(channel.clone())
        .create_promotion(CreatePromotionRequest {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(Created::Promotion(promotion)) = created.result else {
        panic!("expected a promotion: {created:?}");
    };
    let verifying = target_in(&channel, &promotion.id, TargetStatus::Verifying).await;
    let deadline = instant(
        verifying
            .verification
            .as_ref()
            .and_then(|v| v.deadline.as_ref())
            .expect("a stored deadline"),
    );
    // SIGKILL: no graceful shutdown, nothing handed over.
    first.kill();

    let second = ServerProcess::start_local(&database.url, &flags).await;
    let channel = second.channel().await;
    let failed = target_in(&channel, &promotion.id, TargetStatus::Failed).await;
    let late = instant(failed.updated_at.as_ref().unwrap()) - deadline;
    assert!(
        late >= chrono::Duration::zero() && late < chrono::Duration::seconds(2),
        "decided {late} after the deadline"
    );
    assert!(
        failed.error_message.contains("smoke: missing"),
        "{}",
        failed.error_message
    );

    let events = rest_of(
        &mut PromotionServiceClient::new(channel.clone())
            .watch_promotion(WatchPromotionRequest {
                id: promotion.id.clone(),
                after_sequence: 0,
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let count = |name: &str| events.iter().filter(|e| e.name == name).count();
    for once in [
        "target.verifying",
        "target.verification_failed",
        "target.rolled_back",
        "target.failed",
    ] {
        assert_eq!(count(once), 1, "{once}: {events:?}");
    }
    let releases = ReleaseServiceClient::new(channel)
        .list_releases(ListReleasesRequest {
            app: "shop-stg".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .releases;
    let versions: Vec<(i64, &str, i32)> = releases
        .iter()
        .map(|r| (r.version, r.image.as_str(), r.status))
        .collect();
    assert_eq!(
        versions,
        [
            (3, "shop:1", ReleaseState::Succeeded as i32),
            (2, "shop:2", ReleaseState::Failed as i32),
            (1, "shop:1", ReleaseState::Succeeded as i32),
        ],
        "one rollback, deployed by the restarted process"
    );
}
