//! The whole Akkeris promotion flow, end to end, once over REST and once over gRPC.

use std::time::Duration;

use pipelines::proto::{
    create_promotion_response::Result as Created, ConfigVarChange, CreatePromotionRequest,
    CreateReleaseStatusRequest, DeleteCouplingRequest, DeletePipelineRequest,
    GetAppCouplingRequest, GetPromotionRequest, PatchConfigVarsRequest, PromotionStatus,
    RequiredStatusChecks, Stage, StatusState, UpdateCouplingRequest, UpdateReleaseStatusRequest,
};
use reqwest::Method;
use serde_json::{json, Value};
use tonic::Code;

use crate::helpers::{spawn_app, with_token, TestApp};

struct Rest<'a> {
    app: &'a TestApp,
    token: String,
}

impl Rest<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.app.call(method, path, body, Some(&self.token)).await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// Creates a promotion and waits for it to finish; returns the finished promotion.
    async fn promote(&self, body: Value) -> Value {
        let (status, created) = self
            .call(Method::POST, "/pipeline-promotions", Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        self.wait(created["id"].as_str().unwrap()).await
    }

    async fn wait(&self, id: &str) -> Value {
        for _ in 0..200 {
            let promotion = self
                .ok(Method::GET, &format!("/pipeline-promotions/{id}"), None)
                .await;
            if !["pending", "running"].contains(&promotion["status"].as_str().unwrap()) {
                return promotion;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("promotion {id} did not finish");
    }

    async fn current_release(&self, app: &str) -> Value {
        self.ok(
            Method::GET,
            &format!("/apps/{app}/pipeline-couplings"),
            None,
        )
        .await["release"]
            .clone()
    }
}

#[tokio::test]
async fn the_akkeris_flow_over_rest() {
    let app = spawn_app().await;
    let admin = Rest {
        app: &app,
        token: app.create_token("release-manager", "admin").await,
    };
    let writer = Rest {
        app: &app,
        token: app.create_token("ci-bot", "write").await,
    };

    // 1. Four apps: review → development → two staging apps.
    admin
        .ok(Method::POST, "/pipelines", Some(json!({"name": "shop"})))
        .await;
    for (name, stage) in [
        ("shop-pr-7", "review"),
        ("shop-dev", "development"),
        ("shop-stg-eu", "staging"),
        ("shop-stg-us", "staging"),
    ] {
        admin
            .ok(Method::POST, "/apps", Some(json!({"name": name})))
            .await;
        admin
            .ok(
                Method::POST,
                "/pipeline-couplings",
                Some(json!({"app": name, "pipeline": "shop", "stage": stage})),
            )
            .await;
    }
    let review_release = writer
        .ok(
            Method::POST,
            "/apps/shop-pr-7/releases",
            Some(json!({"image": "registry/shop@sha256:aaa"})),
        )
        .await;

    // 2. Review → development, then development → both staging apps.
    let to_dev = writer
        .promote(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-pr-7"}}}))
        .await;
    assert_eq!(to_dev["status"], "successful");
    assert_eq!(to_dev["created_by"], "ci-bot");
    let dev_release = writer.current_release("shop-dev").await;
    assert_eq!(dev_release["image"], "registry/shop@sha256:aaa");
    let dev_release_full = writer
        .ok(
            Method::GET,
            &format!(
                "/apps/shop-dev/releases/{}",
                dev_release["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        dev_release_full["promoted_from"]["release"]["id"],
        review_release["id"]
    );
    assert_eq!(
        dev_release_full["promoted_from"]["app"]["name"],
        "shop-pr-7"
    );
    assert_eq!(
        dev_release_full["promoted_from"]["pipeline_promotion"]["id"],
        to_dev["id"]
    );
    let to_staging = writer
        .promote(json!({
            "pipeline": {"id": "shop"},
            "source": {"app": {"id": "shop-dev"}},
            "targets": [{"app": {"id": "shop-stg-eu"}}, {"app": {"id": "shop-stg-us"}}]
        }))
        .await;
    assert_eq!(to_staging["status"], "successful");
    let targets = writer
        .ok(
            Method::GET,
            &format!(
                "/pipeline-promotions/{}/promotion-targets",
                to_staging["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        targets.as_array().unwrap().len(),
        2,
        "that promotion's targets only"
    );
    for target in targets.as_array().unwrap() {
        assert_eq!(target["status"], "succeeded");
        assert_eq!(target["pipeline_promotion"]["id"], to_staging["id"]);
    }

    // 3. A config change on a target keeps its promoted release.
    let eu_release = writer.current_release("shop-stg-eu").await;
    writer
        .ok(
            Method::PATCH,
            "/apps/shop-stg-eu/config-vars",
            Some(json!({"REGION": "eu"})),
        )
        .await;
    assert_eq!(writer.current_release("shop-stg-eu").await, eu_release);

    // 4. A required check blocks; the admin bypass works; pending then success unblocks.
    let staging_coupling = writer
        .ok(Method::GET, "/apps/shop-stg-eu/pipeline-couplings", None)
        .await;
    let coupling_path = format!(
        "/pipeline-couplings/{}",
        staging_coupling["id"].as_str().unwrap()
    );
    writer
        .ok(
            Method::PATCH,
            &coupling_path,
            Some(json!({"required_status_checks": {"contexts": ["ci/integration"]}})),
        )
        .await;
    let second = writer
        .ok(
            Method::POST,
            "/apps/shop-dev/releases",
            Some(json!({"image": "registry/shop@sha256:bbb"})),
        )
        .await;
    let to_eu = json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}, "targets": [{"app": {"id": "shop-stg-eu"}}]});
    let (status, blocked) = writer
        .call(Method::POST, "/pipeline-promotions", Some(to_eu.clone()))
        .await;
    assert_eq!(status, 409, "{blocked}");
    assert_eq!(blocked["code"], 9);
    assert!(blocked["message"]
        .as_str()
        .unwrap()
        .contains("ci/integration"));
    assert_eq!(
        blocked["details"][0]["@type"],
        "type.googleapis.com/google.rpc.PreconditionFailure"
    );
    let mut bypass = to_eu.clone();
    bypass["safe"] = json!(false);
    let (status, denied) = writer
        .call(Method::POST, "/pipeline-promotions", Some(bypass.clone()))
        .await;
    assert_eq!(status, 403, "{denied}");
    let bypassed = admin.promote(bypass).await;
    assert_eq!(bypassed["status"], "successful");
    assert_eq!(bypassed["created_by"], "release-manager");
    assert_eq!(
        bypassed["overridden_checks"][0]["context"],
        "ci/integration"
    );
    assert_eq!(
        bypassed["overridden_checks"][0]["app"]["name"],
        "shop-stg-eu"
    );
    let statuses = format!(
        "/apps/shop-dev/releases/{}/statuses",
        second["id"].as_str().unwrap()
    );
    let pending = writer
        .ok(
            Method::POST,
            &statuses,
            Some(json!({"context": "ci/integration", "name": "Integration", "state": "pending"})),
        )
        .await;
    let (status, _) = writer
        .call(Method::POST, "/pipeline-promotions", Some(to_eu.clone()))
        .await;
    assert_eq!(status, 409, "pending is not success");
    writer
        .ok(
            Method::PATCH,
            &format!("{statuses}/{}", pending["id"].as_str().unwrap()),
            Some(json!({"state": "success"})),
        )
        .await;
    let unblocked = writer.promote(to_eu.clone()).await;
    assert_eq!(unblocked["status"], "successful");
    assert!(unblocked["overridden_checks"]
        .as_array()
        .unwrap()
        .is_empty());

    // 5. The next stage with no targets given: every staging app.
    let all_staging = writer
        .promote(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}}))
        .await;
    let targets = writer
        .ok(
            Method::GET,
            &format!(
                "/pipeline-promotions/{}/promotion-targets",
                all_staging["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let names: Vec<&str> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["app"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop-stg-eu", "shop-stg-us"]);

    // 6. Re-promote an older release by id, as Akkeris clients send it.
    let older = dev_release["id"].as_str().unwrap();
    let statuses_old = format!("/apps/shop-dev/releases/{older}/statuses");
    writer
        .ok(
            Method::POST,
            &statuses_old,
            Some(json!({"context": "ci/integration", "name": "Integration", "state": "success"})),
        )
        .await;
    let rollback = writer
        .promote(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev", "release": {"id": older}}}}))
        .await;
    assert_eq!(rollback["source"]["release"]["id"], older);
    assert_eq!(
        writer.current_release("shop-stg-us").await["image"],
        "registry/shop@sha256:aaa"
    );

    // 7. Drift in both directions: refused when safe, allowed without.
    writer
        .ok(
            Method::PATCH,
            "/apps/shop-dev/config-vars",
            Some(json!({"FEATURE_X": "on"})),
        )
        .await;
    let safe =
        json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}, "safe": true});
    let (status, drift) = writer
        .call(Method::POST, "/pipeline-promotions", Some(safe.clone()))
        .await;
    assert_eq!(status, 422, "{drift}");
    assert_eq!(
        drift["details"][0]["@type"],
        "type.googleapis.com/pipelines.v1.ConfigDrift"
    );
    let eu = drift["details"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["app"]["name"] == "shop-stg-eu")
        .unwrap()
        .clone();
    assert_eq!(eu["missing_on_target"], json!(["FEATURE_X"]));
    assert_eq!(eu["missing_on_source"], json!(["REGION"]));
    let unsafe_ok = writer
        .promote(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}}))
        .await;
    assert_eq!(unsafe_ok["status"], "successful");

    // 8. Delete a coupling, then the pipeline; past promotions stay readable.
    admin.ok(Method::DELETE, &coupling_path, None).await;
    admin.ok(Method::DELETE, "/pipelines/shop", None).await;
    for promotion in [&to_dev, &to_staging, &bypassed, &rollback] {
        let path = format!("/pipeline-promotions/{}", promotion["id"].as_str().unwrap());
        let read = writer.ok(Method::GET, &path, None).await;
        assert_eq!(read["pipeline"]["name"], "shop");
        writer
            .ok(Method::GET, &format!("{path}/promotion-targets"), None)
            .await;
    }
    let (status, _) = writer.call(Method::GET, "/pipelines/shop", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_akkeris_flow_over_grpc() {
    let app = spawn_app().await;
    let admin = app.create_token("release-manager", "admin").await;
    let writer = app.create_token("ci-bot", "write").await;
    let mut promotions = app.promotions.clone();
    let create = |request: CreatePromotionRequest, token: String| {
        let mut client = app.promotions.clone();
        async move {
            client
                .create_promotion(with_token(request, &token))
                .await
                .map(|response| match response.into_inner().result {
                    Some(Created::Promotion(promotion)) => promotion,
                    other => panic!("expected a promotion: {other:?}"),
                })
        }
    };
    let wait = |id: String, token: String| {
        let mut client = app.promotions.clone();
        async move {
            for _ in 0..200 {
                let promotion = client
                    .get_promotion(with_token(GetPromotionRequest { id: id.clone() }, &token))
                    .await
                    .unwrap()
                    .into_inner();
                if promotion.status != PromotionStatus::Pending as i32
                    && promotion.status != PromotionStatus::Running as i32
                {
                    return promotion;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("promotion did not finish");
        }
    };
    let request = |source: &str, targets: &[&str]| CreatePromotionRequest {
        pipeline: "shop".into(),
        source_app: source.into(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    let current = |name: &str| {
        let mut client = app.couplings.clone();
        let token = writer.clone();
        let name = name.to_owned();
        async move {
            client
                .get_app_coupling(with_token(GetAppCouplingRequest { app: name }, &token))
                .await
                .unwrap()
                .into_inner()
                .release
        }
    };

    // 1. Four apps.
    let mut pipelines_client = app.pipelines.clone();
    pipelines_client
        .create_pipeline(with_token(
            pipelines::proto::CreatePipelineRequest {
                name: "shop".into(),
                description: String::new(),
            },
            &writer,
        ))
        .await
        .unwrap();
    let mut couplings = app.couplings.clone();
    let mut staging_coupling = String::new();
    for (name, stage) in [
        ("shop-pr-7", Stage::Review),
        ("shop-dev", Stage::Development),
        ("shop-stg-eu", Stage::Staging),
        ("shop-stg-us", Stage::Staging),
    ] {
        app.apps
            .clone()
            .create_app(with_token(
                pipelines::proto::CreateAppRequest { name: name.into() },
                &writer,
            ))
            .await
            .unwrap();
        let coupling = couplings
            .create_coupling(with_token(
                pipelines::proto::CreateCouplingRequest {
                    promotion_policy: None,
                    verification: None,
                    app: name.into(),
                    pipeline: "shop".into(),
                    stage: stage as i32,
                    required_status_checks: None,
                },
                &writer,
            ))
            .await
            .unwrap()
            .into_inner();
        if name == "shop-stg-eu" {
            staging_coupling = coupling.id;
        }
    }
    let mut releases = app.releases.clone();
    releases
        .create_release(with_token(
            pipelines::proto::CreateReleaseRequest {
                app: "shop-pr-7".into(),
                image: "registry/shop@sha256:aaa".into(),
                description: String::new(),
            },
            &writer,
        ))
        .await
        .unwrap();

    // 2. Review → development → both staging apps.
    let to_dev = create(request("shop-pr-7", &[]), writer.clone())
        .await
        .unwrap();
    assert_eq!(
        wait(to_dev.id.clone(), writer.clone()).await.status,
        PromotionStatus::Successful as i32
    );
    let dev_release = current("shop-dev").await.unwrap();
    let to_staging = create(
        request("shop-dev", &["shop-stg-eu", "shop-stg-us"]),
        writer.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        wait(to_staging.id.clone(), writer.clone()).await.status,
        PromotionStatus::Successful as i32
    );

    // 3. Config changes keep the promoted release.
    let before = current("shop-stg-eu").await;
    app.apps
        .clone()
        .patch_config_vars(with_token(
            PatchConfigVarsRequest {
                app: "shop-stg-eu".into(),
                changes: vec![ConfigVarChange {
                    key: "REGION".into(),
                    value: Some("eu".into()),
                }],
            },
            &writer,
        ))
        .await
        .unwrap();
    assert_eq!(current("shop-stg-eu").await, before);

    // 4. A required check blocks; bypass; pending → success unblocks.
    couplings
        .update_coupling(with_token(
            UpdateCouplingRequest {
                stage: None,
                promotion_policy: None,
                verification: None,
                remove_verification: false,
                id: staging_coupling.clone(),
                required_status_checks: Some(RequiredStatusChecks {
                    contexts: vec!["ci/integration".into()],
                }),
            },
            &writer,
        ))
        .await
        .unwrap();
    let second = releases
        .create_release(with_token(
            pipelines::proto::CreateReleaseRequest {
                app: "shop-dev".into(),
                image: "registry/shop@sha256:bbb".into(),
                description: String::new(),
            },
            &writer,
        ))
        .await
        .unwrap()
        .into_inner();
    let blocked = create(request("shop-dev", &["shop-stg-eu"]), writer.clone())
        .await
        .expect_err("blocked");
    assert_eq!(blocked.code(), Code::FailedPrecondition);
    let bypass = CreatePromotionRequest {
        safe: Some(false),
        ..request("shop-dev", &["shop-stg-eu"])
    };
    assert_eq!(
        create(bypass.clone(), writer.clone())
            .await
            .expect_err("denied")
            .code(),
        Code::PermissionDenied
    );
    let bypassed = create(bypass, admin.clone()).await.unwrap();
    assert_eq!(bypassed.created_by, "release-manager");
    assert_eq!(bypassed.overridden_checks[0].context, "ci/integration");
    assert_eq!(
        wait(bypassed.id.clone(), writer.clone()).await.status,
        PromotionStatus::Successful as i32
    );
    let pending = releases
        .create_release_status(with_token(
            CreateReleaseStatusRequest {
                app: "shop-dev".into(),
                release_id: second.id.clone(),
                context: "ci/integration".into(),
                name: "Integration".into(),
                state: StatusState::Pending as i32,
                ..Default::default()
            },
            &writer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        create(request("shop-dev", &["shop-stg-eu"]), writer.clone())
            .await
            .expect_err("pending")
            .code(),
        Code::FailedPrecondition
    );
    releases
        .update_release_status(with_token(
            UpdateReleaseStatusRequest {
                app: "shop-dev".into(),
                release_id: second.id.clone(),
                status_id: pending.id,
                state: Some(StatusState::Success as i32),
                ..Default::default()
            },
            &writer,
        ))
        .await
        .unwrap();
    let unblocked = create(request("shop-dev", &["shop-stg-eu"]), writer.clone())
        .await
        .unwrap();
    assert_eq!(
        wait(unblocked.id.clone(), writer.clone()).await.status,
        PromotionStatus::Successful as i32
    );

    // 5. No targets given: every staging app.
    let all = create(request("shop-dev", &[]), writer.clone())
        .await
        .unwrap();
    assert_eq!(
        wait(all.id.clone(), writer.clone()).await.status,
        PromotionStatus::Successful as i32
    );

    // 6. Re-promote the older release by id.
    releases
        .create_release_status(with_token(
            CreateReleaseStatusRequest {
                app: "shop-dev".into(),
                release_id: dev_release.id.clone(),
                context: "ci/integration".into(),
                name: "Integration".into(),
                state: StatusState::Success as i32,
                ..Default::default()
            },
            &writer,
        ))
        .await
        .unwrap();
    let rollback = create(
        CreatePromotionRequest {
            source_release_id: dev_release.id.clone(),
            ..request("shop-dev", &[])
        },
        writer.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        wait(rollback.id.clone(), writer.clone()).await.status,
        PromotionStatus::Successful as i32
    );
    assert_eq!(
        current("shop-stg-us").await.unwrap().image,
        "registry/shop@sha256:aaa"
    );

    // 7. Drift both ways.
    app.apps
        .clone()
        .patch_config_vars(with_token(
            PatchConfigVarsRequest {
                app: "shop-dev".into(),
                changes: vec![ConfigVarChange {
                    key: "FEATURE_X".into(),
                    value: Some("on".into()),
                }],
            },
            &writer,
        ))
        .await
        .unwrap();
    let drift = create(
        CreatePromotionRequest {
            safe: Some(true),
            ..request("shop-dev", &[])
        },
        writer.clone(),
    )
    .await
    .expect_err("drift");
    assert_eq!(drift.code(), Code::FailedPrecondition);
    assert!(
        drift.message().contains("FEATURE_X") && drift.message().contains("REGION"),
        "{}",
        drift.message()
    );
    let allowed = create(request("shop-dev", &[]), writer.clone())
        .await
        .unwrap();
    assert_eq!(
        wait(allowed.id.clone(), writer.clone()).await.status,
        PromotionStatus::Successful as i32
    );

    // 8. Delete a coupling, then the pipeline; past promotions stay readable.
    couplings
        .delete_coupling(with_token(
            DeleteCouplingRequest {
                id: staging_coupling,
            },
            &admin,
        ))
        .await
        .unwrap();
    pipelines_client
        .delete_pipeline(with_token(
            DeletePipelineRequest {
                pipeline: "shop".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    for id in [to_dev.id, to_staging.id, bypassed.id, rollback.id] {
        let read = promotions
            .get_promotion(with_token(GetPromotionRequest { id }, &writer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.pipeline.unwrap().name, "shop");
    }
}
