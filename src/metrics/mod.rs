//! Prometheus metrics: what the process counts as it works, and the gauges read from the
//! database when `/metrics` is scraped. Names follow the Prometheus conventions: base
//! units, `_total` for counters, `_seconds` for durations. Counters are per process; the
//! database gauges are the same on every replica.

use std::{sync::OnceLock, time::Duration};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{ConnectionTrait, DbBackend};

use crate::{domain::promotion::EventKind, store::Pools, views::PromotionEventView};

mod requests;

pub use requests::{method_label, record_grpc, record_http};

/// Latency buckets, in seconds, from a cached read to a slow webhook.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often the recorder folds recorded histogram samples into its buckets. Until it
/// does, every sample is held in memory, so this bounds memory whether or not anything
/// scrapes `/metrics`.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process-wide recorder once and returns its handle. `None` when another
/// recorder was installed first (the series are then not collected here).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    keep_folding_samples(handle.clone());
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics are not collected");
                    None
                }
            }
        })
        .as_ref()
}

/// Runs the recorder's upkeep on a timer of its own, on a thread rather than a task so
/// that it does not depend on which runtime first installed the recorder.
fn keep_folding_samples(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "the metrics upkeep did not start: only scrapes fold samples");
    }
}

fn describe() {
    describe_counter!(
        "pipelines_grpc_requests_total",
        "gRPC calls answered, by method and status code"
    );
    describe_histogram!(
        "pipelines_grpc_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a gRPC call (to the end of its headers for streams), by method"
    );
    describe_counter!(
        "pipelines_http_requests_total",
        "REST requests answered, by route template, method and HTTP status"
    );
    describe_histogram!(
        "pipelines_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a REST request, by route template and method"
    );
    describe_counter!(
        "pipelines_promotions_created_total",
        "Promotions stored by this process, by trigger (request or auto)"
    );
    describe_counter!(
        "pipelines_promotions_finished_total",
        "Promotions that ended on this process, by outcome"
    );
    describe_counter!(
        "pipelines_targets_finished_total",
        "Promotion targets that ended on this process, by state"
    );
    describe_gauge!(
        "pipelines_read_model_last_reload_seconds",
        metrics::Unit::Seconds,
        "How long the read model's last full reload took to build"
    );
    describe_gauge!(
        "pipelines_targets",
        "Unfinished promotion targets in the database, by state"
    );
    describe_gauge!(
        "pipelines_queue_depth",
        "Pending targets waiting behind another promotion or rollback on their app"
    );
    describe_gauge!(
        "pipelines_frozen_stages",
        "Pipelines whose stage is frozen now, by stage"
    );
    describe_gauge!(
        "pipelines_promotions_awaiting_approval",
        "Promotions in the database waiting for approvals"
    );
    describe_counter!(
        "pipelines_verifications_total",
        "Verifications after deploy decided by this process, by outcome (passed or failed)"
    );
    describe_counter!(
        "pipelines_rollbacks_total",
        "Automatic rollbacks started by this process, by cause"
    );
    describe_counter!(
        "pipelines_deploy_attempts_total",
        "Deployments started by this process, by deployer"
    );
    describe_counter!(
        "pipelines_deploy_retries_total",
        "Webhook deliveries retried after a network error or a 5xx answer"
    );
    describe_counter!(
        "pipelines_deploy_failures_total",
        "Deployments that failed, by deployer"
    );
    describe_histogram!(
        "pipelines_webhook_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time of one webhook delivery attempt, to its answer or its error"
    );
    describe_gauge!(
        "pipelines_db_pool_connections",
        "Database connections of this process's pools, by pool (requests, or the engine's on PostgreSQL) and state (in_use or idle)"
    );
    describe_gauge!(
        "pipelines_db_pool_max_connections",
        "The most connections each pool of this process opens"
    );
    describe_counter!(
        "pipelines_read_model_reloads_total",
        "Full reloads of the in-memory read model: the periodic resync, or after a lost notification"
    );
    describe_counter!(
        "pipelines_log_lines_dropped_total",
        "Log lines dropped because the log destination fell 16,384 lines behind"
    );
    describe_counter!(
        "pipelines_rate_limited_total",
        "Calls refused because their token's bucket was empty, by kind (read or write)"
    );
    describe_counter!(
        "pipelines_lease_renewals_total",
        "Leases on running work renewed by this process"
    );
    describe_counter!(
        "pipelines_leases_lost_total",
        "Leases on running work this process found taken or expired when renewing"
    );
}

/// A promotion stored: at a client's `request`, or by the service itself (`auto`).
pub fn record_promotion_created(trigger: &'static str) {
    counter!("pipelines_promotions_created_total", "trigger" => trigger).increment(1);
}

/// Counts what committed events report: promotions finished, targets ended.
/// Called for the events this process committed, so replicas do not count each other's.
pub fn record_committed(events: &[PromotionEventView]) {
    for event in events {
        match event.kind {
            EventKind::PromotionFinished => {
                counter!(
                    "pipelines_promotions_finished_total",
                    "outcome" => event.promotion_status.as_str()
                )
                .increment(1);
            }
            EventKind::TargetSucceeded | EventKind::TargetFailed | EventKind::TargetCanceled => {
                if let Some(state) = event.target_status {
                    counter!("pipelines_targets_finished_total", "state" => state.as_str())
                        .increment(1);
                }
            }
            _ => {}
        }
    }
}

/// A verification was decided: `passed` or `failed`.
pub fn record_verification(outcome: &'static str) {
    counter!("pipelines_verifications_total", "outcome" => outcome).increment(1);
}

/// An automatic rollback started, for `cause` (`verification_failed`).
pub fn record_rollback(cause: &'static str) {
    counter!("pipelines_rollbacks_total", "cause" => cause).increment(1);
}

pub fn record_deploy_attempt(deployer: &'static str) {
    counter!("pipelines_deploy_attempts_total", "deployer" => deployer).increment(1);
}

pub fn record_deploy_failure(deployer: &'static str) {
    counter!("pipelines_deploy_failures_total", "deployer" => deployer).increment(1);
}

pub fn record_webhook_attempt(elapsed: Duration, retried: bool) {
    histogram!("pipelines_webhook_request_duration_seconds").record(elapsed.as_secs_f64());
    if retried {
        counter!("pipelines_deploy_retries_total", "deployer" => "webhook").increment(1);
    }
}

/// A full reload of the read model completed.
pub fn record_read_model_reload(took: Duration) {
    counter!("pipelines_read_model_reloads_total").increment(1);
    gauge!("pipelines_read_model_last_reload_seconds").set(took.as_secs_f64());
}

/// A call refused for its token's rate limit, by the bucket it drew on (`read`, `write`).
pub fn record_rate_limited(kind: &'static str) {
    counter!("pipelines_rate_limited_total", "kind" => kind).increment(1);
}

pub fn record_lease_renewal(kept: bool) {
    if kept {
        counter!("pipelines_lease_renewals_total").increment(1);
    } else {
        counter!("pipelines_leases_lost_total").increment(1);
    }
}

/// Reads the gauges that live in the database and the pools' states. A database that
/// does not answer leaves the gauges as they were; the scrape still succeeds.
async fn refresh_gauges(pools: &Pools) {
    for (name, db) in pools.named() {
        let (size, idle, max) = match db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            _ => {
                let pool = db.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
        };
        let in_use = (size as usize).saturating_sub(idle);
        gauge!("pipelines_db_pool_connections", "pool" => name, "state" => "in_use")
            .set(in_use as f64);
        gauge!("pipelines_db_pool_connections", "pool" => name, "state" => "idle").set(idle as f64);
        gauge!("pipelines_db_pool_max_connections", "pool" => name).set(max as f64);
    }
    let db = &pools.requests;

    let read = tokio::time::timeout(
        Duration::from_secs(2),
        crate::store::targets::work_counts(db),
    )
    .await;
    let Ok(Ok(counts)) = read else {
        tracing::debug!("metrics: the database gauges were not refreshed");
        return;
    };
    let count = |value: i64| value as f64;
    gauge!("pipelines_targets", "state" => "pending").set(count(counts.pending));
    gauge!("pipelines_targets", "state" => "running").set(count(counts.running));
    gauge!("pipelines_targets", "state" => "verifying").set(count(counts.verifying));
    gauge!("pipelines_queue_depth").set(count(counts.queued));
    gauge!("pipelines_promotions_awaiting_approval").set(count(counts.awaiting_approval));
    let now = crate::store::now();
    let freezes = tokio::time::timeout(
        Duration::from_secs(2),
        crate::store::freezes::live_freezes(db, None, now),
    )
    .await;
    let Ok(Ok(rows)) = freezes else {
        tracing::debug!("metrics: the frozen stages were not refreshed");
        return;
    };
    let freezes: Vec<_> = rows
        .iter()
        .filter_map(|row| crate::views::freeze_of_row(row).ok())
        .collect();
    let frozen = crate::domain::freeze::FreezeState::of(&freezes, now).frozen;
    for stage in crate::domain::stage::Stage::ALL {
        let pipelines = frozen
            .iter()
            .filter(|(_, held)| held.stage == stage)
            .count();
        gauge!("pipelines_frozen_stages", "stage" => stage.as_str()).set(pipelines as f64);
    }
}
/// The text exposition of every series, after refreshing the database gauges.
///
/// The recorder, and so every gauge, is one per process. Scrapes are serialized so that
/// each renders the gauges it refreshed, even when several servers share a process (as
/// the tests' servers do) and scrape at once.
pub async fn render(pools: &Pools) -> Option<String> {
    static SCRAPING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let handle = handle()?;
    let _one_at_a_time = SCRAPING.lock().await;
    refresh_gauges(pools).await;
    handle.run_upkeep();
    Some(handle.render())
}

#[cfg(test)]
mod tests {
    use super::requests::grpc_method_label;

    #[test]
    fn only_methods_the_server_serves_are_labelled_by_name() {
        for served in [
            "/pipelines.v1.PipelineService/GetPipeline",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            assert_eq!(grpc_method_label(served), served);
        }
        for made_up in [
            "/made.up.Service/Anything",
            "/pipelines.v1.PipelineService/NoSuchMethod",
            "/pipelines.v1.PipelineService/",
        ] {
            assert_eq!(grpc_method_label(made_up), "unknown");
        }
    }
}
