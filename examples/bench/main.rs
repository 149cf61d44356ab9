//! Benchmarks for the pipelines service. Not a test: it prints a table.
//!
//!     cargo run --release --example bench
//!     BENCH_DATABASE_URL=postgres://pipelines:pipelines@127.0.0.1:5432/pipelines \
//!         cargo run --release --example bench
//!
//! Each measurement starts the release `pipelines` binary as a separate process on a fresh
//! database (an SQLite file, and a new PostgreSQL database when BENCH_DATABASE_URL names a
//! server where the role may create databases), and drives it over gRPC on loopback.
//! Machines here are noisy: compare rows of one run with each other, not across runs.
//!
//! The throughput row measures 3 rounds; `BENCH_THROUGHPUT_ROUNDS=N` measures N (many
//! make a steady load to attach `perf` to), and `BENCH_KEEP_DATABASES=1` keeps the
//! PostgreSQL databases it made, so their rows (event times, say) can be examined.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use pipelines::proto::{
    app_service_client::AppServiceClient, coupling_service_client::CouplingServiceClient,
    create_promotion_response::Result as Created, pipeline_service_client::PipelineServiceClient,
    promotion_service_client::PromotionServiceClient, release_service_client::ReleaseServiceClient,
    CreateAppRequest, CreateCouplingRequest, CreatePipelineRequest, CreatePromotionRequest,
    CreateReleaseRequest, GetPipelineRequest, Stage, Verification, WatchPromotionRequest,
};
use sea_orm::{ConnectionTrait, Database};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

mod auto;
mod limits;
mod memory;
mod ranges;
mod rest;
mod scale;
mod stream;
mod verification;

struct Server {
    child: Child,
    address: SocketAddr,
    database_url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_binary() -> PathBuf {
    let mut path = std::env::current_exe().unwrap_or_default();
    path.pop(); // examples/
    path.pop();
    path.push("pipelines");
    path
}

/// PostgreSQL databases this run created, dropped when it ends.
static CREATED_DATABASES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Drops the PostgreSQL databases this run created. Their servers have stopped by now.
async fn drop_created_databases(admin_url: &str) -> BenchResult<()> {
    let names = std::mem::take(
        &mut *CREATED_DATABASES
            .lock()
            .map_err(|_| "database list poisoned")?,
    );
    if std::env::var_os("BENCH_KEEP_DATABASES").is_some() {
        eprintln!("kept databases: {names:?}");
        return Ok(());
    }
    let admin = Database::connect(admin_url).await?;
    for name in names {
        // A database another role still uses (an autovacuum worker, say) is left behind
        // with a note rather than failing the run that measured everything already.
        let dropped = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
        if let Err(error) = dropped {
            eprintln!("could not drop {name}: {error}");
        }
    }
    admin.close().await?;
    Ok(())
}

/// A fresh database: SQLite in a temporary directory, or a new PostgreSQL database.
async fn database(backend: &Backend, dir: &tempfile::TempDir) -> BenchResult<String> {
    match backend {
        Backend::Sqlite => Ok(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )),
        Backend::Postgres(admin_url) => {
            let name = format!("pipelines_bench_{}", uuid::Uuid::new_v4().simple());
            CREATED_DATABASES
                .lock()
                .map_err(|_| "database list poisoned")?
                .push(name.clone());
            let admin = Database::connect(admin_url.as_str()).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await?;
            admin.close().await?;
            let (base, _) = admin_url.rsplit_once('/').ok_or("bad BENCH_DATABASE_URL")?;
            Ok(format!("{base}/{name}"))
        }
    }
}

async fn start(backend: &Backend) -> BenchResult<Server> {
    start_logging(backend, "warn").await
}

/// Where the servers' logs go: the file named by `BENCH_SERVER_LOG`, else nowhere.
fn server_log() -> BenchResult<Stdio> {
    Ok(match std::env::var_os("BENCH_SERVER_LOG") {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        None => Stdio::null(),
    })
}

/// Targets each server deploys at once: `BENCH_PARALLEL_TARGETS`, 16 by default.
fn parallel_targets() -> String {
    std::env::var("BENCH_PARALLEL_TARGETS").unwrap_or_else(|_| "16".to_owned())
}

/// Starts the server with `RUST_LOG` set to `log` (`info` writes one line per request).
async fn start_logging(backend: &Backend, log: &str) -> BenchResult<Server> {
    let dir = tempfile::tempdir()?;
    let url = database(backend, &dir).await?;
    spawn_on(url, dir, log).await
}

/// Starts another server on `server`'s database (a replica, on PostgreSQL).
async fn start_replica(server: &Server) -> BenchResult<Server> {
    spawn_on(server.database_url.clone(), tempfile::tempdir()?, "warn").await
}

/// A loopback address with a port free right now, for a server to listen on.
fn free_address() -> BenchResult<SocketAddr> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}").parse()?)
}

/// The rate limits every measured server runs with: far above any load here, so that no
/// call is refused and every one still passes through its token's buckets. `bench limits`
/// compares them with limits off.
const LIMITS_FAR_ABOVE_THE_LOAD: &str = "1000000/1000000";

async fn spawn_on(url: String, dir: tempfile::TempDir, log: &str) -> BenchResult<Server> {
    spawn_limited(url, dir, log, LIMITS_FAR_ABOVE_THE_LOAD).await
}

/// A server whose tokens' read and write limits are `limits` (`0` for none).
async fn spawn_limited(
    url: String,
    dir: tempfile::TempDir,
    log: &str,
    limits: &str,
) -> BenchResult<Server> {
    let address = free_address()?;
    let child = Command::new(server_binary())
        .args([
            "serve",
            "--listen",
            &address.to_string(),
            "--max-parallel-targets",
            &parallel_targets(),
        ])
        .env("DATABASE_URL", &url)
        .env("PIPELINES_RATE_LIMIT_READ", limits)
        .env("PIPELINES_RATE_LIMIT_WRITE", limits)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_SERVER_RUST_LOG").unwrap_or_else(|_| log.to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(server_log()?)
        .spawn()
        .map_err(|error| {
            format!(
                "cannot start {}: {error} (build with --release)",
                server_binary().display()
            )
        })?;
    let started = Instant::now();
    while tokio::net::TcpStream::connect(address).await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the server did not come up".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Server {
        child,
        address,
        database_url: url,
        _dir: dir,
    })
}

async fn channel(server: &Server) -> BenchResult<Channel> {
    Ok(Channel::from_shared(format!("http://{}", server.address))?
        .connect()
        .await?)
}

/// Pipeline `shop`: `shop-dev` with one release, and `targets` staging apps.
async fn setup(channel: &Channel, targets: usize) -> BenchResult<Vec<String>> {
    setup_verifying(channel, targets, None).await
}

/// Like [`setup`], with `verification` on every staging coupling.
async fn setup_verifying(
    channel: &Channel,
    targets: usize,
    verification: Option<Verification>,
) -> BenchResult<Vec<String>> {
    PipelineServiceClient::new(channel.clone())
        .create_pipeline(CreatePipelineRequest {
            name: "shop".into(),
            description: String::new(),
        })
        .await?;
    let mut apps = AppServiceClient::new(channel.clone());
    let mut couplings = CouplingServiceClient::new(channel.clone());
    let mut names = Vec::new();
    for (name, stage) in std::iter::once(("shop-dev".to_owned(), Stage::Development))
        .chain((0..targets).map(|i| (format!("shop-stg-{i:03}"), Stage::Staging)))
    {
        apps.create_app(CreateAppRequest { name: name.clone() })
            .await?;
        couplings
            .create_coupling(CreateCouplingRequest {
                promotion_policy: None,
                verification: (stage == Stage::Staging)
                    .then(|| verification.clone())
                    .flatten(),
                app: name.clone(),
                pipeline: "shop".into(),
                stage: stage as i32,
                required_status_checks: None,
            })
            .await?;
        if stage == Stage::Staging {
            names.push(name);
        }
    }
    ReleaseServiceClient::new(channel.clone())
        .create_release(CreateReleaseRequest {
            app: "shop-dev".into(),
            image: "registry/shop:1".into(),
            description: String::new(),
        })
        .await?;
    Ok(names)
}

async fn promote(channel: &Channel, targets: Vec<String>) -> BenchResult<String> {
    let response = PromotionServiceClient::new(channel.clone())
        .create_promotion(CreatePromotionRequest {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            targets,
            ..Default::default()
        })
        .await?
        .into_inner();
    match response.result {
        Some(Created::Promotion(promotion)) => Ok(promotion.id),
        _ => Err("no promotion".into()),
    }
}

async fn watch_to_end(channel: &Channel, id: String) -> BenchResult<()> {
    let mut stream = PromotionServiceClient::new(channel.clone())
        .watch_promotion(WatchPromotionRequest {
            id,
            after_sequence: 0,
        })
        .await?
        .into_inner();
    while let Some(event) = stream.next().await {
        event?;
    }
    Ok(())
}

/// The sample at `share` (0 to 1) of sorted samples.
fn percentile(sorted: &[Duration], share: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * share).round() as usize]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Median create-to-finished latency of a promotion to `targets` apps, over 3 runs.
async fn promotion_latency(backend: &Backend, targets: usize) -> BenchResult<Duration> {
    let server = start(backend).await?;
    let channel = channel(&server).await?;
    let apps = setup(&channel, targets).await?;
    let mut samples = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let id = promote(&channel, apps.clone()).await?;
        watch_to_end(&channel, id).await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(samples[1])
}

/// Promotions finished per second when `count` one-target promotions over 20 apps are
/// created at once, measured on a server that has already run such a round: a long-running
/// server's connections have parsed and planned its statements before.
async fn promotion_throughput(backend: &Backend, count: usize) -> BenchResult<f64> {
    let server = start(backend).await?;
    let channel = channel(&server).await?;
    let apps = setup(&channel, 20).await?;
    concurrent_promotions(&channel, &apps, count).await?;
    let rounds = throughput_rounds();
    let started = Instant::now();
    for _ in 0..rounds {
        concurrent_promotions(&channel, &apps, count).await?;
    }
    Ok((count * rounds) as f64 / started.elapsed().as_secs_f64())
}

/// Creates `count` one-target promotions over `apps` at once and follows each to its end.
async fn concurrent_promotions(
    channel: &Channel,
    apps: &[String],
    count: usize,
) -> BenchResult<()> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let channel = channel.clone();
            let target = apps[i % apps.len()].clone();
            tokio::spawn(async move {
                let id = promote(&channel, vec![target]).await?;
                watch_to_end(&channel, id).await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

struct Unary {
    per_second: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

/// Runs `call` from `workers` concurrent tasks, `per_worker` times each.
async fn unary<F, Fut>(workers: usize, per_worker: usize, call: F) -> BenchResult<Unary>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = BenchResult<()>> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let call = Arc::clone(&call);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_worker);
                for n in 0..per_worker {
                    let begun = Instant::now();
                    call(worker * per_worker + n).await?;
                    latencies.push(begun.elapsed());
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    Ok(Unary {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
    })
}

async fn unary_table(backend: &Backend) -> BenchResult<Vec<(String, Unary)>> {
    let server = start(backend).await?;
    let channel = channel(&server).await?;
    setup(&channel, 1).await?;
    let (workers, per_worker) = (16, 400);
    let mut rows = Vec::new();
    let health = channel.clone();
    rows.push((
        "empty handler (tonic-health Check)".to_owned(),
        unary(workers, per_worker, move |_| {
            let mut client = HealthClient::new(health.clone());
            async move {
                client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await?;
                Ok(())
            }
        })
        .await?,
    ));
    let get = channel.clone();
    rows.push((
        "GetPipeline".to_owned(),
        unary(workers, per_worker, move |_| {
            let mut client = PipelineServiceClient::new(get.clone());
            async move {
                client
                    .get_pipeline(GetPipelineRequest {
                        pipeline: "shop".into(),
                    })
                    .await?;
                Ok(())
            }
        })
        .await?,
    ));
    let create = channel.clone();
    rows.push((
        "CreatePipeline".to_owned(),
        unary(workers, per_worker, move |n| {
            let mut client = PipelineServiceClient::new(create.clone());
            async move {
                client
                    .create_pipeline(CreatePipelineRequest {
                        name: format!("bench-{n:06}"),
                        description: String::new(),
                    })
                    .await?;
                Ok(())
            }
        })
        .await?,
    ));
    Ok(rows)
}

/// The server's resident memory before and with `count` open WatchPromotion streams on
/// one running promotion (its webhook never answers, so it stays running).
async fn watch_memory(count: usize) -> BenchResult<(u64, u64)> {
    // A webhook that never answers keeps the promotion running.
    let hold = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/deploy", hold.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hold.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir()?;
    let address = free_address()?;
    let child = Command::new(server_binary())
        .args([
            "serve",
            "--listen",
            &address.to_string(),
            "--deployer",
            "webhook",
            "--webhook-url",
            &hook,
            "--webhook-secret",
            "bench",
            "--webhook-timeout-ms",
            "600000",
        ])
        .env(
            "DATABASE_URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ),
        )
        .env("RUST_LOG", "warn")
        .env("PIPELINES_RATE_LIMIT_READ", LIMITS_FAR_ABOVE_THE_LOAD)
        .env("PIPELINES_RATE_LIMIT_WRITE", LIMITS_FAR_ABOVE_THE_LOAD)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        address,
        database_url: String::new(),
        _dir: dir,
    };
    while tokio::net::TcpStream::connect(address).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let control = channel(&server).await?;
    let apps = setup(&control, 1).await?;
    let id = promote(&control, apps).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = memory::rss_kib(server.child.id());
    // HTTP/2 allows a bounded number of streams per connection: spread over 100 channels.
    let mut channels = Vec::new();
    for _ in 0..100 {
        channels.push(channel(&server).await?);
    }
    let mut streams = Vec::with_capacity(count);
    for n in 0..count {
        let mut stream = PromotionServiceClient::new(channels[n % channels.len()].clone())
            .watch_promotion(WatchPromotionRequest {
                id: id.clone(),
                after_sequence: 0,
            })
            .await?
            .into_inner();
        stream.next().await.ok_or("no history")??;
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_streams = memory::rss_kib(server.child.id());
    drop(streams);
    Ok((before, with_streams))
}

enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let mut backends = Vec::new();
    // `BENCH_BACKENDS=postgres` (or `sqlite`) runs one backend only.
    let only = std::env::var("BENCH_BACKENDS").unwrap_or_default();
    if only != "postgres" {
        backends.push(Backend::Sqlite);
    }
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) if !url.is_empty() && only != "sqlite" => backends.push(Backend::Postgres(url)),
        Ok(url) if !url.is_empty() => {}
        _ => eprintln!("BENCH_DATABASE_URL is not set: PostgreSQL rows are skipped"),
    }
    // `bench [promotions|latency|throughput|unary|auto|verification|rest|limits|ranges|memory|stream]...` runs only those
    // sections; `promotions` is `latency` and `throughput`. `bench scale` runs only when named.
    let chosen: Vec<String> = std::env::args().skip(1).collect();
    let runs = |section: &str| chosen.is_empty() || chosen.iter().any(|c| c == section);
    println!("| measurement | backend | result |");
    println!("|---|---|---|");
    for backend in &backends {
        if runs("promotions") || runs("latency") {
            latency_rows(backend).await?;
        }
        if runs("promotions") || runs("throughput") {
            throughput_row(backend).await?;
        }
        if runs("unary") {
            unary_rows(backend).await?;
        }
        if runs("auto") {
            auto::auto_promotion_rows(backend).await?;
        }
        if runs("verification") {
            verification::verification_rows(backend).await?;
        }
    }
    if runs("rest") {
        for backend in &backends {
            for row in rest::rest_table(backend).await? {
                println!(
                    "| REST {}, wrk -t2 -c32 | {} | {:.0} req/s; bare axum handler around it {:.0} req/s; **{:.0}%** of the ceiling |",
                    row.endpoint,
                    backend.name(),
                    row.rate,
                    row.ceiling,
                    row.rate / row.ceiling * 100.0
                );
            }
        }
    }
    if runs("limits") {
        for backend in &backends {
            limits::limiter_rows(backend).await?;
        }
    }
    if runs("ranges") {
        for backend in &backends {
            ranges::range_rows(backend).await?;
        }
    }
    if runs("memory") {
        memory_rows().await?;
    }
    if runs("stream") || runs("board") {
        for backend in &backends {
            stream::stream_rows(backend).await?;
        }
        stream::board_rows().await?;
    }
    // Only when named: it loads a large history and takes several minutes.
    if chosen.iter().any(|c| c == "scale") {
        match backends.iter().find_map(|backend| match backend {
            Backend::Postgres(admin_url) => Some(admin_url),
            Backend::Sqlite => None,
        }) {
            Some(admin_url) => scale::scale_rows(admin_url).await?,
            None => eprintln!("bench scale needs BENCH_DATABASE_URL: skipped"),
        }
    }
    for backend in &backends {
        if let Backend::Postgres(admin_url) = backend {
            drop_created_databases(admin_url).await?;
        }
    }
    Ok(())
}

async fn latency_rows(backend: &Backend) -> BenchResult<()> {
    for targets in [1, 10, 100] {
        let latency = promotion_latency(backend, targets).await?;
        println!(
            "| promotion latency, create → finished, {targets} target(s) (median of 3) | {} | {} |",
            backend.name(),
            ms(latency)
        );
    }
    Ok(())
}

/// Rounds the throughput row measures: `BENCH_THROUGHPUT_ROUNDS`, 3 by default. One round
/// lasts about a second, which the machines' noise swings by a fifth.
fn throughput_rounds() -> usize {
    std::env::var("BENCH_THROUGHPUT_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .filter(|rounds| *rounds > 0)
        .unwrap_or(3)
}

async fn throughput_row(backend: &Backend) -> BenchResult<()> {
    let throughput = promotion_throughput(backend, 200).await?;
    println!(
        "| throughput, {} round(s) of 200 concurrent one-target promotions over 20 apps, after a first round of 200 | {} | {throughput:.0} promotions/s |",
        throughput_rounds(),
        backend.name()
    );
    Ok(())
}

async fn unary_rows(backend: &Backend) -> BenchResult<()> {
    let rows = unary_table(backend).await?;
    let ceiling = rows.first().map(|(_, row)| row.per_second).unwrap_or(1.0);
    for (name, result) in rows {
        println!(
            "| {name}, 16 concurrent clients × 400 | {} | {:.0} req/s ({:.0}% of the empty handler); p50 {}, p90 {}, p99 {} |",
            backend.name(),
            result.per_second,
            result.per_second / ceiling * 100.0,
            ms(result.p50),
            ms(result.p90),
            ms(result.p99)
        );
    }
    Ok(())
}

async fn memory_rows() -> BenchResult<()> {
    for pipelines in [0, 10_000] {
        let (rss, up) = memory::idle_rss(pipelines).await?;
        println!(
            "| server RSS, idle, {pipelines} pipelines × 4 coupled apps loaded (serving {} after start) | SQLite | {:.1} MiB |",
            ms(up),
            rss as f64 / 1024.0
        );
    }
    let (before, with_streams) = watch_memory(10_000).await?;
    println!(
        "| server RSS, idle → with 10,000 open WatchPromotion streams | SQLite | {:.1} MiB → {:.1} MiB ({:.1} KiB per stream) |",
        before as f64 / 1024.0,
        with_streams as f64 / 1024.0,
        (with_streams.saturating_sub(before)) as f64 / 10_000.0
    );
    Ok(())
}
