//! `pipelines promote` following a verification: the real binary against a real server,
//! read line by line as a script would, showing `verifying`, each result as it arrives,
//! the rollback, and the failed exit code.

use std::{process::Stdio, time::Duration};

use reqwest::Method;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};

use super::{call_ok, contexts, get, shop, target_in, tokens};
use crate::helpers::spawn_app;

type Output = Lines<BufReader<tokio::process::ChildStdout>>;

/// Reads lines until one contains every one of `wanted`, and returns the lines read.
async fn read_until(lines: &mut Output, wanted: &[&str]) -> Vec<String> {
    let mut read = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no line with {wanted:?} within 30 s: {read:#?}"))
            .expect("stdout reads")
            .unwrap_or_else(|| panic!("the output ended before {wanted:?}: {read:#?}"));
        let found = wanted.iter().all(|part| line.contains(part));
        read.push(line);
        if found {
            return read;
        }
    }
}

#[tokio::test]
async fn promote_shows_each_verification_result_as_it_arrives_and_the_rollback() {
    let app = spawn_app().await;
    let t = tokens(&app).await;
    shop(
        &app,
        &t.ops,
        &["shop-stg"],
        contexts(&["smoke", "load"], 600, "rollback"),
        true,
    )
    .await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipelines"))
        .args(["promote", "--pipeline", "shop", "--from", "shop-dev"])
        .args(["--server", &format!("http://{}", app.address)])
        .args(["--token", &t.ci])
        .env_remove("PIPELINES_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the CLI starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    read_until(&mut lines, &["target.verifying", "shop-stg"]).await;
    let promotions = get(&app, "/pipeline-promotions?pipeline=shop", &t.ci).await;
    let id = promotions[0]["id"].as_str().unwrap();
    let verifying = target_in(&app, id, "shop-stg", "verifying", &t.ci).await;
    let release_id = verifying["release"]["id"].as_str().unwrap().to_owned();
    let statuses = format!("/apps/shop-stg/releases/{release_id}/statuses");
    let smoke = serde_json::json!({"context": "smoke", "name": "smoke", "state": "success",
        "description": "smoke passed"});
    call_ok(&app, Method::POST, &statuses, smoke, &t.ci).await;
    // The first result shows while the target still verifies: no event carries it.
    let before = read_until(
        &mut lines,
        &[
            "verification result",
            "shop-stg",
            "smoke: success (smoke passed)",
        ],
    )
    .await;
    assert!(
        !before.iter().any(|line| line.contains("target.verified")),
        "{before:#?}"
    );

    let load = serde_json::json!({"context": "load", "name": "load", "state": "failure",
        "description": "p99 over budget"});
    call_ok(&app, Method::POST, &statuses, load, &t.ci).await;
    let mut rest = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the CLI ends within 30 s")
        .expect("stdout reads")
    {
        rest.push(line);
    }
    let status = child.wait().await.expect("the CLI exits");
    assert_eq!(status.code(), Some(10), "failed: {rest:#?}");
    let text = rest.join("\n");
    for expected in [
        "target.verification_failed",
        "load: failure (p99 over budget)",
        "target.rolled_back",
        "v3",
        "target.failed",
        "promotion failed: 0 of 1 targets succeeded",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}
