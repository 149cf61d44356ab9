//! A soak: the server under a mixed load for a long time on PostgreSQL, with nothing
//! scraping `/metrics`, checking that it stays bounded and correct. Not a test: it prints
//! a table and exits 1 when a goal is missed.
//!
//!     cargo build --release --bin pipelines --example soak
//!     SOAK_DATABASE_URL=postgres://pipelines:pipelines@127.0.0.1:5432/pipelines \
//!         target/release/examples/soak 600
//!
//! The argument is the run's length in seconds (600 by default). The first fifth, at
//! least 20 s, is warm-up. The load, all at once:
//! - promotions from `shop-dev` to three staging apps, one every 250 ms, each after a new
//!   release and its required status; every fourth is canceled at once; each is watched to
//!   its end over gRPC;
//! - four readers on REST (the pipeline, its couplings, a page of promotions, a page of
//!   releases);
//! - every 10 s a burst of 40 concurrent release creates on one app;
//! - the webhook deployer against a receiver in this process that answers after 50 ms.
//!
//! Every 15 s it prints the server's resident memory, open file descriptors, threads and
//! database connections. Goals: memory within 10% of its value after warm-up, the other
//! counts flat, no 5xx, every promotion final, and one release per target.

mod load;
mod sample;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

type SoakResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SAMPLE_EVERY: Duration = Duration::from_secs(15);

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sibling_binary(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().unwrap_or_default();
    path.pop(); // examples/
    path.pop();
    path.push(name);
    path
}

#[tokio::main]
async fn main() -> SoakResult<()> {
    let seconds: u64 = match std::env::args().nth(1) {
        Some(text) => text
            .parse()
            .map_err(|_| "the argument is the run's length in seconds")?,
        None => 600,
    };
    let run_for = Duration::from_secs(seconds.max(30));
    let warm_up = (run_for / 5).max(Duration::from_secs(20));
    let admin_url = std::env::var("SOAK_DATABASE_URL")
        .map_err(|_| "SOAK_DATABASE_URL must name a PostgreSQL server")?;
    let name = format!("pipelines_soak_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url.as_str()).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let (base_url, _) = admin_url.rsplit_once('/').ok_or("bad SOAK_DATABASE_URL")?;
    let database_url = format!("{base_url}/{name}");

    let outcome = soak(&database_url, &name, &admin, run_for, warm_up).await;
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => std::process::exit(1),
        Err(error) => Err(error),
    }
}

async fn soak(
    database_url: &str,
    database_name: &str,
    admin: &DatabaseConnection,
    run_for: Duration,
    warm_up: Duration,
) -> SoakResult<bool> {
    let receiver = load::start_receiver(Duration::from_millis(50)).await?;
    let binary = sibling_binary("pipelines");
    let token = create_token(&binary, database_url)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(&binary)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--deployer",
            "webhook",
            "--webhook-url",
            &receiver,
            "--webhook-secret",
            "soak",
        ])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the server did not come up".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the server see the token before the load starts.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let load = Arc::new(load::Load::new(&server.base, &token).await?);
    load.set_up().await?;
    let deadline = Instant::now() + run_for;
    let workers = load::start(Arc::clone(&load), deadline);

    println!("| after | RSS | open fds | threads | database connections | requests | 5xx |");
    println!("|---|---|---|---|---|---|---|");
    let pid = server.child.id();
    let began = Instant::now();
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        let wait = SAMPLE_EVERY.min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(wait).await;
        let sample = sample::take(pid, admin, database_name, began.elapsed()).await?;
        println!(
            "| {:.0} s | {:.1} MiB | {} | {} | {} | {} | {} |",
            sample.after.as_secs_f64(),
            sample.rss_kib as f64 / 1024.0,
            sample.open_fds,
            sample.threads,
            sample.connections,
            load.requests(),
            load.server_errors()
        );
        samples.push(sample);
    }
    for worker in workers {
        worker.await??;
    }
    let verdict = load.finish().await?;
    Ok(sample::judge(
        &samples,
        warm_up,
        &verdict,
        load.server_errors(),
    ))
}

/// A token without limits of its own beyond what the load needs, made by the operator
/// command.
fn create_token(binary: &PathBuf, database_url: &str) -> SoakResult<String> {
    let made = Command::new(binary)
        .args([
            "tokens",
            "create",
            "--name",
            "soak",
            "--role",
            "admin",
            "--rate-limit-read",
            "0",
            "--rate-limit-write",
            "0",
        ])
        .env("DATABASE_URL", database_url)
        .output()?;
    if !made.status.success() {
        return Err(format!(
            "cannot create a token: {}",
            String::from_utf8_lossy(&made.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(made.stdout)?.trim().to_owned())
}
