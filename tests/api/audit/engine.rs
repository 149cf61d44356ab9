//! What the engine records as `system`, and retention.

use std::time::Duration;

use chrono::Utc;
use pipelines::store::{self, entities::audit_event};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use super::{actions, entries, only};
use crate::{
    helpers::{settings_for, spawn_app, spawn_app_with},
    policies::{call_ok, eventually, release, shop, tokens},
};

#[tokio::test]
async fn an_auto_promotion_is_recorded_as_the_system_naming_its_trigger() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    shop(
        &app,
        &tokens.ops,
        json!({"promotion_policy": {"auto_promote": true}}),
        json!({}),
    )
    .await;
    release(&app, "shop-dev", "registry.example.com/shop:1", &tokens.ci).await;
    let created = eventually("the auto-promotion's entry", || async {
        let found = entries(&app, "?action=promotion.create", &tokens.reader).await;
        found.into_iter().next()
    })
    .await;
    assert_eq!(created["actor"], "system");
    assert_eq!(created["role"], "system");
    assert!(created["request_id"].is_null(), "{created}");
    assert_eq!(created["changes"]["triggered_by"], "ci-bot");
    assert_eq!(created["changes"]["targets"], json!(["shop-stg"]));
    assert_eq!(created["pipeline"]["name"], "shop");
    // The release that triggered it is the CI token's own.
    let released = entries(&app, "?action=release.create&app=shop-dev", &tokens.reader).await;
    assert_eq!(released[0]["actor"], "ci-bot");
}

#[tokio::test]
async fn an_automatic_rollback_is_recorded_as_the_system() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    let verification = json!({"contexts": ["smoke/checkout"], "on_failure": "rollback"});
    shop(
        &app,
        &tokens.ops,
        json!({"verification": verification}),
        json!({}),
    )
    .await;
    release(&app, "shop-stg", "registry.example.com/shop:1", &tokens.ci).await;
    release(&app, "shop-dev", "registry.example.com/shop:2", &tokens.ci).await;
    let body = json!({"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-dev"}}});
    let made = call_ok(&app, Method::POST, "/pipeline-promotions", body, &tokens.ci).await;
    let targets_path = format!(
        "/pipeline-promotions/{}/promotion-targets",
        made["id"].as_str().unwrap()
    );
    let release_id = eventually("the target to verify", || async {
        let (_, targets) = app
            .call(Method::GET, &targets_path, None, Some(&tokens.ci))
            .await;
        let target = &targets[0];
        (target["status"] == "verifying")
            .then(|| target["release"]["id"].as_str().unwrap().to_owned())
    })
    .await;
    let status_path = format!("/apps/shop-stg/releases/{release_id}/statuses");
    call_ok(
        &app,
        Method::POST,
        &status_path,
        json!({"context": "smoke/checkout", "name": "smoke", "state": "failure"}),
        &tokens.ci,
    )
    .await;
    let rollback = eventually("the rollback's entry", || async {
        let found = entries(&app, "?action=release.rollback", &tokens.reader).await;
        found.into_iter().next()
    })
    .await;
    assert_eq!(rollback["actor"], "system");
    assert_eq!(rollback["app"]["name"], "shop-stg");
    assert_eq!(rollback["pipeline"]["name"], "shop");
    assert_eq!(rollback["changes"]["to_version"], 1);
    assert_eq!(rollback["changes"]["image"], "registry.example.com/shop:1");
    assert_eq!(rollback["resource"]["name"], "shop-stg v3");
    assert!(rollback["summary"]
        .as_str()
        .unwrap()
        .contains("verification of v2 failed"));
    // The failing status was the CI token's.
    let statuses = entries(&app, "?action=status.create&app=shop-stg", &tokens.reader).await;
    assert_eq!(statuses[0]["actor"], "ci-bot");
}

#[tokio::test]
async fn entries_past_retention_are_deleted_in_batches_and_the_rest_kept() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    call_ok(
        &app,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        &tokens.ops,
    )
    .await;
    let database = app.stop().await;
    let db = store::connect(&database.url).await.unwrap();

    // 2,500 entries from two years ago, beside this morning's.
    let old = store::now() - chrono::Duration::days(730);
    let rows: Vec<audit_event::Model> = (0..2500)
        .map(|n| audit_event::Model {
            id: uuid::Uuid::new_v4(),
            at: old + chrono::Duration::seconds(n),
            actor: "ops".into(),
            role: "admin".into(),
            action: "pipeline.create".into(),
            resource_kind: "pipeline".into(),
            resource_id: uuid::Uuid::new_v4().to_string(),
            resource_name: format!("old-{n}"),
            pipeline_id: None,
            pipeline_name: None,
            app_id: None,
            app_name: None,
            request_id: None,
            summary: "long ago".into(),
            changes: "{}".into(),
        })
        .collect();
    for chunk in rows.chunks(500) {
        store::audit::insert_audit_events(&db, chunk.to_vec())
            .await
            .unwrap();
    }
    let deleted = pipelines::audit::retention::trim(&db, chrono::Duration::days(400))
        .await
        .unwrap();
    assert_eq!(deleted, 2500);
    let left = audit_event::Entity::find().all(&db).await.unwrap();
    assert_eq!(left.len(), 7, "six tokens and the pipeline stay");
    assert!(left
        .iter()
        .all(|entry| entry.at > Utc::now() - chrono::Duration::hours(1)));

    // A server trims at start-up by itself; 0 days (None) keeps everything.
    let aged = store::now() - chrono::Duration::days(500);
    audit_event::Entity::update_many()
        .col_expr(audit_event::Column::At, aged.into())
        .filter(audit_event::Column::Action.eq("token.create"))
        .exec(&db)
        .await
        .unwrap();
    let mut keeping = settings_for(&database.url);
    keeping.audit_retention = None;
    let app = spawn_app_with(keeping, database).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(entries(&app, "", &tokens.reader).await.len(), 7);
    let database = app.stop().await;
    let app = spawn_app_with(settings_for(&database.url), database).await;
    let kept = eventually("the old entries to go", || async {
        let all = entries(&app, "", &tokens.reader).await;
        (all.len() == 1).then_some(all)
    })
    .await;
    assert_eq!(actions(&kept), ["pipeline.create"]);
    assert_eq!(only(&kept, "pipeline.create")["resource"]["name"], "shop");
}

#[tokio::test]
async fn one_process_at_a_time_trims_the_log() {
    let database = crate::helpers::fresh_database().await;
    if !database.is_postgres() {
        eprintln!("SKIPPED on SQLite: the embedded file has one process");
        return;
    }
    let app = spawn_app_with(settings_for(&database.url), database).await;
    let first = store::connect(&app.database.url).await.unwrap();
    let second = store::connect(&app.database.url).await.unwrap();
    let trimming = first.begin().await.unwrap();
    assert!(store::audit::try_lock_trimming(&trimming).await.unwrap());
    // Another process skips its round while the first trims, and deletes nothing.
    let deleted = pipelines::audit::retention::trim(&second, chrono::Duration::days(-1))
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    trimming.commit().await.unwrap();
    // Once it is done, the lock is free again: a cutoff in the future takes every entry.
    app.create_token("ops", "admin").await;
    let deleted = pipelines::audit::retention::trim(&second, chrono::Duration::days(-1))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn an_entry_written_by_one_replica_is_listed_by_another_at_once() {
    let database = crate::helpers::fresh_database().await;
    if !database.is_postgres() {
        eprintln!(
            "SKIPPED on SQLite: replicas share PostgreSQL; the embedded file has one process"
        );
        return;
    }
    let second_handle = database.another_handle();
    let first = spawn_app_with(settings_for(&database.url), database).await;
    let second = spawn_app_with(settings_for(&second_handle.url), second_handle).await;
    let token = first.create_token("ops", "admin").await;
    call_ok(
        &first,
        Method::POST,
        "/pipelines",
        json!({"name": "shop"}),
        &token,
    )
    .await;
    let listed = entries(&second, "?action=pipeline.create", &token).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["resource"]["name"], "shop");
}
