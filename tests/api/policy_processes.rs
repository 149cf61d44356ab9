//! Auto-promotion across a crash: a trigger written by one process is evaluated by the
//! next one when the first dies before the promotion is stored.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::{json, Value};

use crate::{
    helpers::fresh_database,
    processes::{start_webhook, ServerProcess},
};

async fn rest(server: &ServerProcess, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("http://{}{path}", server.address))
        .json(&body)
        .send()
        .await
        .expect("REST call");
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

async fn get(server: &ServerProcess, path: &str) -> Value {
    let response = reqwest::get(format!("http://{}{path}", server.address))
        .await
        .expect("REST call");
    response.json().await.expect("JSON")
}

/// How many queries of this database wait for a lock.
async fn lock_waiters(db: &impl ConnectionTrait) -> i64 {
    db.query_one(Statement::from_string(
        DbBackend::Postgres,
        "SELECT count(*) AS waiting FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "waiting")
    .unwrap()
}

/// On PostgreSQL the first process is held exactly between the two: it has taken the
/// trigger and claimed the target, and waits for the target app's row, which the test
/// holds locked, when it is killed. On SQLite, which has no row locks to hold it with, the
/// kill comes as soon as the status is answered, wherever the engine then is; the
/// assertions are the same either way.
#[tokio::test]
async fn a_trigger_survives_a_sigkill_before_its_promotion_is_stored() {
    let database = fresh_database().await;
    let (url, _receiver) = start_webhook(Duration::ZERO).await;
    let mut first = ServerProcess::start(&database.url, &url, &[]).await;
    let post = reqwest::Method::POST;
    rest(&first, post.clone(), "/pipelines", json!({"name": "shop"})).await;
    for (name, stage, policy) in [
        ("shop-dev", "development", json!({})),
        ("shop-stg", "staging", json!({"auto_promote": true})),
    ] {
        rest(&first, post.clone(), "/apps", json!({"name": name})).await;
        let coupling = json!({
            "app": name,
            "pipeline": "shop",
            "stage": stage,
            "required_status_checks": {"contexts": if stage == "staging" { vec!["ci/tests"] } else { vec![] }},
            "promotion_policy": policy,
        });
        rest(&first, post.clone(), "/pipeline-couplings", coupling).await;
    }
    let built = rest(
        &first,
        post.clone(),
        "/apps/shop-dev/releases",
        json!({"image": "shop:1"}),
    )
    .await;
    let status_path = format!(
        "/apps/shop-dev/releases/{}/statuses",
        built["id"].as_str().unwrap()
    );
    let green = json!({"context": "ci/tests", "name": "tests", "state": "success"});

    if database.is_postgres() {
        let db = pipelines::store::connect(&database.url).await.unwrap();
        let holder = db.begin().await.unwrap();
        holder
            .execute(Statement::from_string(
                DbBackend::Postgres,
                "SELECT id FROM apps WHERE name = 'shop-stg' FOR UPDATE",
            ))
            .await
            .unwrap();
        rest(&first, post.clone(), &status_path, green).await;
        let started = Instant::now();
        while lock_waiters(&db).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the engine never reached the target app's lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        first.kill();
        holder.rollback().await.unwrap();
    } else {
        rest(&first, post.clone(), &status_path, green).await;
        first.kill();
    }

    let second = ServerProcess::start(&database.url, &url, &[]).await;
    let started = Instant::now();
    loop {
        let promotions = get(&second, "/pipeline-promotions?pipeline=shop").await;
        let finished = promotions
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["status"] == "successful");
        if finished {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the auto-promotion never finished: {promotions}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a second evaluation every chance to show up.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let promotions = get(&second, "/pipeline-promotions?pipeline=shop")
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        promotions.len(),
        1,
        "exactly one auto-promotion: {promotions:?}"
    );
    assert_eq!(promotions[0]["created_by"], "auto-promotion");
    let releases = get(&second, "/apps/shop-stg/releases").await;
    assert_eq!(
        releases.as_array().unwrap().len(),
        1,
        "one release on staging: {releases}"
    );
}
