//! What the server holds in memory: its resident size idle on an empty database, and with
//! the read model loaded from a large one (pipelines, each with four coupled apps that
//! have a release and a status).

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use pipelines::store::{
    self,
    entities::{app, coupling, pipeline, release, release_status},
};
use sea_orm::{EntityTrait, Set};
use uuid::Uuid;

use super::{server_binary, BenchResult, Server};

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Rows per INSERT: well under SQLite's limit on bound parameters.
const BATCH: usize = 500;

/// Fills an SQLite database with `pipelines` pipelines of four coupled apps each.
async fn fill(url: &str, pipelines: usize) -> BenchResult<()> {
    let db = store::connect(url).await?;
    store::migrate(&db).await?;
    let now = store::now();
    let stages = ["development", "staging", "staging", "production"];
    let mut pipeline_rows = Vec::new();
    let mut app_rows = Vec::new();
    let mut coupling_rows = Vec::new();
    let mut release_rows = Vec::new();
    let mut status_rows = Vec::new();
    for p in 0..pipelines {
        let pipeline_id = Uuid::new_v4();
        pipeline_rows.push(pipeline::ActiveModel {
            id: Set(pipeline_id),
            name: Set(format!("pipeline-{p:05}")),
            description: Set(String::new()),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
        });
        for (a, stage) in stages.iter().enumerate() {
            let app_id = Uuid::new_v4();
            let release_id = Uuid::new_v4();
            app_rows.push(app::ActiveModel {
                id: Set(app_id),
                name: Set(format!("app-{p:05}-{a}")),
                created_at: Set(now),
                updated_at: Set(now),
                deleted_at: Set(None),
            });
            coupling_rows.push(coupling::ActiveModel {
                id: Set(Uuid::new_v4()),
                pipeline_id: Set(pipeline_id),
                app_id: Set(app_id),
                stage: Set((*stage).to_owned()),
                required_contexts: Set(r#"["ci/test"]"#.to_owned()),
                auto_promote: Set(false),
                required_approvals: Set(0),
                verification: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            });
            release_rows.push(release::ActiveModel {
                id: Set(release_id),
                app_id: Set(app_id),
                version: Set(1),
                image: Set(format!("registry.example.com/app-{p:05}:1")),
                description: Set(String::new()),
                status: Set("succeeded".to_owned()),
                promoted_from_app_id: Set(None),
                promoted_from_release_id: Set(None),
                promoted_from_promotion_id: Set(None),
                promotion_target_id: Set(None),
                created_by_id: Set(None),
                created_by_email: Set(Some("bench".to_owned())),
                config_change_id: sea_orm::NotSet,
                created_at: Set(now),
                updated_at: Set(now),
            });
            status_rows.push(release_status::ActiveModel {
                id: Set(Uuid::new_v4()),
                release_id: Set(release_id),
                context: Set("ci/test".to_owned()),
                name: Set("Tests".to_owned()),
                state: Set("success".to_owned()),
                description: Set(String::new()),
                target_url: Set(String::new()),
                image_url: Set(String::new()),
                created_at: Set(now),
                updated_at: Set(now),
            });
        }
    }
    macro_rules! insert_all {
        ($entity:ty, $rows:expr) => {
            let mut rows = $rows;
            while !rows.is_empty() {
                let batch: Vec<_> = rows.drain(..rows.len().min(BATCH)).collect();
                <$entity>::insert_many(batch).exec(&db).await?;
            }
        };
    }
    insert_all!(pipeline::Entity, pipeline_rows);
    insert_all!(app::Entity, app_rows);
    insert_all!(coupling::Entity, coupling_rows);
    insert_all!(release::Entity, release_rows);
    insert_all!(release_status::Entity, status_rows);
    db.close().await?;
    Ok(())
}

/// The resident size of an idle server on SQLite with `pipelines` pipelines loaded, and
/// how long it took to come up.
pub async fn idle_rss(pipelines: usize) -> BenchResult<(u64, Duration)> {
    let dir = tempfile::tempdir()?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    if pipelines > 0 {
        fill(&url, pipelines).await?;
    }
    let address = super::free_address()?;
    let started = std::time::Instant::now();
    let child = Command::new(server_binary())
        .args(["serve", "--listen", &address.to_string()])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .env(
            "PIPELINES_RATE_LIMIT_READ",
            super::LIMITS_FAR_ABOVE_THE_LOAD,
        )
        .env(
            "PIPELINES_RATE_LIMIT_WRITE",
            super::LIMITS_FAR_ABOVE_THE_LOAD,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        address,
        database_url: url,
        _dir: dir,
    };
    // Requests are served once the read model has loaded.
    let health = format!("http://{address}/healthz");
    let client = reqwest::Client::new();
    while !client
        .get(&health)
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let up = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok((rss_kib(server.child.id()), up))
}
