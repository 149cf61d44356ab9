//! Database faults under load: every connection of the service is terminated
//! (`pg_terminate_backend`) several times while promotions are being created and read.
//! Every answer must be 2xx, 4xx or 503, and nothing that was accepted may be lost.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use pipelines::proto::{PromotionStatus, Stage};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

use crate::helpers::{fresh_database, settings_for, spawn_app_with, TestApp};

const CREATES: usize = 40;
const MAX_ATTEMPTS: usize = 60;

/// Creates one promotion under an idempotency key, retrying while the database is away.
/// Returns the promotion's id and every status seen.
async fn create_until_accepted(app: &TestApp, key: String) -> (String, Vec<u16>) {
    let mut seen = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let response = app
            .rest(Method::POST, "/pipeline-promotions")
            .header("Idempotency-Key", &key)
            .json(&json!({"pipeline": "faulty", "source": {"app": {"id": "faulty-dev"}}}))
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        seen.push(status);
        match status {
            200 | 201 => return (body["id"].as_str().expect("promotion id").to_owned(), seen),
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("a create under faults answered {other}: {body}"),
        }
    }
    panic!("no create was accepted in {MAX_ATTEMPTS} attempts: {seen:?}");
}

#[tokio::test]
async fn terminated_connections_give_503_and_lose_nothing_accepted() {
    let database = fresh_database().await;
    if !database.is_postgres() {
        eprintln!("SKIPPED on SQLite: the embedded file has no connections to terminate; runs on PostgreSQL");
        return;
    }
    let database_name = database
        .url
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .expect("database name")
        .to_owned();
    // A step cut off with its connection cannot give its lease back; the lease's expiry is
    // the recovery, so keep it short here.
    let mut settings = settings_for(&database.url);
    settings.engine.lease_ttl = Duration::from_secs(2);
    let app = spawn_app_with(settings, database).await;
    app.create_pipeline("faulty").await;
    for name in ["faulty-dev", "faulty-stg-a", "faulty-stg-b"] {
        app.create_app(name).await;
    }
    app.couple("faulty-dev", "faulty", Stage::Development, &[])
        .await;
    app.couple("faulty-stg-a", "faulty", Stage::Staging, &[])
        .await;
    app.couple("faulty-stg-b", "faulty", Stage::Staging, &[])
        .await;
    app.create_release("faulty-dev", "registry/faulty:1").await;

    // A separate session terminates every other connection to the test database.
    let killer_db = Database::connect(&app.database.url)
        .await
        .expect("killer connects");
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut kills = 0;
            while !done.load(Ordering::Relaxed) && kills < 8 {
                tokio::time::sleep(Duration::from_millis(120)).await;
                killer_db
                    .execute(Statement::from_sql_and_values(
                        sea_orm::DbBackend::Postgres,
                        // Only this role's client sessions: autovacuum workers also show
                        // the database's name, and only a superuser may signal them.
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid() \
                         AND backend_type = 'client backend' AND usename = current_user",
                        [database_name.clone().into()],
                    ))
                    .await
                    .expect("terminate backends");
                kills += 1;
            }
            kills
        })
    };

    let app = &app;
    let creates = (0..CREATES).map(|n| create_until_accepted(app, format!("fault-{n}")));
    let reads = (0..CREATES).map(|n| async move {
        tokio::time::sleep(Duration::from_millis(n as u64 * 15)).await;
        let path = match n % 3 {
            0 => "/pipelines/faulty".to_owned(),
            1 => "/pipelines/faulty/pipeline-couplings".to_owned(),
            _ => "/pipeline-promotions?pipeline=faulty".to_owned(),
        };
        let response = app
            .rest(Method::GET, &path)
            .send()
            .await
            .expect("the server answers");
        (path, response.status().as_u16())
    });
    let (created, read) = tokio::join!(
        futures::future::join_all(creates),
        futures::future::join_all(reads)
    );
    done.store(true, Ordering::Relaxed);
    let kills = killer.await.expect("killer");
    assert!(
        kills >= 2,
        "the connections were terminated only {kills} times"
    );

    for (path, status) in &read {
        assert!(
            (200..500).contains(status) || *status == 503,
            "GET {path} answered {status}"
        );
    }
    let unavailable = created
        .iter()
        .flat_map(|(_, seen)| seen)
        .filter(|status| **status == 503)
        .count();
    eprintln!("{unavailable} creates answered 503 and were retried");

    // Every accepted key names one promotion, and every promotion finishes.
    let mut ids: Vec<&str> = created.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), CREATES, "one promotion per idempotency key");
    let (status, listed) = app
        .call(
            Method::GET,
            "/pipeline-promotions?pipeline=faulty",
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed.as_array().expect("list").len(),
        CREATES,
        "no promotion beyond the accepted ones"
    );
    for id in ids {
        let finished = app.finished_promotion(id).await;
        assert_eq!(finished.status(), PromotionStatus::Successful, "{id}");
    }
}
