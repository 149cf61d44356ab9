//! What the Heroku CLI changes and asks: pipeline renames, stage moves, the app filter, a
//! DELETE with a body, and promotion statuses in Heroku's words.

use reqwest::Method;
use serde_json::{json, Value};

use super::call_with;
use crate::helpers::{spawn_app, with_token, TestApp};

/// Pipeline `shop` with shop-dev (development), shop-stg (staging) and shop-prod
/// (production); every call as `token`.
async fn shop(app: &TestApp, token: &str) -> Value {
    let (status, pipeline) = app
        .call(
            Method::POST,
            "/pipelines",
            Some(json!({"name": "shop"})),
            Some(token),
        )
        .await;
    assert_eq!(status, 201, "{pipeline}");
    for (name, stage) in [
        ("shop-dev", "development"),
        ("shop-stg", "staging"),
        ("shop-prod", "production"),
    ] {
        app.call(
            Method::POST,
            "/apps",
            Some(json!({"name": name})),
            Some(token),
        )
        .await;
        let (status, body) = app
            .call(
                Method::POST,
                "/pipeline-couplings",
                Some(json!({"app": name, "pipeline": "shop", "stage": stage})),
                Some(token),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    pipeline
}

#[tokio::test]
async fn a_pipeline_is_renamed_under_the_create_rules() {
    let app = spawn_app().await;
    let admin = app.create_token("ops", "admin").await;
    let writer = app.create_token("ci-bot", "write").await;
    let reader = app.create_token("viewer", "read").await;
    let pipeline = shop(&app, &admin).await;
    app.call(
        Method::POST,
        "/pipelines",
        Some(json!({"name": "blog"})),
        Some(&admin),
    )
    .await;
    let path = format!("/pipelines/{}", pipeline["id"].as_str().unwrap());
    let (status, renamed) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"name": "storefront", "description": "the shop"})),
            Some(&writer),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        (renamed["name"].as_str(), renamed["description"].as_str()),
        (Some("storefront"), Some("the shop"))
    );
    let (status, _) = app
        .call(Method::GET, "/pipelines/shop", None, Some(&reader))
        .await;
    assert_eq!(status, 404, "the old name is free");
    let (status, couplings) = app
        .call(
            Method::GET,
            "/pipelines/storefront/pipeline-couplings",
            None,
            Some(&reader),
        )
        .await;
    assert_eq!((status, couplings.as_array().unwrap().len()), (200, 3));
    for (body, token, expected) in [
        (json!({"name": "blog"}), &writer, 409),
        (json!({"name": "Blog!"}), &writer, 422),
        (json!({"name": 7}), &writer, 422),
        (json!({}), &writer, 422),
        (json!({"owner": {"id": null, "type": "user"}}), &writer, 422),
        (json!({"name": "other"}), &reader, 403),
    ] {
        let (status, answer) = app
            .call(Method::PATCH, &path, Some(body.clone()), Some(token))
            .await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let (status, _) = app
        .call(
            Method::PATCH,
            "/pipelines/no-such",
            Some(json!({"name": "x-y-z"})),
            Some(&writer),
        )
        .await;
    assert_eq!(status, 404);
    let (_, audit) = app
        .call(
            Method::GET,
            "/audit-events?action=pipeline.update",
            None,
            Some(&admin),
        )
        .await;
    let summaries: Vec<&str> = audit["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["summary"].as_str())
        .collect();
    assert_eq!(summaries, ["renamed pipeline shop to storefront"]);
    // gRPC: the same rule.
    let renamed = app
        .pipelines
        .clone()
        .update_pipeline(with_token(
            pipelines::proto::UpdatePipelineRequest {
                pipeline: "storefront".into(),
                name: Some("shop".into()),
                description: None,
            },
            &writer,
        ))
        .await
        .expect("renamed over gRPC")
        .into_inner();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("shop", "the shop")
    );
    let taken = app
        .pipelines
        .clone()
        .update_pipeline(with_token(
            pipelines::proto::UpdatePipelineRequest {
                pipeline: "shop".into(),
                name: Some("blog".into()),
                description: None,
            },
            &writer,
        ))
        .await
        .expect_err("a taken name");
    assert_eq!(taken.code(), tonic::Code::AlreadyExists);
}

#[tokio::test]
async fn moving_an_app_between_stages_needs_elevated_access_and_suits_the_stage() {
    let app = spawn_app().await;
    let admin = app.create_token("ops", "admin").await;
    let writer = app.create_token("ci-bot", "write").await;
    shop(&app, &admin).await;
    let (_, coupling) = app
        .call(
            Method::GET,
            "/apps/shop-stg/pipeline-couplings",
            None,
            Some(&admin),
        )
        .await;
    let path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"stage": "production"})),
            Some(&writer),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // The same stage is not a move.
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"stage": "staging", "required_status_checks": {"contexts": ["ci/unit"]}})),
            Some(&writer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"stage": "review"})),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 422, "review holds no contexts: {body}");
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"stage": "moon"})),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, moved) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"stage": "review", "required_status_checks": {"contexts": []}})),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["stage"], "review");
    let moved = app
        .couplings
        .clone()
        .update_coupling(with_token(
            pipelines::proto::UpdateCouplingRequest {
                id: coupling["id"].as_str().unwrap().into(),
                stage: Some(pipelines::proto::Stage::Production as i32),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("moved over gRPC")
        .into_inner();
    assert_eq!(moved.stage, pipelines::proto::Stage::Production as i32);
    let (_, audit) = app
        .call(
            Method::GET,
            "/audit-events?action=coupling.update",
            None,
            Some(&admin),
        )
        .await;
    let summaries: Vec<&str> = audit["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["summary"].as_str())
        .collect();
    assert!(
        summaries.contains(&"moved shop-stg in shop from stage review to production"),
        "{summaries:?}"
    );
}

#[tokio::test]
async fn the_app_filter_answers_the_apps_that_exist() {
    let app = spawn_app().await;
    for name in ["shop-dev", "shop-stg"] {
        app.call(Method::POST, "/apps", Some(json!({"name": name})), None)
            .await;
    }
    let (_, dev) = app.call(Method::GET, "/apps/shop-dev", None, None).await;
    let body = json!({"in": {"id": ["shop-stg", "nope", dev["id"], "shop-stg", "00000000-0000-4000-8000-000000000000", "!!"]}});
    let (status, apps) = app
        .call(Method::POST, "/filters/apps", Some(body), None)
        .await;
    assert_eq!(status, 200, "{apps}");
    let names: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop-stg", "shop-dev"]);
    let too_many: Vec<String> = (0..1001).map(|n| format!("app-{n}")).collect();
    for (body, expected) in [
        (json!({"in": {"id": too_many}}), 422),
        (json!({"in": {"id": "shop-dev"}}), 422),
        (json!({"in": {"name": ["shop-dev"]}}), 422),
        (json!({}), 422),
    ] {
        let (status, answer) = app
            .call(Method::POST, "/filters/apps", Some(body), None)
            .await;
        assert_eq!(status, expected, "{answer}");
    }
    // The CLI sends a Range with it; POST answers the same.
    let (status, _, apps) = call_with(
        &app,
        Method::POST,
        "/filters/apps",
        &[("range", "id ..; max=1000;")],
        Some(json!({"in": {"id": ["shop-dev"]}})),
    )
    .await;
    assert_eq!((status, apps.as_array().unwrap().len()), (200, 1));
}

#[tokio::test]
async fn a_delete_ignores_its_body() {
    let app = spawn_app().await;
    app.call(
        Method::POST,
        "/pipelines",
        Some(json!({"name": "shop"})),
        None,
    )
    .await;
    let (status, body) = app
        .call(
            Method::DELETE,
            "/pipelines/shop",
            Some(json!({"name": "other", "x": 1})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.call(Method::GET, "/pipelines/shop", None, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn heroku_clients_read_statuses_in_herokus_words() {
    let app = spawn_app().await;
    let admin = app.create_token("ops", "admin").await;
    shop(&app, &admin).await;
    let (_, coupling) = app
        .call(
            Method::GET,
            "/apps/shop-stg/pipeline-couplings",
            None,
            Some(&admin),
        )
        .await;
    app.call(
        Method::PATCH,
        &format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap()),
        Some(json!({"promotion_policy": {"required_approvals": 1}})),
        Some(&admin),
    )
    .await;
    app.call(
        Method::POST,
        "/apps/shop-dev/releases",
        Some(json!({"image": "img:1"})),
        Some(&admin),
    )
    .await;
    let (status, promotion) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}})),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 201, "{promotion}");
    let id = promotion["id"].as_str().unwrap();
    let bearer = format!("Bearer {admin}");
    let heroku = [
        ("accept", "application/vnd.heroku+json; version=3"),
        ("authorization", bearer.as_str()),
    ];
    let akkeris = [("accept", "*/*"), ("authorization", bearer.as_str())];
    assert_eq!(
        statuses(&app, id, &heroku).await,
        ("pending".into(), "pending".into())
    );
    assert_eq!(
        statuses(&app, id, &akkeris).await,
        ("awaiting_approval".into(), "pending".into())
    );
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/pipeline-promotions/{id}/rejections"),
            Some(json!({"comment": "not today"})),
            Some(&app.create_token("qa-lead", "write").await),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        statuses(&app, id, &heroku).await,
        ("completed".into(), "failed".into())
    );
    assert_eq!(
        statuses(&app, id, &akkeris).await,
        ("rejected".into(), "canceled".into())
    );
    // The promotions list words them the same way.
    let (_, _, list) = call_with(&app, Method::GET, "/pipeline-promotions", &heroku, None).await;
    assert_eq!(list[0]["status"], "completed");
}

/// A promotion's status and its first target's, read with `headers`.
async fn statuses(app: &TestApp, id: &str, headers: &[(&str, &str)]) -> (String, String) {
    let path = format!("/pipeline-promotions/{id}");
    let (_, _, promotion) = call_with(app, Method::GET, &path, headers, None).await;
    let targets_path = format!("{path}/promotion-targets");
    let (_, _, targets) = call_with(app, Method::GET, &targets_path, headers, None).await;
    (
        promotion["status"].as_str().unwrap().to_owned(),
        targets[0]["status"].as_str().unwrap().to_owned(),
    )
}
