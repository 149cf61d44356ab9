//! Each app's status contexts are counted by the database as statuses are written
//! (`app_status_contexts`), so the read model loads them without reading the history. The
//! counts must match the statuses exactly, whatever runs at once.

use futures::future::join_all;
use pipelines::proto::{
    CreateReleaseStatusRequest, ListPipelineStatusesRequest, Stage, StatusState,
    UpdateReleaseStatusRequest,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::helpers::{spawn_app, TestApp};

/// `(context, name, statuses)` as counted, and as the statuses themselves say.
async fn counted_and_true(db: &DatabaseConnection) -> (Vec<String>, Vec<String>) {
    let rows = |sql: &str| {
        let statement = Statement::from_string(db.get_database_backend(), sql.to_owned());
        async move {
            db.query_all(statement)
                .await
                .expect("query")
                .iter()
                .map(|row| {
                    let context: String = row.try_get("", "context").expect("context");
                    let name: String = row.try_get("", "name").expect("name");
                    let statuses: i64 = row.try_get("", "statuses").expect("statuses");
                    format!("{context}|{name}|{statuses}")
                })
                .collect::<Vec<_>>()
        }
    };
    let counted = rows(
        "SELECT context, name, statuses FROM app_status_contexts \
         WHERE statuses > 0 ORDER BY context, name",
    )
    .await;
    let truth = rows(
        "SELECT s.context, s.name, COUNT(*) AS statuses FROM release_statuses s \
         JOIN releases r ON r.id = s.release_id GROUP BY r.app_id, s.context, s.name \
         ORDER BY s.context, s.name",
    )
    .await;
    (counted, truth)
}

async fn pipeline_statuses(app: &TestApp) -> Vec<String> {
    app.pipelines
        .clone()
        .list_pipeline_statuses(ListPipelineStatusesRequest {
            pipeline: "shop".into(),
            ..Default::default()
        })
        .await
        .expect("statuses")
        .into_inner()
        .statuses
        .into_iter()
        .map(|status| format!("{}|{}", status.context, status.name))
        .collect()
}

/// Renames `status` of `release` to `name`.
async fn rename(app: &TestApp, release: &str, status: &str, name: &str) {
    app.releases
        .clone()
        .update_release_status(UpdateReleaseStatusRequest {
            app: "shop-dev".into(),
            release_id: release.into(),
            status_id: status.into(),
            name: Some(name.into()),
            ..Default::default()
        })
        .await
        .expect("rename status");
}

#[tokio::test]
async fn counts_stay_exact_under_concurrent_creates_renames_and_deletes() {
    let app = spawn_app().await;
    app.create_pipeline("shop").await;
    app.create_app("shop-dev").await;
    app.couple("shop-dev", "shop", Stage::Development, &[])
        .await;
    let mut releases = Vec::new();
    for n in 0..4 {
        releases.push(app.create_release("shop-dev", &format!("img:{n}")).await.id);
    }
    // 4 releases × 5 contexts, all at once, every status named "Alpha".
    let creates = (0..20).map(|n| {
        let release = releases[n % 4].clone();
        let mut client = app.releases.clone();
        async move {
            let created = client
                .create_release_status(CreateReleaseStatusRequest {
                    app: "shop-dev".into(),
                    release_id: release.clone(),
                    context: format!("ci/check-{}", n / 4),
                    name: "Alpha".into(),
                    state: StatusState::Success as i32,
                    ..Default::default()
                })
                .await
                .expect("create status")
                .into_inner();
            (release, created.id)
        }
    });
    let statuses = join_all(creates).await;
    let db = Database::connect(&app.database.url).await.expect("connect");
    let (counted, truth) = counted_and_true(&db).await;
    assert_eq!(counted.len(), 5, "{counted:?}");
    assert_eq!(counted, truth);

    // Every status renamed twice at once, to names that cross: A→B and B→A both run.
    let names = ["Alpha", "Beta", "Gamma"];
    let renames = statuses
        .iter()
        .enumerate()
        .flat_map(|(n, (release, status))| {
            [names[(n + 1) % 3], names[(n + 2) % 3]].map(|name| rename(&app, release, status, name))
        });
    join_all(renames).await;
    let (counted, truth) = counted_and_true(&db).await;
    assert_eq!(counted, truth, "after concurrent renames");
    let listed = pipeline_statuses(&app).await;
    let expected: Vec<String> = truth
        .iter()
        .map(|row| row.rsplit_once('|').expect("row").0.to_owned())
        .collect();
    assert_eq!(
        listed, expected,
        "the pipeline's statuses follow the renames"
    );

    // Statuses deleted outright (an operator purging history) are uncounted too.
    db.execute_unprepared("DELETE FROM release_statuses WHERE context = 'ci/check-0'")
        .await
        .expect("delete statuses");
    let (counted, truth) = counted_and_true(&db).await;
    assert_eq!(counted, truth, "after deletes");
    assert!(counted.iter().all(|row| !row.starts_with("ci/check-0|")));
}
