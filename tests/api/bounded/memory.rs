//! A real server process under a steady load on one route, with nothing scraping
//! `/metrics`: after warm-up its resident memory stays flat.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crate::{helpers::fresh_database, processes::ServerProcess};

const WARM_UP: Duration = Duration::from_secs(5);
const MEASURED: Duration = Duration::from_secs(20);
const CONNECTIONS: usize = 16;
/// The contract allows "a few MiB" after warm-up under production load. This load is a
/// debug build's few thousand requests a second, under which a recorder holding every
/// sample grew about 2 MiB (18 bytes a request) and one folding them grew about 0.2 MiB.
const ALLOWED_GROWTH_KIB: u64 = 1024;

/// The resident set of a process, in KiB, from `/proc`.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in the process status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resident_memory_stays_flat_under_load_when_nothing_scrapes_metrics() {
    let database = fresh_database().await;
    let server = ServerProcess::start_local(&database.url, &[]).await;
    let base = format!("http://{}", server.address);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let answered = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + WARM_UP + MEASURED;
    let load: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let client = client.clone();
            let url = format!("{base}/pipeline-stages");
            let answered = answered.clone();
            tokio::spawn(async move {
                while Instant::now() < stop_at {
                    let response = client.get(&url).send().await.expect("request");
                    assert_eq!(response.status(), 200);
                    response.bytes().await.expect("body");
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    tokio::time::sleep(WARM_UP).await;
    let warm = resident_kib(server.pid());
    let answered_when_warm = answered.load(Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    let end = resident_kib(server.pid());
    let measured_requests = answered.load(Ordering::Relaxed) - answered_when_warm;
    let growth = end.saturating_sub(warm);
    assert!(
        measured_requests > 20_000,
        "the load is too light to show a leak: {measured_requests} requests"
    );
    assert!(
        growth <= ALLOWED_GROWTH_KIB,
        "RSS grew from {warm} KiB to {end} KiB ({growth} KiB, {:.1} bytes a request) \
         over {measured_requests} requests with nothing scraping /metrics",
        growth as f64 * 1024.0 / measured_requests as f64
    );
}
