//! The stage diff: per target, what promoting would change, and a verdict that always
//! agrees with a dry run of the same promotion.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    cli::{code, run, stdout},
    helpers::{spawn_app, TestApp},
};

const TARGETS: [&str; 3] = ["shop-stg-a", "shop-stg-b", "shop-stg-c"];
const CONTEXTS: [&str; 2] = ["ci/unit", "ci/e2e"];
const STATES: [&str; 4] = ["success", "pending", "failure", "error"];
const KEYS: [&str; 3] = ["DATABASE_URL", "API_KEY", "FEATURE_X"];

/// A small deterministic generator, so that a failing state can be replayed.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

async fn ok(app: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = app.call(method, path, Some(body), None).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

async fn three_target_shop(app: &TestApp) {
    ok(app, Method::POST, "/pipelines", json!({"name": "shop"})).await;
    for name in std::iter::once("shop-dev").chain(TARGETS) {
        ok(app, Method::POST, "/apps", json!({"name": name})).await;
    }
    ok(
        app,
        Method::POST,
        "/pipeline-couplings",
        json!({"app": "shop-dev", "pipeline": "shop", "stage": "development"}),
    )
    .await;
    for target in TARGETS {
        ok(
            app,
            Method::POST,
            "/pipeline-couplings",
            json!({"app": target, "pipeline": "shop", "stage": "staging"}),
        )
        .await;
    }
}

/// Changes the pipeline at random: a new source release, statuses on it, required
/// contexts, config keys, a target already running the image, a freeze.
async fn mutate(app: &TestApp, random: &mut Generator, freeze: &mut Option<String>) {
    if random.chance(30) {
        let image = format!("registry/shop:{}", random.below(3));
        ok(
            app,
            Method::POST,
            "/apps/shop-dev/releases",
            json!({"image": image}),
        )
        .await;
    }
    let (_, releases) = app
        .call(Method::GET, "/apps/shop-dev/releases", None, None)
        .await;
    if let Some(current) = releases.as_array().and_then(|all| all.last()) {
        let statuses = format!(
            "/apps/shop-dev/releases/{}/statuses",
            current["id"].as_str().unwrap()
        );
        let (_, existing) = app.call(Method::GET, &statuses, None, None).await;
        for context in CONTEXTS {
            if !random.chance(50) {
                continue;
            }
            let state = STATES[random.below(STATES.len())];
            let found = existing["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .find(|status| status["context"] == context)
                .cloned();
            match found {
                Some(status) => {
                    let path = format!("{statuses}/{}", status["id"].as_str().unwrap());
                    ok(app, Method::PATCH, &path, json!({"state": state})).await;
                }
                None => {
                    let body = json!({"context": context, "name": context, "state": state});
                    ok(app, Method::POST, &statuses, body).await;
                }
            }
        }
    }
    for target in TARGETS {
        if random.chance(40) {
            let contexts: Vec<&str> = CONTEXTS.into_iter().filter(|_| random.chance(50)).collect();
            let (_, coupling) = app
                .call(
                    Method::GET,
                    &format!("/apps/{target}/pipeline-couplings"),
                    None,
                    None,
                )
                .await;
            let path = format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap());
            ok(
                app,
                Method::PATCH,
                &path,
                json!({"required_status_checks": {"contexts": contexts}}),
            )
            .await;
        }
        if random.chance(30) {
            let key = KEYS[random.below(KEYS.len())];
            let value = if random.chance(50) {
                Value::Null
            } else {
                json!("v")
            };
            let path = format!("/apps/{target}/config-vars");
            ok(app, Method::PATCH, &path, json!({ key: value })).await;
        }
        if random.chance(10) {
            let image = format!("registry/shop:{}", random.below(3));
            ok(
                app,
                Method::POST,
                &format!("/apps/{target}/releases"),
                json!({"image": image}),
            )
            .await;
        }
    }
    if random.chance(20) {
        match freeze.take() {
            Some(id) => {
                ok(
                    app,
                    Method::DELETE,
                    &format!("/pipelines/shop/freezes/{id}"),
                    Value::Null,
                )
                .await;
            }
            None => {
                let made = ok(
                    app,
                    Method::POST,
                    "/pipelines/shop/freezes",
                    json!({"stages": ["staging"], "ends_at": "2999-01-01T00:00:00Z", "reason": "generated"}),
                )
                .await;
                *freeze = made["id"].as_str().map(str::to_owned);
            }
        }
    }
}

#[tokio::test]
async fn the_diff_verdict_agrees_with_a_dry_run_in_every_generated_state() {
    let app = spawn_app().await;
    three_target_shop(&app).await;
    let mut random = Generator(0x5eed_2026);
    let mut freeze = None;
    let mut compared = 0;
    let mut blocked = 0;
    for round in 0..40 {
        mutate(&app, &mut random, &mut freeze).await;
        let (status, diff) = app
            .call(
                Method::GET,
                "/pipelines/shop/diff?from=development",
                None,
                None,
            )
            .await;
        if status == 422 {
            // Only before the source has a release.
            assert!(
                diff["message"]
                    .as_str()
                    .unwrap()
                    .contains("no current release"),
                "{diff}"
            );
            continue;
        }
        assert_eq!(status, 200, "round {round}: {diff}");
        let targets = diff["targets"].as_array().unwrap();
        assert_eq!(targets.len(), TARGETS.len());
        for target in targets {
            let name = target["app"]["name"].as_str().unwrap();
            let (dry_status, plan) = app
                .call(
                    Method::POST,
                    "/pipeline-promotions",
                    Some(
                        json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}},
                                "targets": [{"app": {"id": name}}], "dry_run": true}),
                    ),
                    None,
                )
                .await;
            let promotable = target["promotable"].as_bool().unwrap();
            assert_eq!(
                promotable,
                dry_status == 200,
                "round {round}, {name}: diff {target} but dry run {dry_status} {plan}"
            );
            assert_eq!(
                promotable,
                target["blocked_by"].as_array().unwrap().is_empty()
            );
            if !promotable {
                blocked += 1;
                let kinds: Vec<&str> = target["blocked_by"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b["kind"].as_str().unwrap())
                    .collect();
                if dry_status == 409 && plan["message"].as_str().unwrap().contains("frozen") {
                    assert_eq!(kinds, ["freeze"], "{target}");
                } else {
                    assert!(kinds.iter().all(|k| *k == "status_check"), "{target}");
                    for check in target["checks"].as_array().unwrap() {
                        let unmet = check["state"] != "success";
                        let named = target["blocked_by"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|b| b["context"] == check["context"]);
                        assert_eq!(unmet, named, "{target}");
                    }
                }
            }
            compared += 1;
        }
    }
    assert!(compared >= 90, "compared {compared} targets");
    assert!(
        blocked > 10 && blocked < compared,
        "{blocked} of {compared} blocked"
    );
}

#[tokio::test]
async fn the_diff_shows_images_config_keys_and_check_states_but_never_values() {
    let app = spawn_app().await;
    three_target_shop(&app).await;
    let release = app.create_release("shop-dev", "registry/shop:2").await;
    app.create_release("shop-stg-b", "registry/shop:2").await;
    app.create_release("shop-stg-c", "registry/shop:1").await;
    let couplings: Vec<Value> = {
        let (_, list) = app
            .call(
                Method::GET,
                "/pipelines/shop/pipeline-couplings",
                None,
                None,
            )
            .await;
        list.as_array().unwrap().clone()
    };
    let stg_a = couplings
        .iter()
        .find(|c| c["app"]["name"] == "shop-stg-a")
        .unwrap();
    ok(
        &app,
        Method::PATCH,
        &format!("/pipeline-couplings/{}", stg_a["id"].as_str().unwrap()),
        json!({"required_status_checks": {"contexts": ["ci/unit", "ci/e2e"]}}),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("/apps/shop-dev/releases/{}/statuses", release.id),
        json!({"context": "ci/unit", "name": "Unit", "state": "success"}),
    )
    .await;
    ok(
        &app,
        Method::PATCH,
        "/apps/shop-dev/config-vars",
        json!({"API_KEY": "s3cret", "DB": "x"}),
    )
    .await;
    ok(
        &app,
        Method::PATCH,
        "/apps/shop-stg-a/config-vars",
        json!({"DB": "y", "OLD": "z"}),
    )
    .await;

    let (status, diff) = app
        .call(
            Method::GET,
            "/pipelines/shop/diff?from=development&to=staging",
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{diff}");
    assert!(!diff.to_string().contains("s3cret"), "values never appear");
    assert_eq!(diff["source"]["app"]["name"], "shop-dev");
    assert_eq!(diff["source"]["release"]["image"], "registry/shop:2");
    let target = |name: &str| {
        diff["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["app"]["name"] == name)
            .unwrap()
            .clone()
    };
    let a = target("shop-stg-a");
    assert_eq!(a["current"], Value::Null);
    assert_eq!(a["image_differs"], true);
    assert_eq!(
        a["config_keys"],
        json!({"missing_on_target": ["API_KEY"], "missing_on_source": ["OLD"]})
    );
    assert_eq!(
        a["checks"],
        json!([{"context": "ci/unit", "state": "success"}, {"context": "ci/e2e", "state": "missing"}])
    );
    assert_eq!(a["promotable"], false);
    assert_eq!(a["blocked_by"][0]["context"], "ci/e2e");
    let b = target("shop-stg-b");
    assert_eq!(b["image_differs"], false);
    assert_eq!(b["current"]["image"], "registry/shop:2");
    assert_eq!(b["promotable"], true, "drift is shown but does not block");
    let c = target("shop-stg-c");
    assert_eq!(c["image_differs"], true);
    assert_eq!(c["current"]["version"], 1);

    let mut pipelines = app.pipelines.clone();
    let over_grpc = pipelines
        .diff_stages(pipelines::proto::DiffStagesRequest {
            pipeline: "shop".into(),
            from_stage: pipelines::proto::Stage::Development as i32,
            to_stage: 0,
            source: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let verdicts: Vec<(String, bool)> = over_grpc
        .targets
        .iter()
        .map(|t| (t.app.as_ref().unwrap().name.clone(), t.promotable))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("shop-stg-a".to_owned(), false),
            ("shop-stg-b".to_owned(), true),
            ("shop-stg-c".to_owned(), true)
        ]
    );
    assert_eq!(over_grpc.targets[0].missing_on_target, ["API_KEY"]);
}

#[tokio::test]
async fn the_diff_refuses_what_it_cannot_compare_by_name() {
    let app = spawn_app().await;
    three_target_shop(&app).await;
    for (path, field) in [
        ("/pipelines/shop/diff", "from"),
        ("/pipelines/shop/diff?from=qa", "from"),
        ("/pipelines/shop/diff?from=production", "from"),
        ("/pipelines/shop/diff?from=development&to=production", "to"),
        ("/pipelines/shop/diff?from=development&to=review", "to"),
        ("/pipelines/shop/diff?from=review", "from"),
        ("/pipelines/shop/diff?from=staging", "source"),
        ("/pipelines/shop/diff?from=development", "source"),
        (
            "/pipelines/shop/diff?from=development&source=shop-stg-a",
            "source",
        ),
        ("/pipelines/shop/diff?from=development&stage=x", "stage"),
    ] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_eq!(status, 422, "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(field), "{path}: {message}");
    }
    let (status, _) = app
        .call(
            Method::GET,
            "/pipelines/nope/diff?from=development",
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::GET,
            "/pipelines/shop/diff?from=development&source=nope",
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
    use pipelines::proto::{DiffStagesRequest, Stage};
    let grpc = |from_stage: i32, to_stage: i32, source: &str| DiffStagesRequest {
        pipeline: "shop".into(),
        from_stage,
        to_stage,
        source: source.into(),
    };
    let development = Stage::Development as i32;
    for (request, field) in [
        (grpc(0, 0, ""), "from_stage"),
        (grpc(99, 0, ""), "from_stage"),
        (grpc(development, Stage::Production as i32, ""), "to_stage"),
        (grpc(development, 42, ""), "to_stage"),
        (grpc(Stage::Staging as i32, 0, ""), "source"),
    ] {
        let error = app
            .pipelines
            .clone()
            .diff_stages(request)
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument, "{field}");
        assert!(error.message().contains(field), "{}", error.message());
    }
    let mut client = app.pipelines.clone();
    let missing = client.diff_stages(grpc(development, 0, "nope")).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn the_diff_command_prints_both_images_and_exits_by_the_verdict() {
    let app = spawn_app().await;
    three_target_shop(&app).await;
    app.create_release("shop-dev", "registry/shop:2").await;
    app.create_release("shop-stg-b", "registry/shop:1").await;
    let output = run(&app, &["diff", "shop", "--from", "development"], None).await;
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    let text = stdout(&output);
    for expected in [
        "shop-stg-a",
        "shop-stg-b",
        "registry/shop:1",
        "registry/shop:2",
        "promotable",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let (_, coupling) = app
        .call(
            Method::GET,
            "/apps/shop-stg-a/pipeline-couplings",
            None,
            None,
        )
        .await;
    ok(
        &app,
        Method::PATCH,
        &format!("/pipeline-couplings/{}", coupling["id"].as_str().unwrap()),
        json!({"required_status_checks": {"contexts": ["ci/unit"]}}),
    )
    .await;
    let output = run(&app, &["diff", "shop", "--from", "development"], None).await;
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    assert!(stdout(&output).contains("BLOCKED"));
    assert!(stdout(&output).contains("ci/unit is missing"));
    let output = run(&app, &["diff", "shop", "--from", "staging"], None).await;
    assert_eq!(code(&output), 20, "several sources without --source");
    let output = run(&app, &["diff", "nope", "--from", "development"], None).await;
    assert_eq!(code(&output), 20);
}
