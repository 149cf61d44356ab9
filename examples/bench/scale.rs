//! `bench scale`: the same reads, starts and promotions on a small database and on one with
//! years of history, side by side in one run (PostgreSQL only).
//!
//! Both databases get the same fixture through the service itself: pipeline `shop` with
//! `shop-dev` (development, 501 releases) and `shop-stg` (staging), and 100 finished
//! promotions between them. The big one first gets a history loaded with SQL into the
//! real schema:
//! - 2,000 pipelines of 4 coupled apps (8,000 apps);
//! - 100 releases per app (800,000), each with one status (800,000 statuses over 50
//!   contexts; each app's CI posts 5 of them);
//! - 50 finished one-target promotions per pipeline (100,000), with 5 events each (500,000).
//!
//! Servers resync their read model every 2 s here (`--resync-interval-ms 2000`, 30 s by
//! default), so every measurement runs through full reloads; the promotion rows say how
//! many.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use pipelines::proto::{
    app_service_client::AppServiceClient, coupling_service_client::CouplingServiceClient,
    create_promotion_response::Result as Created, pipeline_service_client::PipelineServiceClient,
    promotion_service_client::PromotionServiceClient, release_service_client::ReleaseServiceClient,
    CreateAppRequest, CreateCouplingRequest, CreatePipelineRequest, CreatePromotionRequest,
    CreateReleaseRequest, Stage, WatchPromotionRequest,
};
use sea_orm::{ConnectionTrait, Database};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use super::{
    database, free_address, memory::rss_kib, ms, percentile, promote, rest::wrk, server_binary,
    watch_to_end, Backend, BenchResult,
};

/// The history of the big database, in statements run in order. `{P}` pipelines, `{A}`
/// apps (4 per pipeline), `{R}` releases per app, `{M}` promotions per pipeline.
/// `bench_id(kind, n)` is a UUID numbered `n` among the rows of one kind: ascending ids
/// append to the indexes, which loads several times faster than random ones.
const HISTORY: &[&str] = &[
    "CREATE FUNCTION bench_id(kind integer, n bigint) RETURNS uuid IMMUTABLE LANGUAGE sql \
     AS $$ SELECT (lpad(to_hex(kind), 8, '0') || '-0000-4000-8000-' || \
     lpad(to_hex(n), 12, '0'))::uuid $$",
    "INSERT INTO pipelines (id, name, description, created_at, updated_at) \
     SELECT bench_id(1, p), 'history-' || p, '', now() - interval '3 years', \
     now() - interval '3 years' FROM generate_series(1, {P}) p",
    "INSERT INTO apps (id, name, created_at, updated_at) \
     SELECT bench_id(2, a), 'history-' || ((a - 1) / 4 + 1) || '-' || ((a - 1) % 4), \
     now() - interval '3 years', now() - interval '3 years' FROM generate_series(1, {A}) a",
    "INSERT INTO couplings (id, pipeline_id, app_id, stage, required_contexts, auto_promote, \
     required_approvals, verification, created_at, updated_at) \
     SELECT bench_id(3, a), bench_id(1, ((a - 1) / 4 + 1)), bench_id(2, a), \
     (ARRAY['review', 'development', 'staging', 'production'])[(a - 1) % 4 + 1], \
     '[\"ci/check-' || (a % 50) || '\"]', false, 0, NULL, now() - interval '3 years', \
     now() - interval '3 years' FROM generate_series(1, {A}) a",
    "INSERT INTO releases (id, app_id, version, image, description, status, created_at, \
     updated_at) \
     SELECT bench_id(4, a * 1000 + v), bench_id(2, a), v, \
     'registry.example/history-' || a || ':' || v, '', 'succeeded', \
     now() - interval '3 years' + v * interval '6 hours', \
     now() - interval '3 years' + v * interval '6 hours' \
     FROM generate_series(1, {A}) a, generate_series(1, {R}) v",
    // Counted once afterwards, as the migration that added the counts does.
    "ALTER TABLE release_statuses DISABLE TRIGGER release_statuses_count_contexts",
    "INSERT INTO release_statuses (id, release_id, context, name, state, description, \
     target_url, image_url, created_at, updated_at) \
     SELECT bench_id(5, a * 1000 + v), bench_id(4, a * 1000 + v), \
     'ci/check-' || ((a + v % 5) % 50), 'Check ' || ((a + v % 5) % 50), 'success', '', '', '', \
     now() - interval '3 years' + v * interval '6 hours', \
     now() - interval '3 years' + v * interval '6 hours' \
     FROM generate_series(1, {A}) a, generate_series(1, {R}) v",
    "ALTER TABLE release_statuses ENABLE TRIGGER release_statuses_count_contexts",
    "INSERT INTO app_status_contexts (app_id, context, name, statuses) \
     SELECT r.app_id, s.context, s.name, COUNT(*) FROM release_statuses s \
     JOIN releases r ON r.id = s.release_id GROUP BY r.app_id, s.context, s.name",
    // Promotion m of pipeline p takes release m of its development app (4p - 2) to its
    // staging app (4p - 1).
    "INSERT INTO promotions (id, pipeline_id, source_app_id, source_release_id, status, safe, \
     created_by, overridden_checks, overridden_freezes, event_count, required_approvals, \
     created_at, updated_at, finished_at) \
     SELECT bench_id(6, p * 1000 + m), bench_id(1, p), bench_id(2, (4 * p - 2)), \
     bench_id(4, (4 * p - 2) * 1000 + m), 'successful', false, 'history', '[]', '[]', 5, 0, \
     now() - interval '3 years' + m * interval '6 hours', \
     now() - interval '3 years' + m * interval '6 hours', \
     now() - interval '3 years' + m * interval '6 hours' \
     FROM generate_series(1, {P}) p, generate_series(1, {M}) m",
    "INSERT INTO promotion_targets (id, promotion_id, app_id, position, status, release_id, \
     error_message, attempts, app_deleted, freeze_exempt, queued_at, created_at, updated_at) \
     SELECT bench_id(7, p * 1000 + m), bench_id(6, p * 1000 + m), \
     bench_id(2, (4 * p - 1)), 0, 'succeeded', bench_id(4, (4 * p - 1) * 1000 + m), \
     '', 1, false, false, now() - interval '3 years' + m * interval '6 hours', \
     now() - interval '3 years' + m * interval '6 hours', \
     now() - interval '3 years' + m * interval '6 hours' \
     FROM generate_series(1, {P}) p, generate_series(1, {M}) m",
    "INSERT INTO promotion_events (id, promotion_id, sequence, kind, target_id, app_id, app_name, \
     target_status, promotion_status, release_id, release_version, message, created_at, actor, \
     comment) \
     SELECT bench_id(8, (p * 1000 + m) * 10 + e.n), bench_id(6, p * 1000 + m), e.n, \
     e.kind, CASE WHEN e.target THEN bench_id(7, p * 1000 + m) END, \
     CASE WHEN e.target THEN bench_id(2, (4 * p - 1)) END, \
     CASE WHEN e.target THEN 'history-' || p || '-2' ELSE '' END, \
     CASE WHEN e.target THEN e.target_status ELSE '' END, e.promotion_status, \
     CASE WHEN e.n >= 4 THEN bench_id(4, (4 * p - 1) * 1000 + m) END, \
     CASE WHEN e.n >= 4 THEN m END, '', \
     now() - interval '3 years' + m * interval '6 hours', '', '' \
     FROM generate_series(1, {P}) p, generate_series(1, {M}) m, (VALUES \
     (1, 'promotion.created', false, '', 'pending'), \
     (2, 'target.queued', true, 'pending', 'pending'), \
     (3, 'target.running', true, 'running', 'running'), \
     (4, 'target.succeeded', true, 'succeeded', 'running'), \
     (5, 'promotion.finished', false, '', 'successful')) \
     AS e(n, kind, target, target_status, promotion_status)",
    "DROP FUNCTION bench_id(integer, bigint)",
    "ANALYZE",
];

/// The measured servers' resync interval: full reloads run during every measurement.
const RESYNC_MS: u32 = 2_000;

/// How big a database's history is.
struct History {
    pipelines: u32,
    releases_per_app: u32,
    promotions_per_pipeline: u32,
}

const BIG: History = History {
    pipelines: 2_000,
    releases_per_app: 100,
    promotions_per_pipeline: 50,
};

/// Loads the history with SQL; answers how long it took.
async fn load_history(url: &str, history: &History) -> BenchResult<Duration> {
    let started = Instant::now();
    let db = Database::connect(url).await?;
    for statement in HISTORY {
        let sql = statement
            .replace("{P}", &history.pipelines.to_string())
            .replace("{A}", &(history.pipelines * 4).to_string())
            .replace("{R}", &history.releases_per_app.to_string())
            .replace("{M}", &history.promotions_per_pipeline.to_string());
        let began = Instant::now();
        db.execute_unprepared(&sql).await?;
        if std::env::var_os("BENCH_SCALE_VERBOSE").is_some() {
            eprintln!("{} {}", ms(began.elapsed()), &sql[..sql.len().min(60)]);
        }
    }
    db.close().await?;
    Ok(started.elapsed())
}

fn run_binary(url: &str, args: &[&str]) -> BenchResult<String> {
    let output = Command::new(server_binary())
        .args(args)
        .env("DATABASE_URL", url)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "pipelines {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// One server on one database, with what its start cost.
struct Measured {
    child: Child,
    address: SocketAddr,
    token: String,
    /// Start → `/healthz` 200, and start → the first authenticated read 200.
    healthy_after: Duration,
    first_read_after: Duration,
    /// Resident size 5 s after the start, with the default resync interval.
    idle_rss_kib: u64,
}

impl Drop for Measured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server that reloads its read model every `resync_ms`.
fn start_server(url: &str, resync_ms: u32) -> BenchResult<(Child, SocketAddr)> {
    let address = free_address()?;
    let child = Command::new(server_binary())
        .args([
            "serve",
            "--listen",
            &address.to_string(),
            "--resync-interval-ms",
            &resync_ms.to_string(),
        ])
        .env("DATABASE_URL", url)
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
    Ok((child, address))
}

/// Polls `path` until it answers 200.
async fn until_ok(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    started: Instant,
) -> BenchResult<Duration> {
    loop {
        let mut request = http.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Ok(response) = request.send().await {
            if response.status() == 200 {
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{url} did not answer 200 within a minute").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The fixture both databases share, made through the service.
async fn fixture(channel: &Channel) -> BenchResult<()> {
    PipelineServiceClient::new(channel.clone())
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description: String::new(),
        })
        .await?;
    for (name, stage) in [
        ("shop-dev", Stage::Development),
        ("shop-stg", Stage::Staging),
    ] {
        AppServiceClient::new(channel.clone())
            .create_app(CreateAppRequest { name: name.into() })
            .await?;
        CouplingServiceClient::new(channel.clone())
            .create_coupling(CreateCouplingRequest {
                app: name.into(),
                pipeline: "shop".into(),
                stage: stage as i32,
                ..Default::default()
            })
            .await?;
    }
    let mut releases = ReleaseServiceClient::new(channel.clone());
    for version in 1..=501 {
        releases
            .create_release(CreateReleaseRequest {
                app: "shop-dev".into(),
                image: format!("registry.example/shop:{version}"),
                description: String::new(),
            })
            .await?;
    }
    for _ in 0..100 {
        let id = promote(channel, vec!["shop-stg".into()]).await?;
        watch_to_end(channel, id).await?;
    }
    Ok(())
}

/// A database of the given history with the fixture, and a server freshly started on it.
async fn prepared(admin_url: &str, history: Option<&History>) -> BenchResult<(Measured, String)> {
    let dir = tempfile::tempdir()?;
    let url = database(&Backend::Postgres(admin_url.to_owned()), &dir).await?;
    run_binary(&url, &["migrate"])?;
    let loaded = match history {
        Some(history) => format!(
            "history loaded in {}",
            ms(load_history(&url, history).await?)
        ),
        None => "no history".to_owned(),
    };
    {
        let (mut child, address) = start_server(&url, 30_000)?;
        let http = reqwest::Client::new();
        until_ok(
            &http,
            format!("http://{address}/healthz"),
            None,
            Instant::now(),
        )
        .await?;
        let channel = Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?;
        let made = fixture(&channel).await;
        let _ = child.kill();
        let _ = child.wait();
        made?;
    }
    // The fixture was made in protected mode; the measured server has a token.
    let token = run_binary(
        &url,
        &["tokens", "create", "--name", "bench", "--role", "admin"],
    )?;
    // Started with the default resync interval for the start and the idle size, then
    // again reloading every 2 s for everything else.
    let started = Instant::now();
    let (mut child, address) = start_server(&url, 30_000)?;
    let http = reqwest::Client::new();
    let healthy_after = until_ok(&http, format!("http://{address}/healthz"), None, started).await?;
    let first_read_after = until_ok(
        &http,
        format!("http://{address}/pipelines/shop"),
        Some(&token),
        started,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(started.elapsed())).await;
    let idle_rss_kib = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let (child, address) = start_server(&url, RESYNC_MS)?;
    until_ok(
        &http,
        format!("http://{address}/healthz"),
        None,
        Instant::now(),
    )
    .await?;
    Ok((
        Measured {
            child,
            address,
            token,
            healthy_after,
            first_read_after,
            idle_rss_kib,
        },
        loaded,
    ))
}

fn row(figure: &str, small: String, big: String, ratio: String) {
    println!("| {figure} | {small} | {big} | {ratio} |");
}

/// Creates a one-target promotion from `shop-dev` to `shop-stg` with the token and
/// follows it to its end.
async fn promote_to_the_end(channel: &Channel, token: &str) -> BenchResult<()> {
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let authorized = move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        Ok(request)
    };
    let mut promotions =
        PromotionServiceClient::with_interceptor(channel.clone(), authorized.clone());
    let created = promotions
        .create_promotion(CreatePromotionRequest {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            targets: vec!["shop-stg".into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    let Some(Created::Promotion(promotion)) = created.result else {
        return Err("no promotion".into());
    };
    let mut events = promotions
        .watch_promotion(WatchPromotionRequest {
            id: promotion.id,
            after_sequence: 0,
        })
        .await?
        .into_inner();
    while let Some(event) = events.next().await {
        event?;
    }
    Ok(())
}

/// Promotion latencies, create → finished, of `count` one-target promotions, alternating
/// between the servers in blocks of 10.
async fn promotion_latencies(
    servers: [&Measured; 2],
    count: usize,
) -> BenchResult<[Vec<Duration>; 2]> {
    let mut channels = Vec::new();
    for server in servers {
        channels.push(
            Channel::from_shared(format!("http://{}", server.address))?
                .connect()
                .await?,
        );
    }
    let mut samples = [Vec::new(), Vec::new()];
    for _ in 0..count / 10 {
        for ((channel, samples), server) in channels.iter().zip(samples.iter_mut()).zip(servers) {
            for _ in 0..10 {
                let started = Instant::now();
                promote_to_the_end(channel, &server.token).await?;
                samples.push(started.elapsed());
            }
        }
    }
    for samples in &mut samples {
        samples.sort();
    }
    Ok(samples)
}

/// One of the server's metrics, without labels.
async fn metric(server: &Measured, name: &str) -> BenchResult<f64> {
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", server.address))
        .bearer_auth(&server.token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| format!("no {name} in /metrics").into())
}

pub async fn scale_rows(admin_url: &str) -> BenchResult<()> {
    let (small, small_load) = prepared(admin_url, None).await?;
    let (big, big_load) = prepared(admin_url, Some(&BIG)).await?;
    println!();
    println!("| figure | small ({small_load}) | big ({big_load}) | big/small |");
    println!("|---|---|---|---|");
    let ratio = |small: f64, big: f64| format!("{:.2}×", big / small);
    row(
        "start → `/healthz` 200",
        ms(small.healthy_after),
        ms(big.healthy_after),
        ratio(
            small.healthy_after.as_secs_f64(),
            big.healthy_after.as_secs_f64(),
        ),
    );
    row(
        "start → first authenticated read (`GET /pipelines/shop`) 200",
        ms(small.first_read_after),
        ms(big.first_read_after),
        ratio(
            small.first_read_after.as_secs_f64(),
            big.first_read_after.as_secs_f64(),
        ),
    );
    let rss = [small.idle_rss_kib, big.idle_rss_kib];
    row(
        "idle RSS, 5 s after start",
        format!("{:.1} MiB", rss[0] as f64 / 1024.0),
        format!("{:.1} MiB", rss[1] as f64 / 1024.0),
        format!(
            "{} ({:.2} KiB per app of history)",
            ratio(rss[0] as f64, rss[1] as f64),
            rss[1].saturating_sub(rss[0]) as f64 / f64::from(BIG.pipelines * 4)
        ),
    );
    let reads = [
        "/pipelines/shop",
        "/pipelines/shop/pipeline-couplings",
        "/pipelines/shop/statuses",
        "/pipeline-promotions?pipeline=shop",
        "/apps/shop-dev/releases",
        "/apps/shop-dev/releases?page_size=20",
        "/pipeline-couplings",
    ];
    for path in reads {
        let url = |server: &Measured| format!("http://{}{path}", server.address);
        wrk(&url(&small), Some(&small.token), "1s")?;
        wrk(&url(&big), Some(&big.token), "1s")?;
        let (mut s, mut b) = (0.0, 0.0);
        for _ in 0..2 {
            s += wrk(&url(&small), Some(&small.token), "3s")? / 2.0;
            b += wrk(&url(&big), Some(&big.token), "3s")? / 2.0;
        }
        row(
            &format!("`GET {path}`, wrk -t2 -c32"),
            format!("{s:.0}/s"),
            format!("{b:.0}/s"),
            ratio(s, b),
        );
    }
    const RELOADS: &str = "pipelines_read_model_reloads_total";
    let reloads_before = [metric(&small, RELOADS).await?, metric(&big, RELOADS).await?];
    let [small_times, big_times] = promotion_latencies([&small, &big], 200).await?;
    let reloads = [
        metric(&small, RELOADS).await? - reloads_before[0],
        metric(&big, RELOADS).await? - reloads_before[1],
    ];
    for (figure, share) in [("median", 0.5), ("p99", 0.99)] {
        let (s, b) = (
            percentile(&small_times, share),
            percentile(&big_times, share),
        );
        row(
            &format!(
                "one-target promotion, create → finished, {figure} of 200 \
                 ({} and {} full reloads ran meanwhile)",
                reloads[0], reloads[1]
            ),
            ms(s),
            ms(b),
            ratio(s.as_secs_f64(), b.as_secs_f64()),
        );
    }
    let worst = |times: &[Duration]| times.last().copied().unwrap_or_default();
    row(
        "the same, worst of 200",
        ms(worst(&small_times)),
        ms(worst(&big_times)),
        ratio(
            worst(&small_times).as_secs_f64(),
            worst(&big_times).as_secs_f64(),
        ),
    );
    let mut reload = Vec::new();
    for server in [&small, &big] {
        reload.push(metric(server, "pipelines_read_model_last_reload_seconds").await?);
    }
    row(
        "last full reload of the read model (`pipelines_read_model_last_reload_seconds`)",
        format!("{:.1} ms", reload[0] * 1000.0),
        format!("{:.1} ms", reload[1] * 1000.0),
        ratio(reload[0], reload[1]),
    );
    Ok(())
}
