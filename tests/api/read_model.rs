//! The read model: reads served from memory must never be older than a write the reader
//! could have seen. On one process a write is read back at once; another process sees it
//! within a second; a lost notification is recovered; and no gate passes on stale data.

use std::time::{Duration, Instant};

use pipelines::proto::{
    create_promotion_response::Result as Created, CreatePromotionRequest,
    CreateReleaseStatusRequest, GetPipelineRequest, ListPipelineCouplingsRequest,
    ListPipelineStatusesRequest, Stage, StatusState, UpdateReleaseStatusRequest,
};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

use crate::helpers::{fresh_database, settings_for, spawn_app, spawn_app_with, TestApp};

/// `shop` with `shop-dev` (development) and `shop-stg` (staging, requiring `ci/test`).
async fn shop(app: &TestApp) {
    app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.create_app("shop-stg").await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    app.couple("shop-stg", "shop", Stage::Staging, &["ci/test"])
        .await;
}

/// Posts a successful `ci/test` status on the app's release.
async fn pass_ci_test(app: &TestApp, app_name: &str, release_id: &str) {
    app.releases
        .clone()
        .create_release_status(CreateReleaseStatusRequest {
            app: app_name.into(),
            release_id: release_id.into(),
            context: "ci/test".into(),
            name: "Tests".into(),
            state: StatusState::Success as i32,
            ..Default::default()
        })
        .await
        .expect("post status");
}

/// Creates the promotion and watches it to its end.
async fn promote_to_the_end(app: &TestApp, request: CreatePromotionRequest) {
    let created = app
        .promotions
        .clone()
        .create_promotion(request)
        .await
        .expect("promote")
        .into_inner();
    let Some(Created::Promotion(created)) = created.result else {
        panic!("no promotion: {created:?}");
    };
    app.watch_to_end(&created.id).await;
}

/// A promotion of `shop-dev`'s current release to its next stage.
fn promote_shop_dev() -> CreatePromotionRequest {
    CreatePromotionRequest {
        pipeline: "shop".into(),
        source_app: "shop-dev".into(),
        ..Default::default()
    }
}

/// The current release version of each of the pipeline's apps, by app name.
async fn current_versions(app: &TestApp, pipeline: &str) -> Vec<(String, Option<i64>)> {
    let couplings = app
        .couplings
        .clone()
        .list_pipeline_couplings(ListPipelineCouplingsRequest {
            pipeline: pipeline.into(),
            ..Default::default()
        })
        .await
        .expect("list couplings")
        .into_inner()
        .couplings;
    couplings
        .into_iter()
        .map(|coupling| {
            let app = coupling.app.map(|app| app.name).unwrap_or_default();
            (app, coupling.release.map(|release| release.version))
        })
        .collect()
}

async fn status_contexts(app: &TestApp, pipeline: &str) -> Vec<String> {
    app.pipelines
        .clone()
        .list_pipeline_statuses(ListPipelineStatusesRequest {
            pipeline: pipeline.into(),
            ..Default::default()
        })
        .await
        .expect("list statuses")
        .into_inner()
        .statuses
        .into_iter()
        .map(|status| status.context)
        .collect()
}

async fn get_pipeline(app: &TestApp, pipeline: &str) -> Result<String, tonic::Status> {
    app.pipelines
        .clone()
        .get_pipeline(GetPipelineRequest {
            pipeline: pipeline.into(),
        })
        .await
        .map(|response| response.into_inner().id)
}

#[tokio::test]
async fn a_promotion_that_succeeds_is_read_back_as_the_current_release() {
    let app = spawn_app().await;
    shop(&app).await;
    assert_eq!(
        current_versions(&app, "shop").await,
        [("shop-dev".to_owned(), None), ("shop-stg".to_owned(), None)]
    );
    // A promotion that succeeds makes its release the target's current one, read back
    // as soon as the watcher saw the promotion finish.
    let promoted = app.create_release("shop-dev", "shop:1").await;
    pass_ci_test(&app, "shop-dev", &promoted.id).await;
    promote_to_the_end(&app, promote_shop_dev()).await;
    assert_eq!(
        current_versions(&app, "shop").await,
        [
            ("shop-dev".to_owned(), Some(1)),
            ("shop-stg".to_owned(), Some(1))
        ]
    );
}

/// A create resolves its apps from memory only when memory is fresh: a coupling removed a
/// moment ago on this process refuses the very next promotion to that app, over gRPC and
/// over REST.
#[tokio::test]
async fn a_create_never_resolves_an_app_from_a_coupling_just_removed() {
    let app = spawn_app().await;
    shop(&app).await;
    let release = app.create_release("shop-dev", "shop:1").await;
    pass_ci_test(&app, "shop-dev", &release.id).await;
    let to_staging = || CreatePromotionRequest {
        targets: vec!["shop-stg".into()],
        ..promote_shop_dev()
    };
    // Memory holds the pipeline and both apps, and answers this one.
    promote_to_the_end(&app, to_staging()).await;
    // A read after it finished leaves memory holding everything, fresh.
    assert_eq!(current_versions(&app, "shop").await.len(), 2);
    let (status, couplings) = app
        .call(
            reqwest::Method::GET,
            "/apps/shop-stg/pipeline-couplings",
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{couplings}");
    let coupling = couplings["id"].as_str().expect("coupling id").to_owned();
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/pipeline-couplings/{coupling}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let refused = app
        .promotions
        .clone()
        .create_promotion(to_staging())
        .await
        .expect_err("shop-stg is no longer coupled");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("targets[0]") && refused.message().contains("not coupled"),
        "{}",
        refused.message()
    );
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/pipeline-promotions",
            Some(serde_json::json!({
                "pipeline": {"id": "shop"},
                "source": {"app": {"id": "shop-dev"}},
                "targets": [{"app": {"id": "shop-stg"}}],
            })),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("not coupled"), "{body}");
}

#[tokio::test]
async fn every_write_is_read_back_at_once_on_the_same_process() {
    let app = spawn_app().await;
    shop(&app).await;
    // Restarted, the server holds all of it in memory from start-up.
    let database = app.stop().await;
    let app = spawn_app_with(settings_for(&database.url), database).await;
    // Each read follows its write with no pause: none may be older than the write.
    for version in 1..=15 {
        app.create_release("shop-dev", &format!("shop:{version}"))
            .await;
        assert_eq!(
            current_versions(&app, "shop").await,
            [
                ("shop-dev".to_owned(), Some(version)),
                ("shop-stg".to_owned(), None)
            ]
        );
    }
    let release = app.create_release("shop-stg", "shop:1").await;
    pass_ci_test(&app, "shop-stg", &release.id).await;
    assert_eq!(status_contexts(&app, "shop").await, ["ci/test"]);
    let (status, body) = app
        .call(reqwest::Method::GET, "/pipelines/shop/statuses", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body[0]["context"], "ci/test",
        "REST reads the same memory: {body}"
    );

    // A coupling's removal, the pipeline's deletion and a new pipeline of the same name.
    let (status, _) = app
        .call(reqwest::Method::DELETE, "/apps/shop-stg", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        current_versions(&app, "shop").await,
        [("shop-dev".to_owned(), Some(15))]
    );
    assert!(status_contexts(&app, "shop").await.is_empty());
    let old_id = get_pipeline(&app, "shop").await.expect("pipeline");
    let (status, _) = app
        .call(reqwest::Method::DELETE, "/pipelines/shop", None, None)
        .await;
    assert_eq!(status, 200);
    let gone = get_pipeline(&app, "shop").await.expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    let (status, body) = app
        .call(reqwest::Method::GET, "/pipelines/shop", None, None)
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            "/apps/shop-dev/pipeline-couplings",
            None,
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    app.create_pipeline("shop").await;
    let new_id = get_pipeline(&app, "shop").await.expect("recreated");
    assert_ne!(new_id, old_id);
    let (status, body) = app
        .call(reqwest::Method::GET, "/pipelines/shop", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["id"],
        new_id.as_str(),
        "REST sees the new pipeline: {body}"
    );
    assert!(current_versions(&app, "shop").await.is_empty());
}

#[tokio::test]
async fn a_gate_never_passes_on_a_status_that_just_failed() {
    let app = spawn_app().await;
    shop(&app).await;
    let release = app.create_release("shop-dev", "shop:1").await;
    let status = app
        .releases
        .clone()
        .create_release_status(CreateReleaseStatusRequest {
            app: "shop-dev".into(),
            release_id: release.id.clone(),
            context: "ci/test".into(),
            name: "Tests".into(),
            state: StatusState::Success as i32,
            ..Default::default()
        })
        .await
        .expect("post status")
        .into_inner();
    for round in 0..5 {
        // Reads keep the pipeline's couplings and statuses warm in memory.
        current_versions(&app, "shop").await;
        status_contexts(&app, "shop").await;
        app.releases
            .clone()
            .update_release_status(UpdateReleaseStatusRequest {
                app: "shop-dev".into(),
                release_id: release.id.clone(),
                status_id: status.id.clone(),
                state: Some(StatusState::Failure as i32),
                ..Default::default()
            })
            .await
            .expect("fail the status");
        let refused = app
            .promotions
            .clone()
            .create_promotion(promote_shop_dev())
            .await
            .expect_err("a failed check must hold the promotion");
        assert_eq!(refused.code(), Code::FailedPrecondition, "round {round}");
        app.releases
            .clone()
            .update_release_status(UpdateReleaseStatusRequest {
                app: "shop-dev".into(),
                release_id: release.id.clone(),
                status_id: status.id.clone(),
                state: Some(StatusState::Success as i32),
                ..Default::default()
            })
            .await
            .expect("pass the status");
    }
}

/// Polls `check` until it holds, and returns how long that took; panics after `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what} did not hold within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two servers on one PostgreSQL database, or `None` on SQLite.
async fn two_replicas() -> Option<(TestApp, TestApp)> {
    let database = fresh_database().await;
    if !database.is_postgres() {
        eprintln!(
            "SKIPPED on SQLite: replicas share PostgreSQL; the embedded file has one process"
        );
        return None;
    }
    let second = database.another_handle();
    let first = spawn_app_with(settings_for(&database.url), database).await;
    let second = spawn_app_with(settings_for(&second.url), second).await;
    Some((first, second))
}

#[tokio::test]
async fn another_replica_sees_writes_within_a_second() {
    let Some((writer, reader)) = two_replicas().await else {
        return;
    };
    shop(&writer).await;
    // Created on the writer a moment ago: the reader's memory misses and reads the database.
    get_pipeline(&reader, "shop").await.expect("never a 404");
    assert_eq!(current_versions(&reader, "shop").await.len(), 2);

    let release = writer.create_release("shop-dev", "shop:1").await;
    let took = within(
        Duration::from_secs(1),
        "a new release on the reader",
        || async { current_versions(&reader, "shop").await[0].1 == Some(1) },
    )
    .await;
    eprintln!("a release reached the other replica in {took:?}");

    // A promotion's events name the apps they are about: the target's new release.
    pass_ci_test(&writer, "shop-dev", &release.id).await;
    promote_to_the_end(&writer, promote_shop_dev()).await;
    let took = within(
        Duration::from_secs(1),
        "the promoted release on the reader",
        || async { current_versions(&reader, "shop").await[1] == ("shop-stg".to_owned(), Some(1)) },
    )
    .await;
    eprintln!("a promotion reached the other replica in {took:?}");

    let (status, _) = writer
        .call(reqwest::Method::DELETE, "/pipelines/shop", None, None)
        .await;
    assert_eq!(status, 200);
    let took = within(
        Duration::from_secs(1),
        "the deletion on the reader",
        || async { get_pipeline(&reader, "shop").await.is_err() },
    )
    .await;
    eprintln!("a deletion reached the other replica in {took:?}");
}

/// Marks the app's newest release failed behind the service's back: no process is told,
/// as when a notification is lost between a commit and its announcement.
async fn fail_newest_release_unannounced(database_url: &str, app: &str) {
    let db = Database::connect(database_url).await.expect("connect");
    let backend = db.get_database_backend();
    let sql = "UPDATE releases SET status = 'failed' WHERE app_id = \
               (SELECT id FROM apps WHERE name = $1 AND deleted_at IS NULL) \
               AND version = (SELECT MAX(version) FROM releases r WHERE r.app_id = releases.app_id)";
    let sql = match backend {
        sea_orm::DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace("$1", "?"),
    };
    let changed = db
        .execute(Statement::from_sql_and_values(backend, sql, [app.into()]))
        .await
        .expect("update release");
    assert_eq!(changed.rows_affected(), 1);
    db.close().await.ok();
}

/// `shop` with releases 1 and 2 on `shop-dev`, read once so that memory holds version 2.
async fn shop_at_version_two(writer: &TestApp, reader: &TestApp) {
    shop(writer).await;
    writer.create_release("shop-dev", "shop:1").await;
    writer.create_release("shop-dev", "shop:2").await;
    within(
        Duration::from_secs(1),
        "version 2 on the reader",
        || async { current_versions(reader, "shop").await[0].1 == Some(2) },
    )
    .await;
}

#[tokio::test]
async fn a_change_nobody_announced_is_caught_by_the_resync() {
    let database = fresh_database().await;
    let url = database.url.clone();
    let mut settings = settings_for(&url);
    settings.resync_interval = Duration::from_millis(300);
    let app = spawn_app_with(settings, database).await;
    shop_at_version_two(&app, &app).await;
    let reloads = app.hub.read_model.full_reloads();
    fail_newest_release_unannounced(&url, "shop-dev").await;
    // Memory serves what it was told until the resync (unless one just completed).
    let served = current_versions(&app, "shop").await[0].1;
    if app.hub.read_model.full_reloads() == reloads {
        assert_eq!(
            served,
            Some(2),
            "nothing but the resync may notice the change"
        );
    }
    within(Duration::from_secs(3), "the resync", || async {
        current_versions(&app, "shop").await[0].1 == Some(1)
    })
    .await;
}

#[tokio::test]
async fn losing_the_listening_connection_reloads_everything() {
    let Some((writer, reader)) = two_replicas().await else {
        return;
    };
    shop_at_version_two(&writer, &reader).await;
    fail_newest_release_unannounced(&reader.database.url, "shop-dev").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        current_versions(&reader, "shop").await[0].1,
        Some(2),
        "nothing announced the change, and the resync is 30 s away"
    );
    // As after a PostgreSQL restart: the listening connections drop, and whatever was
    // announced meanwhile is lost. Every process reloads.
    let admin = Database::connect(&reader.database.url)
        .await
        .expect("connect");
    admin
        .execute(Statement::from_string(
            admin.get_database_backend(),
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%' \
             AND backend_type = 'client backend' AND usename = current_user",
        ))
        .await
        .expect("terminate listeners");
    admin.close().await.ok();
    // No bound of the contract applies here; the limit only has to outlast a loaded CI box.
    within(Duration::from_secs(10), "the reload", || async {
        current_versions(&reader, "shop").await[0].1 == Some(1)
    })
    .await;
}
