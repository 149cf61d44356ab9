//! Promotions over gRPC: every validation rule in the contract's order, the outcomes, the
//! bypass, dry runs, idempotency, cancel, queueing and the progress stream.

use std::{sync::Arc, time::Duration};

use pipelines::proto::{
    create_promotion_response::Result as Created, CancelPromotionRequest, ConfigVarChange,
    CreatePromotionRequest, CreateReleaseRequest, CreateReleaseStatusRequest, GetPromotionRequest,
    ListPromotionsRequest, ListReleasesRequest, PatchConfigVarsRequest, Promotion, PromotionPlan,
    PromotionStatus, ReleaseState, Stage, StatusState, TargetStatus, WatchPromotionRequest,
};
use prost::Message;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::helpers::{
    assert_status, next_event, rest_of, spawn_app, spawn_app_deploying_with, with_token, TestApp,
    TestDeployer,
};

/// shop: shop-dev (development) → shop-stg-a, shop-stg-b (staging), shop-prod (production).
async fn shop(app: &TestApp) {
    app.create_pipeline("shop").await;
    for name in ["shop-dev", "shop-stg-a", "shop-stg-b", "shop-prod"] {
        app.create_app(name).await;
    }
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    app.couple("shop-stg-a", "shop", Stage::Staging, &[]).await;
    app.couple("shop-stg-b", "shop", Stage::Staging, &[]).await;
    app.couple(
        "shop-prod",
        "shop",
        Stage::Production,
        &["ci/e2e", "qa/signoff"],
    )
    .await;
}

fn promote(source: &str) -> CreatePromotionRequest {
    CreatePromotionRequest {
        pipeline: "shop".into(),
        source_app: source.into(),
        ..Default::default()
    }
}

async fn create(
    app: &TestApp,
    request: CreatePromotionRequest,
) -> Result<Promotion, tonic::Status> {
    match app
        .promotions
        .clone()
        .create_promotion(request)
        .await?
        .into_inner()
        .result
    {
        Some(Created::Promotion(promotion)) => Ok(promotion),
        other => panic!("expected a promotion, got {other:?}"),
    }
}

async fn plan(app: &TestApp, request: CreatePromotionRequest) -> PromotionPlan {
    match app
        .promotions
        .clone()
        .create_promotion(CreatePromotionRequest {
            dry_run: true,
            ..request
        })
        .await
        .expect("dry run")
        .into_inner()
        .result
    {
        Some(Created::Plan(plan)) => plan,
        other => panic!("expected a plan, got {other:?}"),
    }
}

/// The shop pipeline, a release on shop-dev, and a promotion of it to shop-stg-a.
async fn promotion_to_stg_a(app: &TestApp) -> Promotion {
    shop(app).await;
    app.create_release("shop-dev", "shop:1").await;
    create(
        app,
        CreatePromotionRequest {
            targets: vec!["shop-stg-a".into()],
            ..promote("shop-dev")
        },
    )
    .await
    .unwrap()
}

/// A server whose deployments wait at the returned gate, and [`promotion_to_stg_a`] on it.
async fn gated_promotion_to_stg_a() -> (TestApp, Arc<tokio::sync::Semaphore>, Promotion) {
    let (deployer, gate) = TestDeployer::gated();
    let app = spawn_app_deploying_with(deployer).await;
    let created = promotion_to_stg_a(&app).await;
    (app, gate, created)
}

async fn promotion_count(app: &TestApp) -> usize {
    app.promotions
        .clone()
        .list_promotions(ListPromotionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .promotions
        .len()
}

async fn post_status(
    app: &TestApp,
    app_name: &str,
    release_id: &str,
    context: &str,
    state: StatusState,
) -> String {
    app.releases
        .clone()
        .create_release_status(CreateReleaseStatusRequest {
            app: app_name.into(),
            release_id: release_id.into(),
            context: context.into(),
            name: context.into(),
            state: state as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id
}

#[tokio::test]
async fn a_promotion_runs_every_target_to_success() {
    let app = spawn_app().await;
    shop(&app).await;
    let release = app.create_release("shop-dev", "registry/shop:1.0").await;
    let created = create(&app, promote("shop-dev")).await.unwrap();
    assert_eq!(created.status, PromotionStatus::Pending as i32);
    assert_eq!(created.created_by, "protected-mode");
    let source = created.source.clone().unwrap();
    assert_eq!(source.release.unwrap().id, release.id);

    let finished = app.finished_promotion(&created.id).await;
    assert_eq!(finished.status, PromotionStatus::Successful as i32);
    let targets = app.targets_of(&created.id).await;
    let names: Vec<String> = targets
        .iter()
        .map(|t| t.app.clone().unwrap().name)
        .collect();
    assert_eq!(
        names,
        ["shop-stg-a", "shop-stg-b"],
        "every app at the next stage"
    );
    for target in &targets {
        assert_eq!(target.status, TargetStatus::Succeeded as i32);
        assert!(target.error_message.is_empty());
        let releases = app
            .releases
            .clone()
            .list_releases(ListReleasesRequest {
                app: target.app.clone().unwrap().name,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .releases;
        assert_eq!(releases.len(), 1);
        let promoted = &releases[0];
        assert_eq!(Some(&promoted.id), target.release.as_ref().map(|r| &r.id));
        assert_eq!(
            promoted.image, "registry/shop:1.0",
            "the exact image tested"
        );
        assert_eq!(promoted.status, ReleaseState::Succeeded as i32);
        let from = promoted.promoted_from.clone().unwrap();
        assert_eq!(from.release_id, release.id);
        assert_eq!(from.promotion_id, created.id);
        assert_eq!(from.app.unwrap().name, "shop-dev");
    }
}

/// With a deployer that works within the database, a claimed batch runs in one
/// transaction; its events still tell every step, in order, each with the promotion's
/// status when it happened.
/// A release made on a target app while a batch run in one transaction deploys waits for
/// that batch to number and store its own release, then takes the next version: the two
/// never meet on one version, and the batch runs once. Needs PostgreSQL: on SQLite's one
/// connection the release waits for the batch's transaction anyway.
#[tokio::test]
async fn a_release_made_while_a_batch_deploys_takes_the_next_version() {
    let (deployer, gate) = TestDeployer::gated_within_the_database();
    let app = spawn_app_deploying_with(deployer.clone()).await;
    if !app.database.is_postgres() {
        eprintln!("SKIPPED on SQLite: the racing release needs a second connection");
        return;
    }
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    let created = create(&app, promote("shop-dev")).await.unwrap();
    deployer.until_arrived("shop-stg-a", 1).await;
    let mut releases = app.releases.clone();
    let hotfix = tokio::spawn(async move {
        releases
            .create_release(CreateReleaseRequest {
                app: "shop-stg-a".into(),
                image: "hotfix:1".into(),
                description: String::new(),
            })
            .await
            .map(|response| response.into_inner())
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !hotfix.is_finished(),
        "the release waits for the numbering the deploying batch holds"
    );
    gate.add_permits(100);
    let hotfix = hotfix.await.unwrap().expect("the release is made");
    assert_eq!(hotfix.version, 2);

    let events = app.watch_to_end(&created.id).await;
    let finished = app.finished_promotion(&created.id).await;
    assert_eq!(finished.status, PromotionStatus::Successful as i32);
    let deployed_a = deployer
        .deployments()
        .iter()
        .filter(|name| *name == "shop-stg-a")
        .count();
    assert_eq!(
        deployed_a,
        1,
        "the batch ran once: {:?}",
        deployer.deployments()
    );
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as i64).collect::<Vec<i64>>());
    let made: Vec<(String, i64)> = events
        .iter()
        .filter(|e| e.name == "target.release_created")
        .map(|e| {
            (
                e.app.clone().unwrap().name,
                e.release.clone().unwrap().version,
            )
        })
        .collect();
    assert_eq!(
        made,
        [("shop-stg-a".to_owned(), 1), ("shop-stg-b".to_owned(), 1)]
    );
    let mut releases: Vec<(i64, String, i32)> = app
        .releases_of("shop-stg-a")
        .await
        .into_iter()
        .map(|r| (r.version, r.image, r.status))
        .collect();
    releases.sort();
    assert_eq!(
        releases,
        [
            (1, "shop:1".to_owned(), ReleaseState::Succeeded as i32),
            (2, "hotfix:1".to_owned(), hotfix.status)
        ]
    );
}

#[tokio::test]
async fn a_batch_run_in_one_transaction_tells_every_step() {
    let app =
        spawn_app_deploying_with(TestDeployer::failing_within_the_database(&["shop-stg-b"])).await;
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    let created = create(&app, promote("shop-dev")).await.unwrap();
    let events = app.watch_to_end(&created.id).await;
    let steps: Vec<(&str, String)> = events
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.app.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
            )
        })
        .collect();
    let step = |name: &'static str, app: &str| (name, app.to_owned());
    assert_eq!(
        steps,
        [
            step("promotion.created", ""),
            step("target.running", "shop-stg-a"),
            step("target.running", "shop-stg-b"),
            step("target.release_created", "shop-stg-a"),
            step("target.release_created", "shop-stg-b"),
            step("target.succeeded", "shop-stg-a"),
            step("target.failed", "shop-stg-b"),
            step("promotion.finished", ""),
        ]
    );
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=8).collect::<Vec<i64>>());
    for event in &events[1..7] {
        assert_eq!(
            event.promotion_status,
            PromotionStatus::Running as i32,
            "{}",
            event.name
        );
    }
    assert_eq!(
        events[7].promotion_status,
        PromotionStatus::PartiallyFailed as i32
    );
    assert_eq!(events[5].release.clone().unwrap().version, 1);

    let finished = app.finished_promotion(&created.id).await;
    assert_eq!(finished.status, PromotionStatus::PartiallyFailed as i32);
    let targets = app.targets_of(&created.id).await;
    let outcomes: Vec<(i32, bool, bool)> = targets
        .iter()
        .map(|t| {
            (
                t.status,
                t.release.is_some(),
                t.error_message.contains("refuses"),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (TargetStatus::Succeeded as i32, true, false),
            (TargetStatus::Failed as i32, true, true),
        ]
    );
    for (name, state) in [
        ("shop-stg-a", ReleaseState::Succeeded),
        ("shop-stg-b", ReleaseState::Failed),
    ] {
        let releases = app.releases_of(name).await;
        assert_eq!(releases.len(), 1, "{name}");
        assert_eq!(releases[0].status, state as i32, "{name}");
    }
}

#[tokio::test]
async fn outcomes_are_successful_failed_or_partially_failed() {
    // The test deployer refuses shop-stg-b, so exactly that target fails, every time.
    let app = spawn_app_deploying_with(TestDeployer::failing(&["shop-stg-b"])).await;
    shop(&app).await;
    app.create_app("shop-stg-c").await;
    app.couple("shop-stg-c", "shop", Stage::Staging, &[]).await;
    app.create_release("shop-dev", "shop:1").await;

    let partial = create(&app, promote("shop-dev")).await.unwrap();
    let finished = app.finished_promotion(&partial.id).await;
    assert_eq!(finished.status, PromotionStatus::PartiallyFailed as i32);
    let targets = app.targets_of(&partial.id).await;
    let failed: Vec<_> = targets
        .iter()
        .filter(|t| t.status == TargetStatus::Failed as i32)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].app.clone().unwrap().name, "shop-stg-b");
    assert!(failed[0]
        .error_message
        .contains("test deployer refuses 'shop-stg-b'"));
    // The failed target's release is recorded as failed and is not current.
    let releases = app.releases_of("shop-stg-b").await;
    assert_eq!(releases[0].status, ReleaseState::Failed as i32);
    let coupling = app
        .couplings
        .clone()
        .get_app_coupling(pipelines::proto::GetAppCouplingRequest {
            app: "shop-stg-b".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        coupling.release.is_none(),
        "the current release is unchanged"
    );

    let all_failed = create(
        &app,
        CreatePromotionRequest {
            targets: vec!["shop-stg-b".into()],
            ..promote("shop-dev")
        },
    )
    .await
    .unwrap();
    assert_eq!(
        app.finished_promotion(&all_failed.id).await.status,
        PromotionStatus::Failed as i32
    );
    let all_good = create(
        &app,
        CreatePromotionRequest {
            targets: vec!["shop-stg-a".into(), "shop-stg-c".into()],
            ..promote("shop-dev")
        },
    )
    .await
    .unwrap();
    assert_eq!(
        app.finished_promotion(&all_good.id).await.status,
        PromotionStatus::Successful as i32
    );
}

#[tokio::test]
async fn validation_rejects_in_the_contracts_order_and_writes_nothing() {
    let app = spawn_app().await;
    shop(&app).await;
    app.create_pipeline("other").await;
    app.create_app("loner").await;
    app.create_app("other-dev").await;
    app.couple("other-dev", "other", Stage::Development, &[])
        .await;
    app.create_app("shop-pr").await;
    app.couple("shop-pr", "shop", Stage::Review, &[]).await;

    // No release yet on shop-dev.
    assert_status(
        create(&app, promote("shop-dev")).await,
        Code::InvalidArgument,
        &["source_release_id", "no succeeded release"],
    );
    let release = app.create_release("shop-dev", "shop:1").await;
    let foreign = app.create_release("other-dev", "other:1").await;

    let cases: Vec<(CreatePromotionRequest, Code, Vec<&str>)> = vec![
        (
            CreatePromotionRequest {
                pipeline: "ghost".into(),
                ..promote("shop-dev")
            },
            Code::NotFound,
            vec!["pipeline", "ghost"],
        ),
        (promote("ghost"), Code::NotFound, vec!["app", "ghost"]),
        (
            promote("loner"),
            Code::InvalidArgument,
            vec!["invalid source_app:", "not coupled"],
        ),
        (
            promote("other-dev"),
            Code::InvalidArgument,
            vec!["invalid source_app:", "not coupled to pipeline 'shop'"],
        ),
        (
            promote("shop-prod"),
            Code::InvalidArgument,
            vec!["invalid source_app:", "no next stage"],
        ),
        (
            CreatePromotionRequest {
                targets: vec!["ghost".into()],
                ..promote("shop-dev")
            },
            Code::NotFound,
            vec!["ghost"],
        ),
        (
            CreatePromotionRequest {
                targets: vec!["shop-prod".into()],
                ..promote("shop-dev")
            },
            Code::InvalidArgument,
            vec!["invalid targets[0]:", "shop-prod", "staging"],
        ),
        (
            CreatePromotionRequest {
                targets: vec!["shop-stg-a".into(), "loner".into()],
                ..promote("shop-dev")
            },
            Code::InvalidArgument,
            vec!["invalid targets[1]:", "loner"],
        ),
        (
            CreatePromotionRequest {
                targets: vec!["shop-stg-a".into(), "shop-stg-a".into()],
                ..promote("shop-dev")
            },
            Code::InvalidArgument,
            vec!["invalid targets[1]:", "twice"],
        ),
        (
            CreatePromotionRequest {
                targets: vec!["shop-dev".into()],
                ..promote("shop-dev")
            },
            Code::InvalidArgument,
            vec!["invalid targets[0]:", "source"],
        ),
        // Targets are judged in the order they are listed, whatever is wrong later.
        (
            CreatePromotionRequest {
                targets: vec!["shop-dev".into(), "ghost".into()],
                ..promote("shop-dev")
            },
            Code::InvalidArgument,
            vec!["invalid targets[0]:", "source"],
        ),
        (
            CreatePromotionRequest {
                targets: vec!["ghost".into(), String::new()],
                ..promote("shop-dev")
            },
            Code::NotFound,
            vec!["ghost"],
        ),
        (
            CreatePromotionRequest {
                targets: vec!["shop-stg-a".into(), String::new(), "ghost".into()],
                ..promote("shop-dev")
            },
            Code::InvalidArgument,
            vec!["invalid targets[1]:", "required"],
        ),
        (
            CreatePromotionRequest {
                source_release_id: foreign.id.clone(),
                ..promote("shop-dev")
            },
            Code::NotFound,
            vec!["release", &foreign.id],
        ),
        (
            CreatePromotionRequest {
                source_release_id: "v1".into(),
                ..promote("shop-dev")
            },
            Code::InvalidArgument,
            vec!["invalid source_release_id:"],
        ),
        (
            CreatePromotionRequest {
                request_id: "r".repeat(256),
                ..promote("shop-dev")
            },
            Code::InvalidArgument,
            vec!["request_id"],
        ),
    ];
    for (request, code, fragments) in cases {
        assert_status(create(&app, request).await, code, &fragments);
    }
    // A review app promotes to development; with no app at that stage… shop-dev is there,
    // so use a pipeline whose next stage is empty.
    app.create_pipeline("lonely").await;
    app.create_app("lonely-dev").await;
    app.couple("lonely-dev", "lonely", Stage::Development, &[])
        .await;
    app.create_release("lonely-dev", "l:1").await;
    assert_status(
        create(
            &app,
            CreatePromotionRequest {
                pipeline: "lonely".into(),
                ..promote("lonely-dev")
            },
        )
        .await,
        Code::InvalidArgument,
        &["targets", "no app is coupled at stage staging"],
    );
    assert_eq!(promotion_count(&app).await, 0, "nothing was written");
    assert!(!release.id.is_empty());
}

#[tokio::test]
async fn unmet_checks_are_failed_precondition_with_one_violation_each() {
    let app = spawn_app().await;
    shop(&app).await;
    let release = app.create_release("shop-stg-a", "shop:1").await;
    post_status(
        &app,
        "shop-stg-a",
        &release.id,
        "ci/e2e",
        StatusState::Pending,
    )
    .await;

    let status = create(&app, promote("shop-stg-a"))
        .await
        .expect_err("blocked");
    assert_eq!(status.code(), Code::FailedPrecondition);
    for fragment in [
        "shop-prod (production): ci/e2e [pending]",
        "shop-prod (production): qa/signoff [missing]",
    ] {
        assert!(status.message().contains(fragment), "{}", status.message());
    }
    let details = tonic_types::pb::Status::decode(status.details()).expect("google.rpc.Status");
    assert_eq!(details.details.len(), 1);
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.PreconditionFailure"
    );
    let failure =
        tonic_types::pb::PreconditionFailure::decode(details.details[0].value.as_slice()).unwrap();
    let subjects: Vec<&str> = failure
        .violations
        .iter()
        .map(|v| v.subject.as_str())
        .collect();
    assert_eq!(
        subjects,
        [
            "shop-prod/production/ci/e2e",
            "shop-prod/production/qa/signoff"
        ]
    );
    assert_eq!(promotion_count(&app).await, 0);

    // A failing status does not satisfy a check either.
    post_status(
        &app,
        "shop-stg-a",
        &release.id,
        "qa/signoff",
        StatusState::Failure,
    )
    .await;
    assert_status(
        create(&app, promote("shop-stg-a")).await,
        Code::FailedPrecondition,
        &["qa/signoff [failure]"],
    );
}

#[tokio::test]
async fn only_an_admin_may_bypass_checks_and_the_bypass_is_recorded() {
    let app = spawn_app().await;
    shop(&app).await;
    let release = app.create_release("shop-stg-a", "shop:1").await;
    let writer = app.create_token("ci-bot", "write").await;
    let admin = app.create_token("oncall", "admin").await;
    let bypass = || CreatePromotionRequest {
        safe: Some(false),
        ..promote("shop-stg-a")
    };

    let denied = app
        .promotions
        .clone()
        .create_promotion(with_token(bypass(), &writer))
        .await;
    assert_status(
        denied,
        Code::PermissionDenied,
        &["bypassing", "admin", "ci-bot"],
    );
    let blocked = app
        .promotions
        .clone()
        .create_promotion(with_token(promote("shop-stg-a"), &admin))
        .await;
    assert_status(blocked, Code::FailedPrecondition, &["ci/e2e"]);
    assert_eq!(
        app.promotions
            .clone()
            .list_promotions(with_token(ListPromotionsRequest::default(), &admin))
            .await
            .unwrap()
            .into_inner()
            .promotions
            .len(),
        0
    );

    let created = app
        .promotions
        .clone()
        .create_promotion(with_token(bypass(), &admin))
        .await
        .unwrap()
        .into_inner();
    let Some(Created::Promotion(promotion)) = created.result else {
        panic!("a promotion")
    };
    assert_eq!(promotion.created_by, "oncall");
    assert!(!promotion.safe);
    let overridden: Vec<String> = promotion
        .overridden_checks
        .iter()
        .map(|c| c.context.clone())
        .collect();
    assert_eq!(overridden, ["ci/e2e", "qa/signoff"]);
    assert_eq!(
        promotion.overridden_checks[0].app.clone().unwrap().name,
        "shop-prod"
    );

    // safe:false with nothing to bypass is an ordinary promotion, open to writers.
    for context in ["ci/e2e", "qa/signoff"] {
        app.releases
            .clone()
            .create_release_status(with_token(
                CreateReleaseStatusRequest {
                    app: "shop-stg-a".into(),
                    release_id: release.id.clone(),
                    context: context.into(),
                    name: context.into(),
                    state: StatusState::Success as i32,
                    ..Default::default()
                },
                &writer,
            ))
            .await
            .unwrap();
    }
    let ordinary = app
        .promotions
        .clone()
        .create_promotion(with_token(bypass(), &writer))
        .await
        .unwrap()
        .into_inner();
    let Some(Created::Promotion(ordinary)) = ordinary.result else {
        panic!("a promotion")
    };
    assert!(ordinary.overridden_checks.is_empty());
    assert_eq!(ordinary.created_by, "ci-bot");
}

#[tokio::test]
async fn safe_promotion_refuses_config_drift_in_either_direction() {
    let app = spawn_app().await;
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    let set = |app_name: &str, keys: &[&str]| PatchConfigVarsRequest {
        app: app_name.into(),
        changes: keys
            .iter()
            .map(|k| ConfigVarChange {
                key: k.to_string(),
                value: Some("v".into()),
            })
            .collect(),
    };
    let mut apps = app.apps.clone();
    apps.patch_config_vars(set("shop-dev", &["DATABASE_URL", "NEW_FLAG"]))
        .await
        .unwrap();
    apps.patch_config_vars(set("shop-stg-a", &["DATABASE_URL", "OLD_FLAG"]))
        .await
        .unwrap();
    apps.patch_config_vars(set("shop-stg-b", &["DATABASE_URL", "NEW_FLAG"]))
        .await
        .unwrap();

    let safe = || CreatePromotionRequest {
        safe: Some(true),
        ..promote("shop-dev")
    };
    let status = create(&app, safe()).await.expect_err("drift");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("'shop-stg-a' lacks NEW_FLAG"),
        "{}",
        status.message()
    );
    assert!(
        status
            .message()
            .contains("source 'shop-dev' lacks OLD_FLAG"),
        "{}",
        status.message()
    );
    let details = tonic_types::pb::Status::decode(status.details()).unwrap();
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/pipelines.v1.ConfigDrift"
    );
    let drift = pipelines::proto::ConfigDrift::decode(details.details[0].value.as_slice()).unwrap();
    assert_eq!(drift.targets.len(), 1, "shop-stg-b matches");
    assert_eq!(drift.targets[0].app.clone().unwrap().name, "shop-stg-a");
    assert_eq!(drift.targets[0].missing_on_target, ["NEW_FLAG"]);
    assert_eq!(drift.targets[0].missing_on_source, ["OLD_FLAG"]);
    assert_eq!(promotion_count(&app).await, 0);

    // Values never matter, and without `safe` drift does not block.
    let matching = CreatePromotionRequest {
        targets: vec!["shop-stg-b".into()],
        ..safe()
    };
    let promoted = create(&app, matching).await.expect("keys match");
    assert!(promoted.safe);
    create(&app, promote("shop-dev"))
        .await
        .expect("not safe: allowed");
}

#[tokio::test]
async fn a_dry_run_plans_everything_and_writes_nothing() {
    let app = spawn_app().await;
    shop(&app).await;
    let release = app.create_release("shop-stg-a", "shop:1").await;
    post_status(
        &app,
        "shop-stg-a",
        &release.id,
        "ci/e2e",
        StatusState::Success,
    )
    .await;
    let planned = plan(
        &app,
        CreatePromotionRequest {
            safe: Some(false),
            ..promote("shop-stg-a")
        },
    )
    .await;
    assert_eq!(planned.source_stage, Stage::Staging as i32);
    assert_eq!(planned.target_stage, Stage::Production as i32);
    assert_eq!(planned.source.unwrap().release.unwrap().id, release.id);
    let targets: Vec<String> = planned
        .targets
        .iter()
        .map(|t| t.app.clone().unwrap().name)
        .collect();
    assert_eq!(targets, ["shop-prod"]);
    let verdicts: Vec<(String, bool, bool)> = planned
        .checks
        .iter()
        .map(|v| (v.check.clone().unwrap().context, v.satisfied, v.overridden))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("ci/e2e".to_owned(), true, false),
            ("qa/signoff".to_owned(), false, true)
        ]
    );
    assert_eq!(planned.checks[0].state, Some(StatusState::Success as i32));
    assert_eq!(planned.checks[1].state, None);
    assert_eq!(promotion_count(&app).await, 0);
    let releases = app
        .releases
        .clone()
        .list_releases(ListReleasesRequest {
            app: "shop-prod".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(releases.releases.is_empty());
}

#[tokio::test]
async fn the_stream_sends_history_then_live_events_and_ends() {
    let (app, gate, created) = gated_promotion_to_stg_a().await;

    let mut stream = app.watch(&created.id, 0).await;
    let mut seen = Vec::new();
    // History and the steps before the deployment, which the gate holds.
    while seen.len() < 3 {
        seen.push(next_event(&mut stream).await.expect("an event"));
    }
    assert_eq!(app.hub.watched_promotions(), 1);
    gate.add_permits(1);
    seen.extend(rest_of(&mut stream).await);
    let names: Vec<&str> = seen.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "promotion.created",
            "target.running",
            "target.release_created",
            "target.succeeded",
            "promotion.finished"
        ]
    );
    let sequences: Vec<i64> = seen.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    assert_eq!(seen[3].app.clone().unwrap().name, "shop-stg-a");
    assert_eq!(seen[3].target_status, TargetStatus::Succeeded as i32);
    assert_eq!(seen[3].release.clone().unwrap().version, 1);
    assert_eq!(seen[4].promotion_status, PromotionStatus::Successful as i32);
    assert!(seen
        .iter()
        .all(|e| e.created_at.is_some() && !e.message.is_empty()));

    // Resuming after a sequence sends only what came after it, then ends.
    let resumed: Vec<i64> = app
        .promotions
        .clone()
        .watch_promotion(WatchPromotionRequest {
            id: created.id.clone(),
            after_sequence: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .map(|e| e.unwrap().sequence)
        .collect()
        .await;
    assert_eq!(resumed, [4, 5]);
    assert_status(
        app.promotions
            .clone()
            .watch_promotion(WatchPromotionRequest {
                id: created.id.clone(),
                after_sequence: -1,
            })
            .await
            .map(|_| ()),
        Code::InvalidArgument,
        &["after_sequence"],
    );
    assert_status(
        app.promotions
            .clone()
            .watch_promotion(WatchPromotionRequest {
                id: uuid::Uuid::new_v4().to_string(),
                after_sequence: 0,
            })
            .await
            .map(|_| ()),
        Code::NotFound,
        &["promotion"],
    );
}

#[tokio::test]
async fn a_watcher_that_goes_away_frees_its_resources() {
    let (deployer, gate) = TestDeployer::gated();
    let app = spawn_app_deploying_with(deployer).await;
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    let created = create(&app, promote("shop-dev")).await.unwrap();
    let mut stream = app
        .promotions
        .clone()
        .watch_promotion(WatchPromotionRequest {
            id: created.id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    stream.next().await.unwrap().unwrap();
    assert_eq!(app.hub.watched_promotions(), 1);
    drop(stream);
    let mut freed = false;
    for _ in 0..100 {
        if app.hub.watched_promotions() == 0 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the server dropped the watcher's subscription");
    gate.add_permits(10);
    app.finished_promotion(&created.id).await;
}

#[tokio::test]
async fn request_ids_make_creation_idempotent() {
    let app = spawn_app().await;
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    let keyed = || CreatePromotionRequest {
        request_id: "deploy-42".into(),
        ..promote("shop-dev")
    };
    let attempts: Vec<_> = (0..6)
        .map(|_| {
            let mut client = app.promotions.clone();
            tokio::spawn(async move { client.create_promotion(keyed()).await })
        })
        .collect();
    let mut ids = Vec::new();
    for attempt in attempts {
        let response = attempt
            .await
            .unwrap()
            .expect("every retry answers")
            .into_inner();
        let Some(Created::Promotion(promotion)) = response.result else {
            panic!()
        };
        ids.push(promotion.id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one promotion for every concurrent retry");
    assert_eq!(promotion_count(&app).await, 1);
    let different = CreatePromotionRequest {
        targets: vec!["shop-stg-a".into()],
        ..keyed()
    };
    assert_status(
        create(&app, different).await,
        Code::InvalidArgument,
        &["request_id", "deploy-42"],
    );
    assert_eq!(promotion_count(&app).await, 1);
}

#[tokio::test]
async fn cancel_stops_pending_targets_and_lets_running_ones_finish() {
    let (deployer, gate) = TestDeployer::gated();
    let database = crate::helpers::fresh_database().await;
    let mut settings = crate::helpers::settings_for(&database.url);
    settings.engine.max_parallel_targets = 1;
    let app = crate::helpers::spawn_app_with_deployer(settings, database, deployer.clone()).await;
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    let created = create(&app, promote("shop-dev")).await.unwrap();
    // Wait until the first target is deploying (held at the gate).
    let mut stream = app.watch_until(&created.id, "target.release_created").await;
    let canceled = app
        .promotions
        .clone()
        .cancel_promotion(CancelPromotionRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        canceled.status,
        PromotionStatus::Running as i32,
        "a running target is still deploying"
    );
    gate.add_permits(10);
    let rest: Vec<String> = rest_of(&mut stream)
        .await
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        rest.contains(&"target.canceled".to_owned())
            || rest.iter().any(|n| n == "target.succeeded"),
        "{rest:?}"
    );
    let finished = app
        .promotions
        .clone()
        .get_promotion(GetPromotionRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(finished.status, PromotionStatus::Canceled as i32);
    let targets = app.targets_of(&created.id).await;
    let statuses: Vec<i32> = targets.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            TargetStatus::Succeeded as i32,
            TargetStatus::Canceled as i32
        ]
    );
    assert_eq!(
        deployer.deployments(),
        ["shop-stg-a"],
        "the canceled target never deployed"
    );

    assert_status(
        app.promotions
            .clone()
            .cancel_promotion(CancelPromotionRequest {
                id: created.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        &["already finished"],
    );
}

/// The shop pipeline with a release on `shop-dev`, deploying only as the gate allows.
async fn shop_deploying_behind_a_gate() -> (TestApp, std::sync::Arc<tokio::sync::Semaphore>) {
    let (deployer, gate) = TestDeployer::gated();
    let app = spawn_app_deploying_with(deployer).await;
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    (app, gate)
}

/// A promotion from `shop-dev` to `shop-stg-a` only.
fn only_a() -> CreatePromotionRequest {
    CreatePromotionRequest {
        targets: vec!["shop-stg-a".into()],
        ..promote("shop-dev")
    }
}

#[tokio::test]
async fn a_target_behind_several_promotions_says_it_is_queued_once() {
    let (app, gate) = shop_deploying_behind_a_gate().await;
    let first = create(&app, only_a()).await.unwrap();
    let second = create(&app, only_a()).await.unwrap();
    let third = create(&app, only_a()).await.unwrap();
    // The third waits behind the first, then behind the second once the first is done.
    let mut stream = app.watch(&third.id, 0).await;
    let announced = loop {
        let event = next_event(&mut stream).await.expect("an event");
        if event.name == "target.queued" {
            break event;
        }
    };
    assert_eq!(announced.waiting_for_promotion_id, first.id);
    gate.add_permits(10);
    for id in [&first.id, &second.id, &third.id] {
        app.finished_promotion(id).await;
    }
    let events = app.watch_to_end(&third.id).await;
    let queued: Vec<_> = events
        .iter()
        .filter(|event| event.name == "target.queued")
        .collect();
    assert_eq!(queued.len(), 1, "{events:#?}");
    assert_eq!(queued[0].waiting_for_promotion_id, first.id);
    let second_events = app.watch_to_end(&second.id).await;
    assert_eq!(
        second_events
            .iter()
            .filter(|event| event.name == "target.queued")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_busy_target_app_queues_later_promotions_in_order() {
    let (app, gate) = shop_deploying_behind_a_gate().await;
    let first = create(&app, only_a()).await.unwrap();
    let second = create(&app, only_a()).await.unwrap();
    let queued = plan(&app, only_a()).await;
    assert_eq!(
        queued.targets[0].busy_with_promotion_id, first.id,
        "a dry run reports the busy target"
    );

    // The second waits behind the first and says so.
    let mut stream = app.watch(&second.id, 0).await;
    let queued_event = loop {
        let event = next_event(&mut stream).await.expect("an event");
        if event.name == "target.queued" {
            break event;
        }
        assert_ne!(
            event.name, "target.running",
            "the second must not start first"
        );
    };
    assert!(
        queued_event.message.contains(&first.id),
        "{}",
        queued_event.message
    );
    assert_eq!(queued_event.waiting_for_promotion_id, first.id);
    assert_eq!(queued_event.app.clone().unwrap().name, "shop-stg-a");
    gate.add_permits(10);
    let first_done = app.finished_promotion(&first.id).await;
    let second_done = app.finished_promotion(&second.id).await;
    assert_eq!(first_done.status, PromotionStatus::Successful as i32);
    assert_eq!(second_done.status, PromotionStatus::Successful as i32);
    let versions: Vec<i64> = app
        .releases_of("shop-stg-a")
        .await
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [2, 1]);
    let first_release = app.targets_of(&first.id).await[0].release.clone().unwrap();
    assert_eq!(first_release.version, 1, "the earlier promotion ran first");
}

#[tokio::test]
async fn a_target_can_never_get_a_second_release() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    let created = promotion_to_stg_a(&app).await;
    app.finished_promotion(&created.id).await;
    let target = app.targets_of(&created.id).await.remove(0);
    let db = pipelines::store::connect(&app.database.url).await.unwrap();
    let stg = app
        .apps
        .clone()
        .get_app(pipelines::proto::GetAppRequest {
            app: "shop-stg-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let duplicate = pipelines::store::entities::release::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        app_id: Set(uuid::Uuid::parse_str(&stg.id).unwrap()),
        version: Set(99),
        image: Set("x".into()),
        description: Set(String::new()),
        status: Set("pending".into()),
        promoted_from_app_id: Set(None),
        promoted_from_release_id: Set(None),
        promoted_from_promotion_id: Set(None),
        promotion_target_id: Set(Some(uuid::Uuid::parse_str(&target.id).unwrap())),
        created_by_id: Set(None),
        created_by_email: Set(None),
        config_change_id: sea_orm::NotSet,
        created_at: Set(pipelines::store::now()),
        updated_at: Set(pipelines::store::now()),
    }
    .insert(&db)
    .await;
    let error = duplicate.expect_err("the schema refuses a second release for one target");
    assert!(pipelines::store::is_unique_violation(&error), "{error}");
}

#[tokio::test]
async fn promotions_list_newest_first_in_pages() {
    let app = spawn_app().await;
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(create(&app, promote("shop-dev")).await.unwrap().id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .promotions
            .clone()
            .list_promotions(ListPromotionsRequest {
                pipeline: "shop".into(),
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.promotions.len() <= 2);
        seen.extend(page.promotions.into_iter().map(|p| p.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids);
    assert_status(
        app.promotions
            .clone()
            .list_promotions(ListPromotionsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["page_token"],
    );
    assert_status(
        app.promotions
            .clone()
            .list_promotions(ListPromotionsRequest {
                pipeline: "ghost".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        &["ghost"],
    );
}

#[tokio::test]
async fn a_promotion_canceled_while_its_only_target_runs_ends_canceled() {
    let (app, gate, created) = gated_promotion_to_stg_a().await;
    let mut stream = app.watch_until(&created.id, "target.release_created").await;
    let canceled = app
        .promotions
        .clone()
        .cancel_promotion(CancelPromotionRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(canceled.status, PromotionStatus::Running as i32);
    gate.add_permits(1);
    let names: Vec<String> = rest_of(&mut stream)
        .await
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["target.succeeded", "promotion.finished"]);
    let finished = app
        .promotions
        .clone()
        .get_promotion(GetPromotionRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(finished.status, PromotionStatus::Canceled as i32);
}

#[tokio::test]
async fn a_request_id_with_control_characters_is_invalid() {
    let app = spawn_app().await;
    shop(&app).await;
    app.create_release("shop-dev", "shop:1").await;
    let request = CreatePromotionRequest {
        request_id: "key\0".into(),
        ..promote("shop-dev")
    };
    assert_status(
        create(&app, request).await,
        Code::InvalidArgument,
        &["request_id"],
    );
    assert_eq!(promotion_count(&app).await, 0);
}
