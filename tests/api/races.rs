//! Races and malformed input: bursts of conflicting requests against a real server, on
//! whichever backend the suite runs. Each test asserts the invariants of API.md → *Faults
//! and races*: no 5xx, no orphans, one winner per conflict, no release or deploy on a
//! deleted app, cancels honoured, watches that end, bounded error messages.

use std::time::Duration;

use futures::future::join_all;
use pipelines::{
    proto::{
        create_promotion_response::Result as Created, CreatePromotionRequest, GetPipelineRequest,
        PromotionStatus, Stage, TargetStatus, WatchPromotionRequest,
    },
    store::entities::{app, config_var, coupling, pipeline, promotion_target, release},
};
use reqwest::Method;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::helpers::{spawn_app, spawn_app_deploying_with, TestApp, TestDeployer};

async fn database_of(app: &TestApp) -> DatabaseConnection {
    pipelines::store::connect(&app.database.url)
        .await
        .expect("connect to the test database")
}

fn assert_not_server_error(what: &str, status: u16, body: &serde_json::Value) {
    assert!(status < 500, "{what} answered {status}: {body}");
}

async fn create_promotion(app: &TestApp, request: CreatePromotionRequest) -> String {
    match app
        .promotions
        .clone()
        .create_promotion(request)
        .await
        .expect("create promotion")
        .into_inner()
        .result
    {
        Some(Created::Promotion(promotion)) => promotion.id,
        other => panic!("expected a promotion, got {other:?}"),
    }
}

/// Couplings that point at a deleted app or pipeline, on the raw tables.
async fn orphaned_couplings(db: &DatabaseConnection) -> Vec<String> {
    let deleted_apps: Vec<uuid::Uuid> = app::Entity::find()
        .filter(app::Column::DeletedAt.is_not_null())
        .all(db)
        .await
        .expect("apps")
        .into_iter()
        .map(|row| row.id)
        .collect();
    let deleted_pipelines: Vec<uuid::Uuid> = pipeline::Entity::find()
        .filter(pipeline::Column::DeletedAt.is_not_null())
        .all(db)
        .await
        .expect("pipelines")
        .into_iter()
        .map(|row| row.id)
        .collect();
    coupling::Entity::find()
        .all(db)
        .await
        .expect("couplings")
        .into_iter()
        .filter(|row| {
            deleted_apps.contains(&row.app_id) || deleted_pipelines.contains(&row.pipeline_id)
        })
        .map(|row| row.id.to_string())
        .collect()
}

#[tokio::test]
async fn a_coupling_racing_a_delete_never_points_at_a_deleted_app_or_pipeline() {
    let app = spawn_app().await;
    let db = database_of(&app).await;
    let rounds = 40;
    let mut created = 0;
    for round in 0..rounds {
        let pipeline = format!("race-{round}");
        let target = format!("race-app-{round}");
        app.create_pipeline(&pipeline).await;
        app.create_app(&target).await;
        let delete_path = if round % 2 == 0 {
            format!("/pipelines/{pipeline}")
        } else {
            format!("/apps/{target}")
        };
        let couple = app.call(
            Method::POST,
            "/pipeline-couplings",
            Some(json!({"app": target, "pipeline": pipeline, "stage": "development"})),
            None,
        );
        let delete = app.call(Method::DELETE, &delete_path, None, None);
        let ((couple_status, couple_body), (delete_status, delete_body)) =
            tokio::join!(couple, delete);
        assert_not_server_error("the coupling", couple_status, &couple_body);
        assert_not_server_error("the delete", delete_status, &delete_body);
        assert_eq!(delete_status, 200, "{delete_body}");
        assert!(
            couple_status == 201 || couple_status == 404,
            "the coupling answered {couple_status}: {couple_body}"
        );
        if couple_status == 201 {
            created += 1;
        }
    }
    let orphans = orphaned_couplings(&db).await;
    assert!(
        orphans.is_empty(),
        "{} couplings point at deleted apps or pipelines ({created} of {rounds} creates won)",
        orphans.len()
    );
}

#[tokio::test]
async fn config_vars_written_while_their_app_is_deleted_are_erased_with_it() {
    let app = spawn_app().await;
    let db = database_of(&app).await;
    for round in 0..40 {
        let name = format!("secret-app-{round}");
        let created = app.create_app(&name).await;
        let path = format!("/apps/{name}/config-vars");
        let writes = (0..3).map(|n| {
            app.call(
                Method::PATCH,
                &path,
                Some(json!({ format!("TOKEN_{n}"): "s3cret" })),
                None,
            )
        });
        let app_path = format!("/apps/{name}");
        let delete = app.call(Method::DELETE, &app_path, None, None);
        let (written, (delete_status, delete_body)) = tokio::join!(join_all(writes), delete);
        assert_eq!(delete_status, 200, "{delete_body}");
        for (status, body) in written {
            assert_not_server_error("a config var write", status, &body);
            assert!(status == 200 || status == 404, "{status}: {body}");
        }
        let left = config_var::Entity::find()
            .filter(config_var::Column::AppId.eq(uuid::Uuid::parse_str(&created.id).unwrap()))
            .all(&db)
            .await
            .expect("config vars");
        assert!(
            left.is_empty(),
            "round {round}: {} config vars of the deleted app survived",
            left.len()
        );
    }
}

#[tokio::test]
async fn two_deletes_of_one_thing_answer_200_once_and_404_once() {
    let app = spawn_app().await;
    for round in 0..10 {
        let pipeline = format!("twice-{round}");
        let target = format!("twice-app-{round}");
        app.create_pipeline(&pipeline).await;
        app.create_app(&target).await;
        for path in [format!("/pipelines/{pipeline}"), format!("/apps/{target}")] {
            let (first, second) = tokio::join!(
                app.call(Method::DELETE, &path, None, None),
                app.call(Method::DELETE, &path, None, None)
            );
            let mut statuses = [first.0, second.0];
            statuses.sort();
            assert_eq!(statuses, [200, 404], "{path}: {} / {}", first.1, second.1);
        }
    }
}

/// dev (development) → `count` staging apps, with a succeeded release on dev.
async fn wide_pipeline(app: &TestApp, name: &str, count: usize) -> Vec<String> {
    app.create_pipeline(name).await;
    let source = format!("{name}-dev");
    app.create_app(&source).await;
    app.couple(&source, name, Stage::Development, &[]).await;
    let mut targets = Vec::new();
    for n in 0..count {
        let target = format!("{name}-stg-{n}");
        app.create_app(&target).await;
        app.couple(&target, name, Stage::Staging, &[]).await;
        targets.push(target);
    }
    app.create_release(&source, "registry/app:1").await;
    targets
}

#[tokio::test]
async fn cancelling_a_running_promotion_is_always_honoured() {
    let app = spawn_app().await;
    wide_pipeline(&app, "wide", 20).await;
    for round in 0..12u64 {
        let id = create_promotion(
            &app,
            CreatePromotionRequest {
                pipeline: "wide".into(),
                source_app: "wide-dev".into(),
                ..Default::default()
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis((round * 7) % 31)).await;
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/pipeline-promotions/{id}/cancel"),
                None,
                None,
            )
            .await;
        assert_not_server_error("the cancel", status, &body);
        let finished = app.finished_promotion(&id).await;
        match status {
            200 => assert_eq!(
                finished.status(),
                PromotionStatus::Canceled,
                "round {round}: an accepted cancel was lost"
            ),
            409 => assert_ne!(finished.status(), PromotionStatus::Canceled),
            other => panic!("round {round}: the cancel answered {other}: {body}"),
        }
    }
}

#[tokio::test]
async fn deleting_a_target_app_cancels_its_targets_and_it_never_gets_a_deploy() {
    let (deployer, gate) = TestDeployer::gated();
    let app = spawn_app_deploying_with(deployer.clone()).await;
    let db = database_of(&app).await;
    wide_pipeline(&app, "doomed", 1).await;
    let request = || CreatePromotionRequest {
        pipeline: "doomed".into(),
        source_app: "doomed-dev".into(),
        ..Default::default()
    };
    // The first promotion's deploy is in flight (held at the gate); the second waits
    // behind it for the same app.
    let first = create_promotion(&app, request()).await;
    let second = create_promotion(&app, request()).await;
    deployer.until_arrived("doomed-stg-0", 1).await;
    let first_target = promotion_target::Entity::find()
        .all(&db)
        .await
        .expect("targets")
        .into_iter()
        .find(|t| t.promotion_id.to_string() == first)
        .expect("the first promotion's target");
    assert_eq!(first_target.status, "running");
    assert!(first_target.release_id.is_some());

    let (status, body) = app
        .call(Method::DELETE, "/apps/doomed-stg-0", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    gate.add_permits(10);

    let second_events = app.watch_to_end(&second).await;
    let first_done = app.finished_promotion(&first).await;
    let second_done = app.finished_promotion(&second).await;
    // A target canceled because its app was deleted counts as failed.
    assert_eq!(first_done.status(), PromotionStatus::Failed);
    assert_eq!(second_done.status(), PromotionStatus::Failed);
    let canceled = second_events
        .iter()
        .find(|event| event.name == "target.canceled")
        .expect("the queued target is canceled");
    assert_eq!(canceled.target_status(), TargetStatus::Canceled);
    assert!(
        canceled.message.contains("deleted"),
        "the event names the deletion: {}",
        canceled.message
    );
    // Only the deploy already in flight at the deletion happened; the queued one never did.
    let deployed: Vec<String> = deployer
        .deployments()
        .into_iter()
        .filter(|name| name == "doomed-stg-0")
        .collect();
    assert_eq!(
        deployed.len(),
        1,
        "deploys to the deleted app: {deployed:?}"
    );
    let doomed = app::Entity::find()
        .filter(app::Column::Name.eq("doomed-stg-0"))
        .one(&db)
        .await
        .expect("app")
        .expect("the row stays, marked deleted");
    let releases = release::Entity::find()
        .filter(release::Column::AppId.eq(doomed.id))
        .all(&db)
        .await
        .expect("releases");
    assert_eq!(
        releases.len(),
        1,
        "only the first promotion's release exists"
    );
    assert_ne!(
        releases[0].status, "succeeded",
        "a release on a deleted app never becomes current"
    );
}

#[tokio::test]
async fn promotions_racing_app_deletes_never_release_onto_a_deleted_app() {
    let app = spawn_app().await;
    let db = database_of(&app).await;
    let targets = wide_pipeline(&app, "burst", 12).await;
    let mut promotions = Vec::new();
    for _ in 0..4 {
        promotions.push(
            create_promotion(
                &app,
                CreatePromotionRequest {
                    pipeline: "burst".into(),
                    source_app: "burst-dev".into(),
                    ..Default::default()
                },
            )
            .await,
        );
    }
    let app = &app;
    let deletes = targets.iter().step_by(2).map(|target| {
        let path = format!("/apps/{target}");
        async move { app.call(Method::DELETE, &path, None, None).await }
    });
    for (status, body) in join_all(deletes).await {
        assert_eq!(status, 200, "{body}");
    }
    // Every delete has committed: what the deleted apps hold now is final.
    let deleted: Vec<uuid::Uuid> = app::Entity::find()
        .filter(app::Column::DeletedAt.is_not_null())
        .all(&db)
        .await
        .expect("apps")
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(deleted.len(), targets.len() / 2);
    let releases_on_deleted = || async {
        let mut rows: Vec<(uuid::Uuid, String)> = release::Entity::find()
            .filter(release::Column::AppId.is_in(deleted.clone()))
            .all(&db)
            .await
            .expect("releases")
            .into_iter()
            .map(|row| (row.id, row.status))
            .collect();
        rows.sort();
        rows
    };
    let at_deletion = releases_on_deleted().await;
    for id in &promotions {
        app.finished_promotion(id).await;
    }
    assert_eq!(
        releases_on_deleted().await,
        at_deletion,
        "a release was created or made current on an app after its deletion committed"
    );
    for target in promotion_target::Entity::find()
        .filter(promotion_target::Column::AppId.is_in(deleted.clone()))
        .all(&db)
        .await
        .expect("targets")
    {
        assert!(
            target.status == "canceled" || target.status == "succeeded",
            "a target on a deleted app ended {}",
            target.status
        );
        assert_eq!(target.app_deleted, target.status == "canceled");
    }
}

#[tokio::test]
async fn a_watch_resumed_at_the_end_of_a_finished_promotion_ends_at_once() {
    let app = spawn_app().await;
    wide_pipeline(&app, "ended", 1).await;
    let id = create_promotion(
        &app,
        CreatePromotionRequest {
            pipeline: "ended".into(),
            source_app: "ended-dev".into(),
            ..Default::default()
        },
    )
    .await;
    let events = app.watch_to_end(&id).await;
    let last = events.last().expect("events").sequence;
    for after in [last, last + 5] {
        let mut stream = app
            .promotions
            .clone()
            .watch_promotion(WatchPromotionRequest {
                id: id.clone(),
                after_sequence: after,
            })
            .await
            .expect("watch")
            .into_inner();
        let next = tokio::time::timeout(Duration::from_secs(3), stream.next())
            .await
            .expect("the resumed watch ends at once instead of waiting forever");
        assert!(next.is_none(), "nothing is left to send: {next:?}");
    }
    let response = app
        .rest(Method::GET, &format!("/pipeline-promotions/{id}/events"))
        .header("Last-Event-ID", last.to_string())
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .expect("the SSE resume answers at once");
    assert_eq!(response.status().as_u16(), 204);
    // A resume before the end still gets the rest, then ends.
    let response = app
        .rest(Method::GET, &format!("/pipeline-promotions/{id}/events"))
        .header("Last-Event-ID", (last - 1).to_string())
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .expect("SSE");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("the stream ends");
    assert!(text.contains("promotion.finished"), "{text}");
}

#[tokio::test]
async fn error_messages_quote_at_most_200_characters_of_an_echoed_value() {
    let app = spawn_app().await;
    let long = "x".repeat(20_000);
    let status = app
        .pipelines
        .clone()
        .get_pipeline(GetPipelineRequest {
            pipeline: long.clone(),
        })
        .await
        .expect_err("no such pipeline");
    assert_eq!(status.code(), Code::NotFound, "{}", status.message());
    assert!(
        status.message().len() <= 1024,
        "a {}-byte message",
        status.message().len()
    );
    assert!(status.message().contains(&"x".repeat(200)));
    assert!(!status.message().contains(&"x".repeat(201)));
    for path in [
        format!("/pipelines/{long}"),
        format!("/apps/{long}"),
        format!("/pipeline-promotions/{long}"),
    ] {
        let (code, body) = app.call(Method::GET, &path, None, None).await;
        assert!(code == 404 || code == 422, "{path}: {code}");
        let message = body["message"].as_str().expect("message");
        assert!(message.len() <= 1024, "a {}-byte message", message.len());
    }
    let (code, body) = app
        .call(
            Method::POST,
            "/pipeline-couplings",
            Some(json!({"app": long, "pipeline": long, "stage": "development"})),
            None,
        )
        .await;
    assert_eq!(code, 404, "{body}");
    assert!(body["message"].as_str().expect("message").len() <= 1024);
}

/// Sends raw bytes as the request message of a unary gRPC method.
async fn call_with_raw_bytes(app: &TestApp, method: &'static str, bytes: Vec<u8>) -> tonic::Status {
    let mut client = tonic::client::Grpc::new(app.channel.clone());
    client.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static(method);
    client
        .unary::<Vec<u8>, Vec<u8>, _>(tonic::Request::new(bytes), path, RawCodec)
        .await
        .expect_err("malformed input is refused")
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_not_internal() {
    let app = spawn_app().await;
    let method = "/pipelines.v1.PipelineService/GetPipeline";
    let not_utf8 = vec![0x0a, 0x02, 0xff, 0xfe];
    let truncated = vec![0x0a, 0x10, b'a'];
    // An unknown field of nested groups, deeper than any decoder recurses.
    let too_deep = vec![0x7b; 200];
    for (what, bytes) in [
        ("non-UTF-8 string", not_utf8),
        ("truncated length", truncated),
        ("deep recursion", too_deep),
    ] {
        let status = call_with_raw_bytes(&app, method, bytes).await;
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{what}: {}",
            status.message()
        );
    }
    // Well-formed bytes still work.
    let status = call_with_raw_bytes(&app, method, vec![0x0a, 0x03, b'n', b'o', b'p']).await;
    assert_eq!(status.code(), Code::NotFound, "{}", status.message());
}

/// A codec that passes message bytes through untouched.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Self::Item,
        buffer: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        use bytes::BufMut;
        buffer.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buffer: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, Self::Error> {
        use bytes::Buf;
        let mut bytes = vec![0; buffer.remaining()];
        buffer.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

/// The app row's lock modes on PostgreSQL: while an engine step holds an app
/// (`store::lock_live_apps`), a promotion joining its queue goes ahead, and a delete waits
/// until the step ends. (SQLite's one connection serializes every transaction.)
#[tokio::test]
async fn a_step_under_way_lets_joins_in_and_holds_deletes_back() {
    use pipelines::store;
    use sea_orm::TransactionTrait;

    let app = spawn_app().await;
    if !app.database.is_postgres() {
        eprintln!("SKIPPED on SQLite: row lock modes need PostgreSQL");
        return;
    }
    let id: uuid::Uuid = app.create_app("shop-stg").await.id.parse().unwrap();
    let db = database_of(&app).await;

    let step = db.begin().await.unwrap();
    assert_eq!(store::lock_live_apps(&step, &[id]).await.unwrap(), [id]);

    let join = db.begin().await.unwrap();
    let joined = tokio::time::timeout(
        Duration::from_secs(5),
        store::lock_apps_to_join_queues(&join, &[id]),
    )
    .await
    .expect("a join waited for the step")
    .unwrap();
    assert_eq!(joined, [id]);
    join.rollback().await.unwrap();

    let delete = db.begin().await.unwrap();
    let deleting = tokio::spawn(async move {
        let deleted = store::mark_deleted::<app::Entity>(&delete, id)
            .await
            .unwrap();
        delete.commit().await.unwrap();
        deleted
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !deleting.is_finished(),
        "the delete did not wait for the step"
    );
    step.commit().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), deleting)
        .await
        .expect("the delete went on once the step ended")
        .unwrap());
}

/// Two batches of one promotion, one waiting for the promotion's lock while the other
/// deploys: the waiting batch reads the targets as they are once it holds the lock, so
/// whichever batch ends last sees every target final and ends the promotion.
#[tokio::test]
async fn a_batch_that_waited_for_its_promotion_sees_the_batch_before_it_and_ends_the_promotion() {
    use sea_orm::{ConnectionTrait, Statement};

    let (deployer, gate) = TestDeployer::gated_within_the_database();
    let app = spawn_app_deploying_with(deployer.clone()).await;
    if !app.database.is_postgres() {
        eprintln!("SKIPPED on SQLite: its one connection runs one batch at a time");
        return;
    }
    let targets = wide_pipeline(&app, "pair", 2).await;
    let db = database_of(&app).await;
    let promote = |targets: Vec<String>| CreatePromotionRequest {
        pipeline: "pair".into(),
        source_app: "pair-dev".into(),
        targets,
        ..Default::default()
    };
    // The first app is held by an earlier promotion, so the later promotion's two targets
    // run as two batches: the second app's at once, the first app's after the earlier
    // promotion.
    let earlier = create_promotion(&app, promote(vec![targets[0].clone()])).await;
    deployer.until_arrived(&targets[0], 1).await;
    let later = create_promotion(&app, promote(Vec::new())).await;
    deployer.until_arrived(&targets[1], 1).await;

    // The gate is fair: the one permit goes to the earlier promotion's deploy. Then the
    // later promotion's batch for the first app waits for the promotion's lock, which the
    // batch for the second app holds while it deploys.
    gate.add_permits(1);
    app.finished_promotion(&earlier).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                "SELECT count(*) AS waiting FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("pg_stat_activity")
            .expect("a row")
            .try_get::<i64>("", "waiting")
            .expect("count");
        if waiting > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no batch waited for the promotion's lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.add_permits(100);

    let finished = app.finished_promotion(&later).await;
    assert_eq!(finished.status, PromotionStatus::Successful as i32);
    let statuses: Vec<i32> = app
        .targets_of(&later)
        .await
        .iter()
        .map(|target| target.status)
        .collect();
    assert_eq!(statuses, [TargetStatus::Succeeded as i32; 2]);
}

/// Releases posted straight onto target apps race the releases promotions make there:
/// every promotion succeeds, and each app's versions stay unique and gapless.
#[tokio::test]
async fn releases_racing_promotions_onto_one_app_keep_versions_unique() {
    let app = spawn_app().await;
    let db = database_of(&app).await;
    let targets = wide_pipeline(&app, "crowd", 2).await;
    let app = &app;
    let promotions = (0..12).map(|_| async move {
        create_promotion(
            app,
            CreatePromotionRequest {
                pipeline: "crowd".into(),
                source_app: "crowd-dev".into(),
                ..Default::default()
            },
        )
        .await
    });
    let releases = (0..24).map(|n| {
        let target = targets[n % targets.len()].clone();
        async move {
            app.create_release(&target, &format!("registry/direct:{n}"))
                .await
        }
    });
    let (promotions, _) = tokio::join!(join_all(promotions), join_all(releases));
    for id in &promotions {
        let finished = app.finished_promotion(id).await;
        assert_eq!(finished.status(), PromotionStatus::Successful, "{id}");
    }
    for target in &targets {
        let owner = app::Entity::find()
            .filter(app::Column::Name.eq(target.as_str()))
            .one(&db)
            .await
            .expect("app")
            .expect("the target app");
        let mut versions: Vec<i64> = release::Entity::find()
            .filter(release::Column::AppId.eq(owner.id))
            .all(&db)
            .await
            .expect("releases")
            .into_iter()
            .map(|row| row.version)
            .collect();
        versions.sort();
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected, "{target}");
        assert_eq!(versions.len(), 12 + 12, "{target}: 12 promoted, 12 posted");
    }
}

/// The store's side of that race, made to happen: a batch whose new release has a version
/// another release took is written without that release and without moving its target, and
/// says so, so that the lifecycle refuses the batch and it runs again.
#[tokio::test]
async fn a_batch_whose_release_version_was_taken_moves_no_target() {
    use pipelines::{
        domain::promotion::TargetStatus,
        store::targets::{write_batch, BatchWrite, TargetMove},
    };
    use sea_orm::{ActiveModelTrait, Set};

    let app = spawn_app().await;
    let db = database_of(&app).await;
    app.create_pipeline("held").await;
    app.create_app("held-dev").await;
    app.couple("held-dev", "held", Stage::Development, &[])
        .await;
    app.create_app("held-stg").await;
    // A promotion that needs an approval waits with its target pending and unclaimed.
    let (status, body) = app
        .call(
            Method::POST,
            "/pipeline-couplings",
            Some(
                json!({"app": "held-stg", "pipeline": "held", "stage": "staging",
                        "promotion_policy": {"required_approvals": 1}}),
            ),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.create_release("held-dev", "registry/held:1").await;
    let taken = app.create_release("held-stg", "registry/direct:1").await;
    assert_eq!(taken.version, 1);
    let id = create_promotion(
        &app,
        CreatePromotionRequest {
            pipeline: "held".into(),
            source_app: "held-dev".into(),
            ..Default::default()
        },
    )
    .await;
    let target = promotion_target::Entity::find()
        .all(&db)
        .await
        .expect("targets")
        .into_iter()
        .find(|t| t.promotion_id.to_string() == id)
        .expect("the target");
    let mut leased: promotion_target::ActiveModel = target.clone().into();
    leased.lease_owner = Set(Some("test-worker".into()));
    leased.update(&db).await.expect("lease the target");

    let release_numbered = |version: i64| release::Model {
        id: uuid::Uuid::new_v4(),
        app_id: target.app_id,
        version,
        image: "registry/held:1".into(),
        description: "promoted".into(),
        status: "pending".into(),
        promoted_from_app_id: None,
        promoted_from_release_id: None,
        promoted_from_promotion_id: None,
        promotion_target_id: Some(target.id),
        created_by_id: None,
        created_by_email: Some("ops".into()),
        config_change_id: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    let batch = |release: &release::Model| BatchWrite {
        new_releases: vec![release.clone()],
        release_states: Vec::new(),
        moves: vec![TargetMove {
            target_id: target.id,
            from: TargetStatus::Pending,
            to: TargetStatus::Running,
            error_message: None,
            link_release: Some(release.id),
        }],
    };

    let clashing = release_numbered(1);
    let written = write_batch(&db, "test-worker", batch(&clashing))
        .await
        .expect("write the batch");
    assert!(written.versions_taken.contains(&clashing.id));
    assert!(written.moved.is_empty(), "{written:?}");
    let unmoved = promotion_target::Entity::find_by_id(target.id)
        .one(&db)
        .await
        .expect("target")
        .expect("target row");
    assert_eq!(unmoved.status, "pending");
    assert_eq!(unmoved.release_id, None);
    assert!(release::Entity::find_by_id(clashing.id)
        .one(&db)
        .await
        .expect("release")
        .is_none());

    let free = release_numbered(2);
    let written = write_batch(&db, "test-worker", batch(&free))
        .await
        .expect("write the batch");
    assert!(written.versions_taken.is_empty(), "{written:?}");
    assert_eq!(written.moved, [target.id].into_iter().collect());
    let moved = promotion_target::Entity::find_by_id(target.id)
        .one(&db)
        .await
        .expect("target")
        .expect("target row");
    assert_eq!(moved.status, "running");
    assert_eq!(moved.release_id, Some(free.id));
}
