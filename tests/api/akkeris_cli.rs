//! The Akkeris CLI's request sequences, replayed over REST as `aka` sends them (its
//! `plugins/pipelines` and `plugins/releases`), asserting on what it reads. Requests carry
//! the token bare in `authorization`, as `aka` does with `API_AUTH`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// A REST client holding a token, the way `aka` holds one.
struct Aka<'a> {
    app: &'a TestApp,
    token: String,
}

impl Aka<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .app
            .rest(method, path)
            .header("authorization", &self.token);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.expect("REST call");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `find_release` in the CLI: `latest` is the last element of the list, `previous`
    /// the one before it, `vN` the one with that version.
    async fn find_release(&self, app: &str, key: &str) -> Value {
        let releases = self.get(&format!("/apps/{app}/releases")).await;
        let releases = releases.as_array().expect("an array").clone();
        match key {
            "latest" => releases.last().cloned().expect("a release"),
            "previous" => {
                assert!(releases.len() > 1, "A previous release was not found.");
                releases[releases.len() - 2].clone()
            }
            version => {
                let version: i64 = version.trim_start_matches('v').parse().expect("vN");
                releases
                    .into_iter()
                    .find(|release| release["version"] == version)
                    .expect("the version")
            }
        }
    }

    /// `pipelines:promote -a <app> [-r <release>]`, step by step as the CLI sends it.
    /// Returns the 201 body and the line the CLI prints for the source.
    async fn promote(&self, app: &str, release: Option<&str>) -> (Value, String) {
        let release_id = match release {
            Some(key) => Some(self.find_release(app, key).await["id"].clone()),
            None => None,
        };
        let stages = self.get("/pipeline-stages").await;
        let coupling = self.get(&format!("/apps/{app}/pipeline-couplings")).await;
        let next_stage = stages[coupling["stage"].as_str().expect("stage")].clone();
        assert!(!next_stage.is_null(), "the app has a promotion target");
        let pipeline_couplings = self
            .get(&format!(
                "/pipelines/{}/pipeline-couplings",
                coupling["pipeline"]["id"].as_str().expect("pipeline id")
            ))
            .await;
        let targets: Vec<Value> = pipeline_couplings
            .as_array()
            .expect("couplings")
            .iter()
            .filter(|other| other["stage"] == next_stage)
            .map(|other| json!({"app": other["app"]}))
            .collect();
        assert!(!targets.is_empty(), "downstream apps exist");
        let mut source_app = coupling["app"].clone();
        if let Some(id) = release_id {
            source_app["release"] = json!({ "id": id });
        }
        let payload = json!({
            "pipeline": coupling["pipeline"],
            "source": {"app": source_app},
            "targets": targets,
            "safe": true,
        });
        let (status, result) = self
            .send(Method::POST, "/pipeline-promotions", Some(payload))
            .await;
        assert_eq!(status, 201, "{result}");
        // The CLI prints `${source.app.name}-${source.space.name}`.
        let printed = format!(
            "{}-{}",
            result["source"]["app"]["name"]
                .as_str()
                .expect("source.app.name"),
            result["source"]["space"]["name"]
                .as_str()
                .expect("source.space.name")
        );
        (result, printed)
    }
}

/// blog: blog-dev (development) → blog-stg (staging), with releases v1 and v2 on blog-dev.
async fn blog(app: &TestApp) -> (Aka<'_>, Value, Value) {
    let aka = Aka {
        app,
        token: app.create_token("aka", "admin").await,
    };
    for (method, path, body) in [
        (Method::POST, "/pipelines", json!({"name": "blog"})),
        (Method::POST, "/apps", json!({"name": "blog-dev"})),
        (Method::POST, "/apps", json!({"name": "blog-stg"})),
        (
            Method::POST,
            "/pipeline-couplings",
            json!({"app": "blog-dev", "pipeline": "blog", "stage": "development",
                   "required_status_checks": {"contexts": []}}),
        ),
        (
            Method::POST,
            "/pipeline-couplings",
            json!({"app": "blog-stg", "pipeline": "blog", "stage": "staging",
                   "required_status_checks": {"contexts": []}}),
        ),
    ] {
        let (status, created) = aka.send(method, path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {created}");
    }
    let (_, first) = aka
        .send(
            Method::POST,
            "/apps/blog-dev/releases",
            Some(json!({"image": "registry/blog:1"})),
        )
        .await;
    let (_, second) = aka
        .send(
            Method::POST,
            "/apps/blog-dev/releases",
            Some(json!({"image": "registry/blog:2"})),
        )
        .await;
    (aka, first, second)
}

async fn current_image(aka: &Aka<'_>, app: &str) -> Value {
    let coupling = aka.get(&format!("/apps/{app}/pipeline-couplings")).await;
    coupling["release"]["image"].clone()
}

async fn wait_for_image(aka: &Aka<'_>, app: &str, image: &str) {
    for _ in 0..200 {
        if current_image(aka, app).await == image {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{app} never ran {image}");
}

#[tokio::test]
async fn promote_latest_promotes_the_newest_release_and_prints_the_source() {
    let app = spawn_app().await;
    let (aka, _, second) = blog(&app).await;
    let (result, printed) = aka.promote("blog-dev", Some("latest")).await;
    assert_eq!(result["source"]["release"]["id"], second["id"]);
    assert_eq!(printed, "blog-dev");
    assert_eq!(result["source"]["app"]["name"], "blog");
    assert_eq!(result["source"]["space"]["name"], "dev");
    wait_for_image(&aka, "blog-stg", "registry/blog:2").await;
}

#[tokio::test]
async fn promote_previous_promotes_the_release_before_the_newest() {
    let app = spawn_app().await;
    let (aka, first, _) = blog(&app).await;
    let (result, _) = aka.promote("blog-dev", Some("previous")).await;
    assert_eq!(result["source"]["release"]["id"], first["id"]);
    wait_for_image(&aka, "blog-stg", "registry/blog:1").await;
    // Without -r, the current release goes.
    let (result, printed) = aka.promote("blog-dev", None).await;
    assert_eq!(result["source"]["release"]["version"], 2);
    assert_eq!(printed, "blog-dev");
}

#[tokio::test]
async fn releases_info_reads_the_latest_release_and_its_statuses() {
    let app = spawn_app().await;
    let (aka, _, second) = blog(&app).await;
    let id = second["id"].as_str().unwrap();
    let (status, _) = aka
        .send(
            Method::POST,
            &format!("/apps/blog-dev/releases/{id}/statuses"),
            Some(json!({"context": "ci/tests", "name": "Tests", "state": "failure"})),
        )
        .await;
    assert_eq!(status, 201);
    // `releases:info` with no release: find_release('latest'), then the statuses object.
    let release = aka.find_release("blog-dev", "latest").await;
    assert_eq!(release["id"], second["id"]);
    let statuses = aka
        .get(&format!(
            "/apps/blog-dev/releases/{}/statuses",
            release["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(statuses["state"], "failure");
    assert_eq!(statuses["statuses"][0]["context"], "ci/tests");
    assert_eq!(statuses["release"]["id"], second["id"]);
}

#[tokio::test]
async fn releases_rollback_deploys_the_previous_image_as_a_new_release() {
    let app = spawn_app().await;
    let (aka, first, _) = blog(&app).await;
    // `releases:rollback` with no release: find_release('previous'), then this POST.
    let previous = aka.find_release("blog-dev", "previous").await;
    assert_eq!(previous["id"], first["id"]);
    let (status, rollback) = aka
        .send(
            Method::POST,
            "/apps/blog-dev/releases",
            Some(json!({"release": previous["id"], "description": previous["description"]})),
        )
        .await;
    assert_eq!(status, 201, "{rollback}");
    assert_eq!(rollback["version"], 3);
    assert_eq!(rollback["image"], "registry/blog:1");
    assert_eq!(rollback["description"], "Rollback to v1");
    wait_for_image(&aka, "blog-dev", "registry/blog:1").await;
    let latest = aka.find_release("blog-dev", "latest").await;
    assert_eq!(latest["id"], rollback["id"]);
    assert_eq!(latest["status"], "succeeded");

    // By version, as a number and as vN.
    for reference in [json!(2), json!("v2")] {
        let (status, body) = aka
            .send(
                Method::POST,
                "/apps/blog-dev/releases",
                Some(json!({ "release": reference })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["description"], "Rollback to v2");
    }
    wait_for_image(&aka, "blog-dev", "registry/blog:2").await;
}

#[tokio::test]
async fn rollback_rejections_name_what_is_wrong() {
    let app = spawn_app().await;
    let (aka, _, _) = blog(&app).await;
    let cases = [
        (
            json!({"release": uuid::Uuid::new_v4().to_string()}),
            404,
            "release",
        ),
        (json!({"release": 99}), 404, "v99"),
        (
            json!({"release": "latest-ish"}),
            422,
            "neither a release id nor a version",
        ),
        (json!({"release": true}), 422, "a release id, or a version"),
        (json!({"release": "v1", "image": "x"}), 422, "not both"),
    ];
    for (body, expected, fragment) in cases {
        let (status, answer) = aka
            .send(Method::POST, "/apps/blog-dev/releases", Some(body.clone()))
            .await;
        assert_eq!(status, expected, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{body}: {message}");
    }
    let (status, _) = aka
        .send(
            Method::POST,
            "/apps/ghost/releases",
            Some(json!({"release": "v1"})),
        )
        .await;
    assert_eq!(status, 404);
}

mod over_grpc {
    use pipelines::proto::{
        CreatePromotionRequest, ListReleasesRequest, ReleaseState, RollbackReleaseRequest, Stage,
    };
    use tonic::Code;

    use super::*;
    use crate::helpers::{assert_status, spawn_app_deploying_with, TestDeployer};

    async fn couple_blog(app: &TestApp) {
        app.create_pipeline("blog").await;
        app.create_app("blog-dev").await;
        app.create_app("blog-stg").await;
        app.couple("blog-dev", "blog", Stage::Development, &[])
            .await;
        app.couple("blog-stg", "blog", Stage::Staging, &[]).await;
    }

    async fn release_states(app: &TestApp, name: &str) -> Vec<(i64, ReleaseState)> {
        app.releases
            .clone()
            .list_releases(ListReleasesRequest {
                app: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .releases
            .into_iter()
            .map(|release| (release.version, release.status()))
            .collect()
    }

    #[tokio::test]
    async fn a_rollback_waits_in_the_apps_queue_behind_a_running_promotion() {
        let (deployer, gate) = TestDeployer::gated();
        let app = spawn_app_deploying_with(deployer.clone()).await;
        couple_blog(&app).await;
        app.create_release("blog-stg", "registry/blog:0").await;
        app.create_release("blog-dev", "registry/blog:1").await;
        let promotion = app
            .promotions
            .clone()
            .create_promotion(CreatePromotionRequest {
                pipeline: "blog".into(),
                source_app: "blog-dev".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let Some(pipelines::proto::create_promotion_response::Result::Promotion(promotion)) =
            promotion.result
        else {
            panic!("a promotion");
        };
        drop(
            app.watch_until(&promotion.id, "target.release_created")
                .await,
        );
        let rollback = app
            .releases
            .clone()
            .rollback_release(RollbackReleaseRequest {
                app: "blog-stg".into(),
                release: "v1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rollback.version, 3);
        assert_eq!(rollback.status(), ReleaseState::Pending);
        assert_eq!(rollback.description, "Rollback to v1");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let db = pipelines::store::connect(&app.database.url).await.unwrap();
        use sea_orm::EntityTrait;
        let queued = pipelines::store::entities::rollback::Entity::find()
            .all(&db)
            .await
            .unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(
            queued[0].status, "pending",
            "the rollback waits while the promotion deploys to the same app"
        );
        gate.add_permits(2);
        app.finished_promotion(&promotion.id).await;
        for _ in 0..200 {
            if release_states(&app, "blog-stg").await[0] == (3, ReleaseState::Succeeded) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            release_states(&app, "blog-stg").await,
            [
                (3, ReleaseState::Succeeded),
                (2, ReleaseState::Succeeded),
                (1, ReleaseState::Succeeded)
            ]
        );
        assert_eq!(deployer.deployments(), ["blog-stg", "blog-stg"]);
    }

    #[tokio::test]
    async fn release_statuses_carry_the_combined_state() {
        use pipelines::proto::{
            CreateReleaseStatusRequest, ListReleaseStatusesRequest, StatusState,
        };
        let app = spawn_app().await;
        app.create_app("blog-dev").await;
        let release = app.create_release("blog-dev", "registry/blog:1").await;
        let state = || async {
            app.releases
                .clone()
                .list_release_statuses(ListReleaseStatusesRequest {
                    app: "blog-dev".into(),
                    release_id: release.id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .state()
        };
        assert_eq!(state().await, StatusState::Success, "no statuses at all");
        for (context, posted, combined) in [
            ("ci/a", StatusState::Success, StatusState::Success),
            ("ci/b", StatusState::Pending, StatusState::Pending),
            ("ci/c", StatusState::Failure, StatusState::Failure),
            ("ci/d", StatusState::Error, StatusState::Error),
        ] {
            app.releases
                .clone()
                .create_release_status(CreateReleaseStatusRequest {
                    app: "blog-dev".into(),
                    release_id: release.id.clone(),
                    context: context.into(),
                    name: context.into(),
                    state: posted as i32,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(state().await, combined, "after {context}");
        }
    }

    #[tokio::test]
    async fn deleting_an_app_cancels_its_queued_rollback() {
        let (deployer, gate) = TestDeployer::gated();
        let app = spawn_app_deploying_with(deployer.clone()).await;
        couple_blog(&app).await;
        app.create_release("blog-stg", "registry/blog:0").await;
        app.create_release("blog-dev", "registry/blog:1").await;
        let created = app
            .promotions
            .clone()
            .create_promotion(CreatePromotionRequest {
                pipeline: "blog".into(),
                source_app: "blog-dev".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let Some(pipelines::proto::create_promotion_response::Result::Promotion(promotion)) =
            created.result
        else {
            panic!("a promotion");
        };
        drop(
            app.watch_until(&promotion.id, "target.release_created")
                .await,
        );
        let rollback = app
            .releases
            .clone()
            .rollback_release(RollbackReleaseRequest {
                app: "blog-stg".into(),
                release: "v1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let (status, body) = app.call(Method::DELETE, "/apps/blog-stg", None, None).await;
        assert_eq!(status, 200, "{body}");
        gate.add_permits(5);
        app.finished_promotion(&promotion.id).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let db = pipelines::store::connect(&app.database.url).await.unwrap();
        use sea_orm::EntityTrait;
        let stored = pipelines::store::entities::release::Entity::find_by_id(
            uuid::Uuid::parse_str(&rollback.id).unwrap(),
        )
        .one(&db)
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            stored.status, "failed",
            "the rollback's release never becomes current"
        );
        let rollbacks = pipelines::store::entities::rollback::Entity::find()
            .all(&db)
            .await
            .unwrap();
        assert_eq!(rollbacks[0].status, "canceled");
        // Only the deploy already in flight at the deletion went out.
        assert_eq!(deployer.deployments(), ["blog-stg"]);
    }

    #[tokio::test]
    async fn a_failed_rollback_leaves_the_current_release() {
        let app = spawn_app_deploying_with(TestDeployer::failing(&["blog-dev"])).await;
        couple_blog(&app).await;
        app.create_release("blog-dev", "registry/blog:1").await;
        app.create_release("blog-dev", "registry/blog:2").await;
        app.releases
            .clone()
            .rollback_release(RollbackReleaseRequest {
                app: "blog-dev".into(),
                release: "1".into(),
            })
            .await
            .unwrap();
        for _ in 0..200 {
            if release_states(&app, "blog-dev").await[0].1 != ReleaseState::Pending {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            release_states(&app, "blog-dev").await[0],
            (3, ReleaseState::Failed)
        );
        let coupling = app
            .couplings
            .clone()
            .get_app_coupling(pipelines::proto::GetAppCouplingRequest {
                app: "blog-dev".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(coupling.release.unwrap().version, 2);
        assert_status(
            app.releases
                .clone()
                .rollback_release(RollbackReleaseRequest {
                    app: "blog-dev".into(),
                    release: "v3".into(),
                })
                .await,
            Code::InvalidArgument,
            &["v3", "failed", "only a succeeded release"],
        );
    }
}

/// Whether a message leaks an internal type name: `struct X`, `enum X`, or a CamelCase
/// identifier.
fn names_a_rust_type(message: &str) -> bool {
    message.contains("struct ")
        || message.contains("enum ")
        || message.contains("variant")
        || message.split(|c: char| !c.is_alphanumeric()).any(|word| {
            let mut chars = word.chars();
            chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && word.chars().skip(1).any(|c| c.is_ascii_uppercase())
                && word.chars().any(|c| c.is_ascii_lowercase())
        })
}

#[tokio::test]
async fn a_wrong_json_type_in_any_body_field_is_422_naming_it_without_rust_types() {
    let app = spawn_app().await;
    let (aka, first, _) = blog(&app).await;
    let release = first["id"].as_str().unwrap().to_owned();
    let (_, status) = aka
        .send(
            Method::POST,
            &format!("/apps/blog-dev/releases/{release}/statuses"),
            Some(json!({"context": "ci/a", "name": "A", "state": "success"})),
        )
        .await;
    let coupling = aka.get("/apps/blog-stg/pipeline-couplings").await;
    let statuses = format!("/apps/blog-dev/releases/{release}/statuses");
    let status_path = format!("{statuses}/{}", status["id"].as_str().unwrap());
    let coupling_path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
    let promotion = json!({"pipeline": "blog", "source": {"app": "blog-dev"}});
    let with = |base: &Value, pointer: &[&str], value: Value| {
        let mut body = base.clone();
        let mut slot = &mut body;
        for key in pointer {
            if slot.get(*key).is_none() {
                slot[*key] = json!({});
            }
            slot = &mut slot[*key];
        }
        *slot = value;
        body
    };
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/pipelines".into(),
            json!({"name": 5}),
            "name",
        ),
        (
            Method::POST,
            "/pipelines".into(),
            json!({"name": "x", "description": []}),
            "description",
        ),
        (Method::POST, "/apps".into(), json!({"name": {}}), "name"),
        (
            Method::PATCH,
            "/apps/blog-dev/config-vars".into(),
            json!({"KEY": 5}),
            "KEY",
        ),
        (
            Method::POST,
            "/pipeline-couplings".into(),
            json!({"app": 5, "pipeline": "blog", "stage": "review"}),
            "app",
        ),
        (
            Method::POST,
            "/pipeline-couplings".into(),
            json!({"app": "x", "pipeline": [1], "stage": "review"}),
            "pipeline",
        ),
        (
            Method::POST,
            "/pipeline-couplings".into(),
            json!({"app": "x", "pipeline": "blog", "stage": 3}),
            "stage",
        ),
        (
            Method::POST,
            "/pipeline-couplings".into(),
            json!({"app": "x", "pipeline": "blog", "stage": "review", "required_status_checks": "ci"}),
            "required_status_checks",
        ),
        (
            Method::POST,
            "/pipeline-couplings".into(),
            json!({"app": "x", "pipeline": "blog", "stage": "review", "required_status_checks": {"contexts": "ci"}}),
            "contexts",
        ),
        (
            Method::PATCH,
            coupling_path.clone(),
            json!({"required_status_checks": ["ci"]}),
            "required_status_checks",
        ),
        (
            Method::PATCH,
            coupling_path,
            json!({"required_status_checks": {"contexts": [1]}}),
            "contexts",
        ),
        (
            Method::POST,
            "/apps/blog-dev/releases".into(),
            json!({"image": 1}),
            "image",
        ),
        (
            Method::POST,
            "/apps/blog-dev/releases".into(),
            json!({"image": "x", "description": 1}),
            "description",
        ),
        (
            Method::POST,
            "/apps/blog-dev/releases".into(),
            json!({"release": {}}),
            "release",
        ),
        (
            Method::POST,
            statuses.clone(),
            json!({"context": 1, "name": "n", "state": "success"}),
            "context",
        ),
        (
            Method::POST,
            statuses.clone(),
            json!({"context": "c", "name": [], "state": "success"}),
            "name",
        ),
        (
            Method::POST,
            statuses.clone(),
            json!({"context": "c", "name": "n", "state": 1}),
            "state",
        ),
        (
            Method::POST,
            statuses.clone(),
            json!({"context": "c", "name": "n", "state": "success", "target_url": 1}),
            "target_url",
        ),
        (
            Method::POST,
            statuses,
            json!({"context": "c", "name": "n", "state": "success", "image_url": {}}),
            "image_url",
        ),
        (
            Method::PATCH,
            status_path.clone(),
            json!({"state": true}),
            "state",
        ),
        (
            Method::PATCH,
            status_path,
            json!({"description": 1}),
            "description",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["pipeline"], json!(5)),
            "pipeline",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["source"], json!("blog-dev")),
            "source",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["source", "app"], json!(7)),
            "source.app",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["source", "release"], json!("v1")),
            "source.release",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(
                &promotion,
                &["source", "app"],
                json!({"id": "blog-dev", "release": 1}),
            ),
            "source.app",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["targets"], json!({"app": "blog-stg"})),
            "targets",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["targets"], json!([5])),
            "targets[0]",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["targets"], json!([{"app": 5}])),
            "targets[0].app",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["safe"], json!("yes")),
            "safe",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["dry_run"], json!(1)),
            "dry_run",
        ),
        (
            Method::POST,
            "/pipeline-promotions".into(),
            with(&promotion, &["request_id"], json!(1)),
            "request_id",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, answer) = aka.send(method.clone(), &path, Some(body.clone())).await;
        let message = answer["message"].as_str().unwrap_or_default();
        assert_eq!(status, 422, "{method} {path} {body}: {answer}");
        assert!(message.contains(field), "{body}: {message:?} names {field}");
        assert!(
            !names_a_rust_type(message),
            "{body}: {message:?} names a Rust type"
        );
    }
    // A form-encoded body is told to be JSON.
    let response = app
        .rest(Method::POST, "/pipelines")
        .header("authorization", &aka.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=foo")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("must be a JSON object"),
        "{answer}"
    );
}

#[tokio::test]
async fn messages_name_the_app_and_pipeline_for_people() {
    let app = spawn_app().await;
    let (aka, _, _) = blog(&app).await;
    let (status, answer) = aka
        .send(
            Method::POST,
            "/pipeline-couplings",
            Some(json!({"app": "blog-stg", "pipeline": "blog", "stage": "staging"})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        answer["message"],
        "the application already is pipelined: app 'blog-stg' is in pipeline 'blog'"
    );
    let (status, _) = aka
        .send(Method::POST, "/apps", Some(json!({"name": "loner"})))
        .await;
    assert_eq!(status, 201);
    let (status, answer) = aka
        .send(Method::GET, "/apps/loner/pipeline-couplings", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        answer["message"],
        "coupling of app 'loner' not found: the app is in no pipeline"
    );
}
