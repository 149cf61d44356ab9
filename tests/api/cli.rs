//! `pipelines promote`, `watch` and `status`: the real binary against a real server, its
//! output read as a script would (not a terminal: one plain line per event), and its exit
//! codes.

use std::{process::Output, time::Duration};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_deploying_with, TestApp, TestDeployer};

/// Runs `pipelines ARGS --server <the app>`, with the token when given.
pub(crate) async fn run(app: &TestApp, args: &[&str], token: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipelines"));
    command
        .args(args)
        .args(["--server", &format!("http://{}", app.address)])
        .env_remove("PIPELINES_TOKEN")
        .kill_on_drop(true);
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command ends")
        .expect("the command runs")
}

pub(crate) fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn post(app: &TestApp, path: &str, body: Value, token: &str) -> Value {
    let (status, answer) = app.call(Method::POST, path, Some(body), Some(token)).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// Pipeline `shop`: `shop-dev` with release v1, and staging apps `shop-stg-a` (requiring
/// `ci/unit`) and `shop-stg-b`, with the given policy on `shop-stg-b`.
async fn shop(app: &TestApp, token: &str, policy: Value) -> Value {
    post(app, "/pipelines", json!({"name": "shop"}), token).await;
    for name in ["shop-dev", "shop-stg-a", "shop-stg-b"] {
        post(app, "/apps", json!({"name": name}), token).await;
    }
    for body in [
        json!({"app": "shop-dev", "pipeline": "shop", "stage": "development"}),
        json!({"app": "shop-stg-a", "pipeline": "shop", "stage": "staging",
               "required_status_checks": {"contexts": ["ci/unit"]}}),
        json!({"app": "shop-stg-b", "pipeline": "shop", "stage": "staging",
               "promotion_policy": policy}),
    ] {
        post(app, "/pipeline-couplings", body, token).await;
    }
    post(
        app,
        "/apps/shop-dev/releases",
        json!({"image": "shop:1"}),
        token,
    )
    .await
}

#[tokio::test]
async fn promote_follows_to_the_end_and_exits_by_outcome() {
    let app = spawn_app_deploying_with(TestDeployer::failing(&["shop-stg-a"])).await;
    let ops = app.create_token("ops", "admin").await;
    let release = shop(&app, &ops, json!({})).await;

    // Refused: an unmet required check, listed readably.
    let refused = run(
        &app,
        &["promote", "--pipeline", "shop", "--from", "shop-dev"],
        Some(&ops),
    )
    .await;
    assert_eq!(code(&refused), 20, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("shop-stg-a/staging/ci/unit"),
        "{}",
        stderr(&refused)
    );
    assert!(!stderr(&refused).contains("panicked"));

    // A dry run with the check bypassed by an admin would be accepted.
    let planned = run(
        &app,
        &[
            "promote",
            "--pipeline",
            "shop",
            "--from",
            "shop-dev",
            "--unsafe",
            "--dry-run",
        ],
        Some(&ops),
    )
    .await;
    assert_eq!(code(&planned), 0, "{}", stderr(&planned));
    assert!(
        stdout(&planned).contains("would be accepted"),
        "{}",
        stdout(&planned)
    );
    assert!(
        stdout(&planned).contains("ci/unit: bypassed"),
        "{}",
        stdout(&planned)
    );

    // One target: successful, 0, one line per event.
    let done = run(
        &app,
        &[
            "promote",
            "--pipeline",
            "shop",
            "--from",
            "shop-dev",
            "--to",
            "shop-stg-b",
        ],
        Some(&ops),
    )
    .await;
    assert_eq!(code(&done), 0, "{}", stderr(&done));
    let text = stdout(&done);
    for expected in [
        "promotion.created",
        "target.running",
        "target.release_created",
        "target.succeeded",
        "promotion.finished",
        "promotion successful: 1 of 1 targets succeeded",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(text.contains("Ctrl-C stops watching"), "{text}");

    // Both, with the check bypassed: shop-stg-a's deploy fails, so partially_failed, 11.
    let mixed = run(
        &app,
        &[
            "promote",
            "--pipeline",
            "shop",
            "--from",
            "shop-dev",
            "--unsafe",
            "--output",
            "json",
        ],
        Some(&ops),
    )
    .await;
    assert_eq!(code(&mixed), 11, "{}", stderr(&mixed));
    let events: Vec<Value> = stdout(&mixed)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("JSON: {line}")))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "promotion.created");
    assert_eq!(events.last().unwrap()["event"], "promotion.finished");
    assert_eq!(
        events.last().unwrap()["promotion_status"],
        "partially_failed"
    );
    assert!(events
        .iter()
        .any(|e| e["event"] == "target.failed" && e["app"]["name"] == "shop-stg-a"));

    // Only the failing target: failed, 10. Naming the release works too.
    let release_id = release["id"].as_str().unwrap();
    let failed = run(
        &app,
        &[
            "promote",
            "--pipeline",
            "shop",
            "--from",
            "shop-dev",
            "--to",
            "shop-stg-a",
            "--release",
            release_id,
            "--unsafe",
        ],
        Some(&ops),
    )
    .await;
    assert_eq!(code(&failed), 10, "{}", stderr(&failed));
    assert!(
        stdout(&failed).contains("test deployer refuses 'shop-stg-a'"),
        "{}",
        stdout(&failed)
    );

    // `watch` of a finished promotion replays it, with the same exit code.
    let (_, list) = app
        .call(
            Method::GET,
            "/pipeline-promotions?pipeline=shop",
            None,
            Some(&ops),
        )
        .await;
    let newest = list[0]["id"].as_str().unwrap();
    let watched = run(&app, &["watch", newest], Some(&ops)).await;
    assert_eq!(code(&watched), 10, "{}", stderr(&watched));
    assert!(stdout(&watched).contains("promotion.finished"));
}

#[tokio::test]
async fn promote_waits_through_approval_and_says_who_may_approve() {
    let app = spawn_app().await;
    let ops = app.create_token("ops", "admin").await;
    let alice = app.create_token("alice", "write").await;
    shop(&app, &ops, json!({"required_approvals": 1})).await;

    let args = [
        "promote",
        "--pipeline",
        "shop",
        "--from",
        "shop-dev",
        "--to",
        "shop-stg-b",
    ];
    let promoting = run(&app, &args, Some(&ops));
    let approving = async {
        let id = loop {
            let (_, list) = app
                .call(
                    Method::GET,
                    "/pipeline-promotions?pipeline=shop",
                    None,
                    Some(&ops),
                )
                .await;
            if let Some(id) = list[0]["id"].as_str() {
                break id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        post(
            &app,
            &format!("/pipeline-promotions/{id}/approvals"),
            json!({}),
            &alice,
        )
        .await;
    };
    let (output, ()) = tokio::join!(promoting, approving);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("awaiting approval: 0 of 1 granted"), "{text}");
    assert!(
        text.contains("Any write token other than 'ops' may approve"),
        "{text}"
    );
    assert!(text.contains("approval.granted"), "{text}");
    assert!(text.contains("promotion successful"), "{text}");

    // Rejected: 13; canceled: 12.
    let (_, created) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": "shop", "source": {"app": "shop-dev"}, "targets": [{"app": "shop-stg-b"}]})),
            Some(&ops),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    post(
        &app,
        &format!("/pipeline-promotions/{id}/rejections"),
        json!({"comment": "not today"}),
        &alice,
    )
    .await;
    let rejected = run(&app, &["watch", id], Some(&ops)).await;
    assert_eq!(code(&rejected), 13, "{}", stderr(&rejected));
    assert!(
        stdout(&rejected).contains("not today"),
        "{}",
        stdout(&rejected)
    );

    let (_, created) = app
        .call(
            Method::POST,
            "/pipeline-promotions",
            Some(json!({"pipeline": "shop", "source": {"app": "shop-dev"}, "targets": [{"app": "shop-stg-b"}]})),
            Some(&ops),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    post(
        &app,
        &format!("/pipeline-promotions/{id}/cancel"),
        json!({}),
        &ops,
    )
    .await;
    let canceled = run(&app, &["watch", id], Some(&ops)).await;
    assert_eq!(code(&canceled), 12, "{}", stderr(&canceled));
}

#[tokio::test]
async fn status_prints_the_pipeline_as_a_table() {
    let app = spawn_app().await;
    let ops = app.create_token("ops", "admin").await;
    shop(
        &app,
        &ops,
        json!({"auto_promote": true, "required_approvals": 2}),
    )
    .await;
    let output = run(&app, &["status", "shop"], Some(&ops)).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("pipeline shop ("), "{text}");
    assert!(lines[1].starts_with("STAGE"), "{text}");
    assert!(lines[1].contains("REQUIRED CHECKS"), "{text}");
    let row = |app: &str| {
        lines
            .iter()
            .find(|line| line.contains(app))
            .unwrap()
            .to_string()
    };
    let dev = row("shop-dev");
    assert!(
        dev.starts_with("development") && dev.contains("v1") && dev.contains("shop:1"),
        "{dev}"
    );
    assert!(row("shop-stg-a").contains("ci/unit"), "{text}");
    assert!(row("shop-stg-b").contains("auto, 2 approval(s)"), "{text}");

    let json_output = run(&app, &["status", "shop", "--output", "json"], Some(&ops)).await;
    let parsed: Value = serde_json::from_slice(&json_output.stdout).expect("JSON");
    assert_eq!(parsed["apps"].as_array().unwrap().len(), 3);

    let missing = run(&app, &["status", "ghost"], Some(&ops)).await;
    assert_eq!(code(&missing), 20);
    assert!(stderr(&missing).contains("ghost"), "{}", stderr(&missing));
}

#[tokio::test]
async fn a_wrong_server_or_token_gets_a_clear_message_and_its_exit_code() {
    let app = spawn_app().await;
    let ops = app.create_token("ops", "admin").await;
    shop(&app, &ops, json!({})).await;

    let bad_token = run(&app, &["status", "shop"], Some("not-a-real-token")).await;
    assert_eq!(code(&bad_token), 20, "{}", stderr(&bad_token));
    assert!(
        stderr(&bad_token).contains("refused the token"),
        "{}",
        stderr(&bad_token)
    );
    let no_token = run(&app, &["status", "shop"], None).await;
    assert_eq!(code(&no_token), 20, "{}", stderr(&no_token));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for server in [format!("http://127.0.0.1:{port}"), "not a url".to_owned()] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipelines"))
            .args(["status", "shop", "--server", &server, "--token", &ops])
            .output()
            .await
            .unwrap();
        assert_eq!(code(&output), 21, "{server}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(message.starts_with("pipelines: "), "{message}");
        assert!(message.contains(&server), "{message}");
        assert!(!message.contains("panicked"), "{message}");
    }
}
