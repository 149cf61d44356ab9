//! A full reload of the read model builds its catalog off to the side: while it runs, a
//! read that needs one fresh entry loads just that entry, and never waits for the reload.

use std::time::Duration;

use pipelines::{proto::Stage, read_model::Key};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_read_needing_a_fresh_entry_never_waits_for_a_full_reload() {
    let app = spawn_app().await;
    if !app.database.is_postgres() {
        // Holding a reload inside its first query needs PostgreSQL's table locks.
        return;
    }
    app.create_pipeline("shop").await;
    let web = app.create_app("shop-dev").await;
    let coupling = app
        .couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    let path = format!("/pipeline-couplings/{}", coupling.id);
    let (status, _) = app.call(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(status, 200);

    // A reload starts and is held inside its first query, which reads the pipelines; a
    // refresh of one app never reads that table.
    let db = Database::connect(&app.database.url).await.expect("connect");
    let holder = db.begin().await.expect("begin");
    holder
        .execute_unprepared("LOCK TABLE pipelines IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let model = std::sync::Arc::clone(&app.hub.read_model);
    let reloads_before = model.full_reloads();
    let reload = tokio::spawn({
        let model = std::sync::Arc::clone(&model);
        async move { model.reload_everything().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reload.is_finished(), "the reload is held");

    // A change written behind the model's back and announced: the next read reloads
    // that one app.
    db.execute_unprepared(
        "UPDATE couplings SET required_contexts = '[\"ci/late\"]' WHERE app_id IN \
         (SELECT id FROM apps WHERE name = 'shop-dev')",
    )
    .await
    .expect("change the coupling");
    model.invalidate([Key::App(web.id.parse().expect("uuid"))]);
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        app.call(reqwest::Method::GET, &path, None, None),
    )
    .await
    .expect("the read did not wait for the held reload");
    assert_eq!(read.0, 200);
    assert_eq!(
        read.1["required_status_checks"]["contexts"],
        serde_json::json!(["ci/late"]),
        "the read shows the change: {}",
        read.1
    );
    assert!(!reload.is_finished(), "the reload was still held");

    holder.rollback().await.expect("release the lock");
    reload.await.expect("reload task").expect("reload");
    assert_eq!(model.full_reloads(), reloads_before + 1);
    let (_, after) = app.call(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(
        after["required_status_checks"]["contexts"],
        serde_json::json!(["ci/late"]),
        "the swapped-in catalog kept the change"
    );
}
