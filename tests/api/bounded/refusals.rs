//! Refusals that agree across the two transports: every body refuses a field it does
//! not take, a body too large is RESOURCE_EXHAUSTED like a gRPC message too large, and
//! every INVALID_ARGUMENT names its field in a `google.rpc.BadRequest`.

use pipelines::proto::{CreatePipelineRequest, Stage};
use reqwest::Method;
use serde_json::{json, Value};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{spawn_app, TestApp};

/// The field named by the body's `google.rpc.BadRequest` detail.
fn violated_field(body: &Value) -> &str {
    let detail = &body["details"][0];
    assert_eq!(
        detail["@type"], "type.googleapis.com/google.rpc.BadRequest",
        "{body}"
    );
    detail["field_violations"][0]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("a field violation: {body}"))
}

async fn shop(app: &TestApp) -> (String, String, String) {
    app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.create_app("shop-stg").await;
    let coupling = app
        .couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    app.couple("shop-stg", "shop", Stage::Staging, &[]).await;
    let release = app.create_release("shop-dev", "shop:1").await;
    let (status, made) = app
        .call(
            Method::POST,
            &format!("/apps/shop-dev/releases/{}/statuses", release.id),
            Some(json!({"context": "ci/tests", "name": "Tests", "state": "success"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{made}");
    (
        coupling.id,
        release.id,
        made["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn every_body_refuses_a_field_it_does_not_take_and_does_nothing() {
    let app = spawn_app().await;
    let (coupling, release, status) = shop(&app).await;
    let with_colour = |mut body: Value| {
        body["colour"] = json!("red");
        body
    };
    let cases = [
        (
            Method::POST,
            "/pipelines".to_owned(),
            json!({"name": "other"}),
        ),
        (
            Method::POST,
            "/apps".to_owned(),
            json!({"name": "other-app"}),
        ),
        (
            Method::POST,
            "/pipeline-couplings".to_owned(),
            json!({"app": "other-app", "pipeline": "shop", "stage": "review"}),
        ),
        (
            Method::PATCH,
            format!("/pipeline-couplings/{coupling}"),
            json!({}),
        ),
        (
            Method::POST,
            "/pipeline-promotions".to_owned(),
            json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}}),
        ),
        (
            Method::POST,
            "/apps/shop-dev/releases".to_owned(),
            json!({"image": "shop:2"}),
        ),
        (
            Method::POST,
            format!("/apps/shop-dev/releases/{release}/statuses"),
            json!({"context": "ci/lint", "name": "Lint", "state": "pending"}),
        ),
        (
            Method::PATCH,
            format!("/apps/shop-dev/releases/{release}/statuses/{status}"),
            json!({"state": "failure"}),
        ),
        (
            Method::POST,
            "/pipelines/shop/freezes".to_owned(),
            json!({
                "stages": ["staging"],
                "reason": "release day",
                "ends_at": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
            }),
        ),
    ];
    for (method, path, body) in cases {
        let (code, refused) = app
            .call(method.clone(), &path, Some(with_colour(body)), None)
            .await;
        assert_eq!(code, 422, "{method} {path}: {refused}");
        assert_eq!(refused["code"], 3, "{method} {path}");
        assert!(
            refused["message"].as_str().unwrap().contains("colour"),
            "{method} {path}: {refused}"
        );
        assert_eq!(violated_field(&refused), "colour", "{method} {path}");
    }

    // A field unknown inside a nested object is named by its path.
    let (code, refused) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({
                "pipeline": {"id": "shop"},
                "source": {"app": {"id": "shop-dev"}},
                "targets": [{"app": {"id": "shop-stg"}, "colour": "red"}],
            })),
            None,
        )
        .await;
    assert_eq!(code, 422, "{refused}");
    assert_eq!(violated_field(&refused), "targets[0].colour");

    // Nothing was made by the refused calls.
    let (_, pipelines) = app.call(Method::GET, "/pipelines", None, None).await;
    assert_eq!(pipelines.as_array().unwrap().len(), 1, "{pipelines}");
    let (_, promotions) = app
        .call(Method::GET, "/pipeline-promotions", None, None)
        .await;
    assert_eq!(promotions, json!([]));
    let (_, releases) = app
        .call(Method::GET, "/apps/shop-dev/releases", None, None)
        .await;
    assert_eq!(releases.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn heroku_owner_and_generation_are_checked_and_never_stored() {
    let app = spawn_app().await;
    let (code, created) = app
        .call(
            Method::POST,
            "/pipelines",
            Some(json!({
                "name": "shop",
                "owner": {"id": null, "type": "user"},
                "generation": {"name": "cedar"},
            })),
            None,
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert!(created.get("owner").is_none() && created.get("generation").is_none());
    for (body, field) in [
        (json!({"name": "other", "owner": "me"}), "owner"),
        (json!({"name": "other", "owner": {"type": 5}}), "owner.type"),
        (
            json!({"name": "other", "generation": {"name": 2}}),
            "generation.name",
        ),
        (
            json!({"name": "other", "generation": {"name": "cedar", "x": 1}}),
            "generation.x",
        ),
    ] {
        let (code, refused) = app
            .call(Method::POST, "/pipelines", Some(body.clone()), None)
            .await;
        assert_eq!(code, 422, "{body}: {refused}");
        assert_eq!(violated_field(&refused), field, "{body}");
    }
}

#[tokio::test]
async fn too_large_is_resource_exhausted_over_both_transports() {
    let app = spawn_app().await;
    let description = "x".repeat(5 * 1024 * 1024);

    let (code, refused) = app
        .call(
            Method::POST,
            "/pipelines",
            Some(json!({"name": "shop", "description": description})),
            None,
        )
        .await;
    assert_eq!(code, 413, "{refused}");
    assert_eq!(refused["code"], 8);
    assert!(refused["message"].as_str().unwrap().contains("1 MiB"));

    let status = app
        .pipelines
        .clone()
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description,
        })
        .await
        .expect_err("a 5 MB message is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("4194304 bytes"),
        "{}",
        status.message()
    );
    let (_, pipelines) = app.call(Method::GET, "/pipelines", None, None).await;
    assert_eq!(pipelines, json!([]));
    // The connection still serves calls.
    app.create_pipeline("shop").await;
}

#[tokio::test]
async fn every_invalid_argument_names_its_field_in_bad_request_details() {
    let app = spawn_app().await;

    let status = app
        .pipelines
        .clone()
        .create_pipeline(CreatePipelineRequest {
            name: "Not A Name".into(),
            description: String::new(),
        })
        .await
        .expect_err("a bad name is refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status
        .get_details_bad_request()
        .expect("a google.rpc.BadRequest detail");
    assert_eq!(details.field_violations[0].field, "name");
    assert!(!details.field_violations[0].description.is_empty());

    let (code, refused) = app
        .call(
            Method::POST,
            "/pipelines",
            Some(json!({"name": "Not A Name"})),
            None,
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(violated_field(&refused), "name");

    let (code, refused) = app
        .call(Method::POST, "/pipelines", Some(json!({"name": 5})), None)
        .await;
    assert_eq!(code, 422);
    assert_eq!(violated_field(&refused), "name");

    let response = app
        .rest(Method::POST, "/pipelines")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["code"], 3);
    assert_eq!(violated_field(&refused), "body");

    let (code, refused) = app
        .call(Method::GET, "/pipelines?colour=red", None, None)
        .await;
    assert_eq!(code, 422);
    assert!(violated_field(&refused).contains("colour"), "{refused}");

    let (code, refused) = app
        .call(Method::GET, "/pipeline-promotions/not-a-uuid", None, None)
        .await;
    assert_eq!(refused["code"], 3, "{refused}");
    assert!([400, 422].contains(&code));
    assert!(!violated_field(&refused).is_empty());
}
