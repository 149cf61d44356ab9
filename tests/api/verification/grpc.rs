//! Verification over gRPC: the coupling's policy, the `verifying` state on the progress
//! stream, statuses posted with `CreateReleaseStatus`, and the rollback as the target,
//! the stream and the app's releases show it.

use pipelines::proto::{
    create_promotion_response::Result as Created, CreateCouplingRequest, CreatePromotionRequest,
    CreateReleaseStatusRequest, GetAppCouplingRequest, HttpCheck, OnFailure, PromotionStatus,
    PromotionTarget, ReleaseState, Stage, StatusState, TargetStatus, Verification,
    VerificationState,
};

use crate::helpers::{next_event, rest_of, spawn_app, TestApp};

/// Pipeline `shop` over gRPC: `shop-dev` (development, `shop:2`) and `shop-stg` (staging,
/// running `shop:1`) coupled with a verification of the context `smoke`.
async fn shop(app: &TestApp, on_failure: OnFailure) {
    app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.create_app("shop-stg").await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    let coupling = app
        .couplings
        .clone()
        .create_coupling(CreateCouplingRequest {
            app: "shop-stg".into(),
            pipeline: "shop".into(),
            stage: Stage::Staging as i32,
            required_status_checks: None,
            promotion_policy: None,
            verification: Some(Verification {
                contexts: vec!["smoke".into()],
                timeout_seconds: None,
                http_checks: Vec::new(),
                on_failure: on_failure as i32,
            }),
        })
        .await
        .expect("create the verified coupling")
        .into_inner();
    let shown = coupling.verification.expect("the coupling shows it");
    assert_eq!(shown.timeout_seconds, Some(600), "the default is filled in");
    assert_eq!(shown.on_failure, on_failure as i32);
    app.create_release("shop-stg", "shop:1").await;
    app.create_release("shop-dev", "shop:2").await;
}

async fn promote(app: &TestApp) -> String {
    let created = app
        .promotions
        .clone()
        .create_promotion(CreatePromotionRequest {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            ..Default::default()
        })
        .await
        .expect("create the promotion")
        .into_inner();
    match created.result {
        Some(Created::Promotion(promotion)) => promotion.id,
        other => panic!("expected a promotion: {other:?}"),
    }
}

async fn post_status(app: &TestApp, release_id: &str, state: StatusState, description: &str) {
    app.releases
        .clone()
        .create_release_status(CreateReleaseStatusRequest {
            app: "shop-stg".into(),
            release_id: release_id.into(),
            context: "smoke".into(),
            name: "smoke".into(),
            state: state as i32,
            description: description.into(),
            ..Default::default()
        })
        .await
        .expect("post the status");
}

/// The only target, read now.
async fn the_target(app: &TestApp, id: &str) -> PromotionTarget {
    let mut targets = app.targets_of(id).await;
    assert_eq!(targets.len(), 1);
    targets.remove(0)
}

#[tokio::test]
async fn over_grpc_a_success_status_passes_the_verification() {
    let app = spawn_app().await;
    shop(&app, OnFailure::Rollback).await;
    let id = promote(&app).await;
    let mut stream = app.watch(&id, 0).await;
    let verifying = loop {
        let event = next_event(&mut stream).await.expect("target.verifying");
        if event.name == "target.verifying" {
            break event;
        }
    };
    assert_eq!(verifying.target_status, TargetStatus::Verifying as i32);
    let target = the_target(&app, &id).await;
    assert_eq!(target.status, TargetStatus::Verifying as i32);
    let verification = target.verification.expect("a verifying target shows it");
    assert_eq!(verification.state, VerificationState::Pending as i32);
    assert!(verification.deadline.is_some());
    let release = target.release.expect("the new release");
    assert_eq!(release.version, 2);

    post_status(&app, &release.id, StatusState::Success, "all green").await;
    let events = rest_of(&mut stream).await;
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["target.verified", "target.succeeded", "promotion.finished"],
        "{events:?}"
    );
    let target = the_target(&app, &id).await;
    assert_eq!(target.status, TargetStatus::Succeeded as i32);
    let verification = target.verification.expect("decided, still shown");
    assert_eq!(verification.state, VerificationState::Passed as i32);
    assert_eq!(verification.results.len(), 1);
    assert_eq!(verification.results[0].context, "smoke");
    assert_eq!(verification.results[0].state, "success");
    assert_eq!(verification.results[0].description, "all green");
    assert!(verification.rollback_release.is_none());
    let promotion = app.finished_promotion(&id).await;
    assert_eq!(promotion.status, PromotionStatus::Successful as i32);
}

#[tokio::test]
async fn over_grpc_a_failure_status_rolls_the_app_back() {
    let app = spawn_app().await;
    shop(&app, OnFailure::Rollback).await;
    let id = promote(&app).await;
    let mut stream = app.watch_until(&id, "target.verifying").await;
    let release = the_target(&app, &id)
        .await
        .release
        .expect("the new release");

    post_status(&app, &release.id, StatusState::Failure, "checkout broke").await;
    let events = rest_of(&mut stream).await;
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "target.verification_failed",
            "target.rolled_back",
            "target.failed",
            "promotion.finished"
        ],
        "{events:?}"
    );
    assert!(
        events[0]
            .message
            .contains("smoke: failure (checkout broke)"),
        "{}",
        events[0].message
    );
    assert!(events[1].message.contains("v3"), "{}", events[1].message);

    let target = the_target(&app, &id).await;
    assert_eq!(target.status, TargetStatus::Failed as i32);
    let verification = target.verification.expect("shown");
    assert_eq!(verification.state, VerificationState::Failed as i32);
    assert_eq!(verification.results[0].state, "failure");
    assert_eq!(
        verification.rollback_release.expect("the rollback").version,
        3
    );
    let releases = app.releases_of("shop-stg").await;
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
        ]
    );
    assert_eq!(
        releases[0].description,
        "Rollback to v1: verification of v2 failed"
    );
    let promotion = app.finished_promotion(&id).await;
    assert_eq!(promotion.status, PromotionStatus::Failed as i32);
}

#[tokio::test]
async fn over_grpc_an_error_status_with_keep_leaves_the_release_current() {
    let app = spawn_app().await;
    shop(&app, OnFailure::Keep).await;
    let id = promote(&app).await;
    let mut stream = app.watch_until(&id, "target.verifying").await;
    let release = the_target(&app, &id)
        .await
        .release
        .expect("the new release");

    post_status(&app, &release.id, StatusState::Error, "monitor down").await;
    let names: Vec<String> = rest_of(&mut stream)
        .await
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        [
            "target.verification_failed",
            "target.failed",
            "promotion.finished"
        ]
    );
    let releases = app.releases_of("shop-stg").await;
    assert_eq!(releases.len(), 2, "nothing rolled back");
    assert_eq!(releases[0].version, 2);
    assert_eq!(releases[0].status, ReleaseState::Succeeded as i32);
}

#[tokio::test]
async fn over_grpc_a_dry_run_lists_the_verification_and_an_unlisted_host_is_refused() {
    let app = spawn_app().await;
    shop(&app, OnFailure::Rollback).await;
    let planned = app
        .promotions
        .clone()
        .create_promotion(CreatePromotionRequest {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("a dry run")
        .into_inner();
    let Some(Created::Plan(plan)) = planned.result else {
        panic!("expected a plan: {planned:?}");
    };
    let verification = plan.targets[0]
        .verification
        .as_ref()
        .expect("the plan lists the target's verification");
    assert_eq!(verification.contexts, ["smoke"]);
    assert_eq!(verification.timeout_seconds, Some(600));
    assert!(
        app.releases_of("shop-stg").await.len() == 1,
        "nothing written"
    );

    // The test server allows 127.0.0.1 and *.verify.test only.
    app.create_app("shop-qa").await;
    let refused = app
        .couplings
        .clone()
        .create_coupling(CreateCouplingRequest {
            app: "shop-qa".into(),
            pipeline: "shop".into(),
            stage: Stage::Staging as i32,
            required_status_checks: None,
            promotion_policy: None,
            verification: Some(Verification {
                contexts: Vec::new(),
                timeout_seconds: None,
                http_checks: vec![HttpCheck {
                    name: "health".into(),
                    url: "http://shop.example.com/healthz".into(),
                    ..Default::default()
                }],
                on_failure: OnFailure::Rollback as i32,
            }),
        })
        .await
        .expect_err("a host outside the allowlist");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("verification.http_checks[0].url")
            && refused.message().contains("--verification-hosts"),
        "{}",
        refused.message()
    );
    let coupling = app
        .couplings
        .clone()
        .get_app_coupling(GetAppCouplingRequest {
            app: "shop-qa".into(),
        })
        .await
        .expect_err("the refused coupling was not made");
    assert_eq!(coupling.code(), tonic::Code::NotFound);
}
