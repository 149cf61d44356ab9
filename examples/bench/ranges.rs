//! `bench ranges`: Heroku's `Range` on the releases list, as the CLI sends it
//! (`version ..; max=200, order=desc`), on an app with 201 releases and on one with
//! 200,201, side by side on one server. The long history is loaded with SQL into the real
//! schema; the page of the 200 newest should cost the same on both.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};

use super::{database, rest, spawn_limited, Backend, BenchResult, LIMITS_FAR_ABOVE_THE_LOAD};

const YOUNG_RELEASES: u32 = 201;
const OLD_RELEASES: u32 = 200_201;
const RANGE: &str = "Range: version ..; max=200, order=desc";

pub async fn range_rows(backend: &Backend) -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let url = database(backend, &dir).await?;
    let server = spawn_limited(url.clone(), dir, "warn", LIMITS_FAR_ABOVE_THE_LOAD).await?;
    let token = rest::admin_token(&server)?;
    // Let the server see the new token.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = format!("http://{}", server.address);
    let client = reqwest::Client::new();
    let db = Database::connect(url.as_str()).await?;
    for (name, releases) in [("young", YOUNG_RELEASES), ("old", OLD_RELEASES)] {
        let app: serde_json::Value = client
            .post(format!("{base}/apps"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = uuid::Uuid::parse_str(app["id"].as_str().ok_or("an app id")?)?;
        db.execute_unprepared(&history(backend, id, releases))
            .await?;
    }
    let url = |name: &str| format!("{base}/apps/{name}/releases");
    let headers = [format!("Authorization: Bearer {token}"), RANGE.to_owned()];
    for name in ["young", "old"] {
        rest::wrk_with_headers(&url(name), &headers, "2s")?;
    }
    // For scale: the young app's whole list (201 releases, no Range) in the same run.
    let whole_list = &headers[..1];
    rest::wrk_with_headers(&url("young"), whole_list, "2s")?;
    let (mut young, mut old, mut whole) = (0.0, 0.0, 0.0);
    for _ in 0..3 {
        young += rest::wrk_with_headers(&url("young"), &headers, "3s")? / 3.0;
        old += rest::wrk_with_headers(&url("old"), &headers, "3s")? / 3.0;
        whole += rest::wrk_with_headers(&url("young"), whole_list, "3s")? / 3.0;
    }
    println!(
        "| REST GET /apps/{{app}}/releases with `{RANGE}`, wrk -t2 -c32, an app with {YOUNG_RELEASES} releases vs one with {OLD_RELEASES} | {} | {young:.0} vs {old:.0} req/s: the long history at **{:.0}%** of the short (the short app's whole list of {YOUNG_RELEASES} without a Range: {whole:.0} req/s) |",
        backend.name(),
        old / young * 100.0
    );
    Ok(())
}

/// SQL that gives app `id` releases 1 to `count`.
fn history(backend: &Backend, id: uuid::Uuid, count: u32) -> String {
    match backend {
        Backend::Postgres(_) => format!(
            "INSERT INTO releases (id, app_id, version, image, description, status, \
             created_at, updated_at) \
             SELECT gen_random_uuid(), '{id}', v, 'registry.example/app:' || v, '', \
             'succeeded', now() - interval '3 years' + v * interval '1 minute', \
             now() - interval '3 years' + v * interval '1 minute' \
             FROM generate_series(1, {count}) v"
        ),
        Backend::Sqlite => format!(
            "WITH RECURSIVE v(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM v WHERE n < {count}) \
             INSERT INTO releases (id, app_id, version, image, description, status, \
             created_at, updated_at) \
             SELECT randomblob(16), X'{}', n, 'registry.example/app:' || n, '', 'succeeded', \
             strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), \
             strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') FROM v",
            id.simple()
        ),
    }
}
