use pipelines::proto::{
    CreateCouplingRequest, DeleteCouplingRequest, GetAppCouplingRequest, GetCouplingRequest,
    ListCouplingsRequest, ListPipelineCouplingsRequest, RequiredStatusChecks, Stage,
    UpdateCouplingRequest,
};
use tonic::Code;

use crate::helpers::{admin, assert_error, assert_status, spawn_app, writer, TestApp};
use pipelines::service::CouplingChange;

async fn shop_with_apps(names: &[&str]) -> TestApp {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    for name in names {
        app.create_app(name).await;
    }
    app
}

fn contexts(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[tokio::test]
async fn a_coupling_names_its_app_pipeline_stage_and_checks() {
    let app = shop_with_apps(&["shop-dev"]).await;
    let coupling = app
        .couple(
            "shop-dev",
            "shop",
            Stage::Development,
            &["ci/unit", "ci/e2e"],
        )
        .await;
    let app_ref = coupling.app.clone().unwrap();
    assert_eq!(app_ref.name, "shop-dev");
    assert_eq!(coupling.pipeline.clone().unwrap().name, "shop");
    assert_eq!(coupling.stage, Stage::Development as i32);
    assert_eq!(
        coupling.required_status_checks.clone().unwrap().contexts,
        contexts(&["ci/unit", "ci/e2e"])
    );
    assert!(coupling.release.is_none(), "no release yet");

    let release = app.create_release("shop-dev", "shop:1").await;
    let fetched = app
        .couplings
        .clone()
        .get_coupling(GetCouplingRequest {
            id: coupling.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let current = fetched.release.expect("current release");
    assert_eq!(current.id, release.id);
    assert_eq!(current.version, 1);
    assert_eq!(current.image, "shop:1");
}

#[tokio::test]
async fn apps_and_pipelines_may_be_given_by_id() {
    let app = spawn_app().await;
    let pipeline = app.create_pipeline("shop").await;
    let dev = app.create_app("shop-dev").await;
    let coupling = app
        .couple(&dev.id, &pipeline.id, Stage::Development, &[])
        .await;
    assert_eq!(coupling.app.unwrap().id, dev.id);
    assert_eq!(coupling.pipeline.unwrap().id, pipeline.id);
}

#[tokio::test]
async fn unknown_apps_and_pipelines_are_not_found() {
    let app = shop_with_apps(&["shop-dev"]).await;
    assert_status(
        app.try_couple("ghost", "shop", Stage::Development, &[])
            .await,
        Code::NotFound,
        &["app", "ghost"],
    );
    assert_status(
        app.try_couple("shop-dev", "nowhere", Stage::Development, &[])
            .await,
        Code::NotFound,
        &["pipeline", "nowhere"],
    );
}

#[tokio::test]
async fn the_stage_is_required_and_must_be_known() {
    let app = shop_with_apps(&["shop-dev"]).await;
    for stage in [Stage::Unspecified as i32, 42] {
        let result = app
            .couplings
            .clone()
            .create_coupling(CreateCouplingRequest {
                promotion_policy: None,
                verification: None,
                app: "shop-dev".into(),
                pipeline: "shop".into(),
                stage,
                required_status_checks: None,
            })
            .await;
        // An enum left at 0 (a REST-style "staging" a client converted to 0, say) is told
        // what to send.
        let problem = if stage == 0 {
            "must be set; 0 (STAGE_UNSPECIFIED) means unset"
        } else {
            "42 is not a known value"
        };
        assert_status(
            result,
            Code::InvalidArgument,
            &[
                "stage",
                problem,
                "accepted values: STAGE_REVIEW, STAGE_DEVELOPMENT, STAGE_STAGING, STAGE_PRODUCTION",
            ],
        );
    }
}

#[tokio::test]
async fn a_review_coupling_cannot_require_checks() {
    let app = shop_with_apps(&["shop-pr-1"]).await;
    assert_status(
        app.try_couple("shop-pr-1", "shop", Stage::Review, &["ci/unit"])
            .await,
        Code::InvalidArgument,
        &["required_status_checks.contexts", "review"],
    );
    let coupling = app.couple("shop-pr-1", "shop", Stage::Review, &[]).await;
    assert_eq!(coupling.stage, Stage::Review as i32);
}

#[tokio::test]
async fn malformed_contexts_are_invalid_argument() {
    let app = shop_with_apps(&["shop-dev"]).await;
    assert_status(
        app.try_couple(
            "shop-dev",
            "shop",
            Stage::Development,
            &["ci/unit", "ci/unit"],
        )
        .await,
        Code::InvalidArgument,
        &["required_status_checks.contexts[1]", "twice"],
    );
    assert_status(
        app.try_couple("shop-dev", "shop", Stage::Development, &[""])
            .await,
        Code::InvalidArgument,
        &["required_status_checks.contexts[0]"],
    );
    assert_status(
        app.try_couple("shop-dev", "shop", Stage::Development, &["has space"])
            .await,
        Code::InvalidArgument,
        &["required_status_checks.contexts[0]"],
    );
}

#[tokio::test]
async fn an_app_is_coupled_at_most_once() {
    let app = shop_with_apps(&["shop-dev"]).await;
    app.create_pipeline("other").await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    for (pipeline, stage) in [
        ("shop", Stage::Development),
        ("shop", Stage::Staging),
        ("other", Stage::Development),
    ] {
        assert_status(
            app.try_couple("shop-dev", pipeline, stage, &[]).await,
            Code::AlreadyExists,
            &["the application already is pipelined"],
        );
    }
}

#[tokio::test]
async fn concurrent_couplings_of_one_app_yield_exactly_one() {
    let app = shop_with_apps(&["shop-dev"]).await;
    let attempts: Vec<_> = [
        Stage::Development,
        Stage::Staging,
        Stage::Production,
        Stage::Review,
    ]
    .into_iter()
    .map(|stage| {
        let mut client = app.couplings.clone();
        tokio::spawn(async move {
            client
                .create_coupling(CreateCouplingRequest {
                    promotion_policy: None,
                    verification: None,
                    app: "shop-dev".into(),
                    pipeline: "shop".into(),
                    stage: stage as i32,
                    required_status_checks: None,
                })
                .await
        })
    })
    .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(
            attempt
                .await
                .unwrap()
                .map(|_| ())
                .map_err(|status| status.code()),
        );
    }
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Err(Code::AlreadyExists))
            .count(),
        3
    );
}

#[tokio::test]
async fn get_reports_unknown_and_malformed_ids() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::new_v4().to_string();
    let result = app
        .couplings
        .clone()
        .get_coupling(GetCouplingRequest {
            id: missing.clone(),
        })
        .await;
    assert_status(result, Code::NotFound, &["coupling", &missing]);
    let result = app
        .couplings
        .clone()
        .get_coupling(GetCouplingRequest {
            id: "not-a-uuid".into(),
        })
        .await;
    assert_status(result, Code::InvalidArgument, &["id", "not-a-uuid"]);
}

#[tokio::test]
async fn lists_cover_all_couplings_and_each_pipeline() {
    let app = shop_with_apps(&["shop-dev", "shop-stg", "shop-prod", "blog-dev"]).await;
    app.create_pipeline("blog").await;
    app.create_pipeline("empty").await;
    app.couple("shop-prod", "shop", Stage::Production, &[])
        .await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    app.couple("shop-stg", "shop", Stage::Staging, &[]).await;
    app.couple("blog-dev", "blog", Stage::Development, &[])
        .await;

    let all: Vec<String> = app
        .couplings
        .clone()
        .list_couplings(ListCouplingsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .couplings
        .into_iter()
        .map(|c| c.app.unwrap().name)
        .collect();
    assert_eq!(all, ["blog-dev", "shop-dev", "shop-stg", "shop-prod"]);

    let shop: Vec<String> = app
        .couplings
        .clone()
        .list_pipeline_couplings(ListPipelineCouplingsRequest {
            pipeline: "shop".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .couplings
        .into_iter()
        .map(|c| c.app.unwrap().name)
        .collect();
    assert_eq!(shop, ["shop-dev", "shop-stg", "shop-prod"]);

    let empty = app
        .couplings
        .clone()
        .list_pipeline_couplings(ListPipelineCouplingsRequest {
            pipeline: "empty".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.couplings.is_empty());

    let result = app
        .couplings
        .clone()
        .list_pipeline_couplings(ListPipelineCouplingsRequest {
            pipeline: "ghost".into(),
            ..Default::default()
        })
        .await;
    assert_status(result, Code::NotFound, &["ghost"]);
}

#[tokio::test]
async fn the_coupling_of_an_app_is_found_by_id_or_name() {
    let app = shop_with_apps(&["shop-dev", "loner"]).await;
    let coupling = app
        .couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    let dev_id = coupling.app.clone().unwrap().id;
    for reference in ["shop-dev".to_owned(), dev_id] {
        let found = app
            .couplings
            .clone()
            .get_app_coupling(GetAppCouplingRequest { app: reference })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.id, coupling.id);
    }
    let result = app
        .couplings
        .clone()
        .get_app_coupling(GetAppCouplingRequest {
            app: "loner".into(),
        })
        .await;
    assert_status(result, Code::NotFound, &["loner", "no pipeline"]);
    let result = app
        .couplings
        .clone()
        .get_app_coupling(GetAppCouplingRequest {
            app: "ghost".into(),
        })
        .await;
    assert_status(result, Code::NotFound, &["app", "ghost"]);
}

fn update(id: &str, names: &[&str]) -> UpdateCouplingRequest {
    UpdateCouplingRequest {
        stage: None,
        promotion_policy: None,
        verification: None,
        remove_verification: false,
        id: id.into(),
        required_status_checks: Some(RequiredStatusChecks {
            contexts: contexts(names),
        }),
    }
}

#[tokio::test]
async fn update_replaces_the_contexts_whole() {
    let app = shop_with_apps(&["shop-stg"]).await;
    let coupling = app
        .couple("shop-stg", "shop", Stage::Staging, &["ci/unit"])
        .await;
    let updated = app
        .couplings
        .clone()
        .update_coupling(update(&coupling.id, &["qa/manual", "ci/e2e"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        updated.required_status_checks.unwrap().contexts,
        contexts(&["qa/manual", "ci/e2e"])
    );
    assert_eq!(
        updated.stage,
        Stage::Staging as i32,
        "only the checks change"
    );
    let stored = app
        .couplings
        .clone()
        .get_coupling(GetCouplingRequest {
            id: coupling.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stored.required_status_checks.unwrap().contexts,
        contexts(&["qa/manual", "ci/e2e"])
    );
}

#[tokio::test]
async fn update_rejects_bad_input() {
    let app = shop_with_apps(&["shop-stg", "shop-pr"]).await;
    let staging = app.couple("shop-stg", "shop", Stage::Staging, &[]).await;
    let review = app.couple("shop-pr", "shop", Stage::Review, &[]).await;
    let mut client = app.couplings.clone();
    assert_status(
        client
            .update_coupling(update(&review.id, &["ci/unit"]))
            .await,
        Code::InvalidArgument,
        &["required_status_checks.contexts", "review"],
    );
    assert_status(
        client
            .update_coupling(update(&staging.id, &["a", "a"]))
            .await,
        Code::InvalidArgument,
        &["required_status_checks.contexts[1]"],
    );
    assert_status(
        client
            .update_coupling(UpdateCouplingRequest {
                stage: None,
                promotion_policy: None,
                verification: None,
                remove_verification: false,
                id: staging.id.clone(),
                required_status_checks: None,
            })
            .await,
        Code::InvalidArgument,
        &["required_status_checks"],
    );
    let missing = uuid::Uuid::new_v4().to_string();
    assert_status(
        client.update_coupling(update(&missing, &[])).await,
        Code::NotFound,
        &["coupling"],
    );
}

#[tokio::test]
async fn removing_a_required_context_needs_elevated_access() {
    let app = shop_with_apps(&["shop-stg"]).await;
    let coupling = app
        .couple("shop-stg", "shop", Stage::Staging, &["ci/unit", "ci/e2e"])
        .await;
    let services = app.services().await;

    // Adding is an ordinary write.
    let added = services
        .couplings
        .update(
            &coupling.id,
            CouplingChange {
                required_contexts: Some(contexts(&["ci/unit", "ci/e2e", "qa"])),
                ..Default::default()
            },
            &writer(),
        )
        .await
        .unwrap();
    assert_eq!(
        added.required_contexts,
        contexts(&["ci/unit", "ci/e2e", "qa"])
    );

    // Dropping one, even while adding another, is refused and changes nothing.
    assert_error(
        services
            .couplings
            .update(
                &coupling.id,
                CouplingChange {
                    required_contexts: Some(contexts(&["ci/unit", "qa", "new"])),
                    ..Default::default()
                },
                &writer(),
            )
            .await,
        Code::PermissionDenied,
        &["ci/e2e", "elevated"],
    );
    let unchanged = services.couplings.get(&coupling.id).await.unwrap();
    assert_eq!(
        unchanged.required_contexts,
        contexts(&["ci/unit", "ci/e2e", "qa"])
    );

    let reduced = services
        .couplings
        .update(
            &coupling.id,
            CouplingChange {
                required_contexts: Some(contexts(&["ci/unit"])),
                ..Default::default()
            },
            &admin(),
        )
        .await
        .unwrap();
    assert_eq!(reduced.required_contexts, contexts(&["ci/unit"]));
}

#[tokio::test]
async fn deleting_a_coupling_needs_elevated_access() {
    let app = shop_with_apps(&["shop-stg"]).await;
    let coupling = app.couple("shop-stg", "shop", Stage::Staging, &[]).await;
    let services = app.services().await;
    assert_error(
        services.couplings.delete(&coupling.id, &writer()).await,
        Code::PermissionDenied,
        &["elevated"],
    );
    assert!(
        services.couplings.get(&coupling.id).await.is_ok(),
        "still there"
    );

    let deleted = app
        .couplings
        .clone()
        .delete_coupling(DeleteCouplingRequest {
            id: coupling.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.id, coupling.id);
    assert_status(
        app.couplings
            .clone()
            .get_coupling(GetCouplingRequest {
                id: coupling.id.clone(),
            })
            .await,
        Code::NotFound,
        &["coupling"],
    );
    assert_status(
        app.couplings
            .clone()
            .delete_coupling(DeleteCouplingRequest {
                id: coupling.id.clone(),
            })
            .await,
        Code::NotFound,
        &["coupling"],
    );
    // The app is free to join a pipeline again.
    app.couple("shop-stg", "shop", Stage::Production, &[]).await;
}
