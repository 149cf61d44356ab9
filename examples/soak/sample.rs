//! What the soak samples from the server process and the database, and its verdict.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::{load::Verdict, SoakResult};

/// The most the resident memory may grow past its value after warm-up.
const RSS_GROWTH_ALLOWED: f64 = 0.10;
/// Slack for counts that move with the moment's work: a connection being opened, a
/// blocking thread that has not yet been reaped.
const FDS_SLACK: u64 = 16;
const THREADS_SLACK: u64 = 4;
const CONNECTIONS_SLACK: u64 = 4;

pub struct Sample {
    pub after: Duration,
    pub rss_kib: u64,
    pub open_fds: u64,
    pub threads: u64,
    pub connections: u64,
}

fn status_field(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub async fn take(
    pid: u32,
    admin: &DatabaseConnection,
    database: &str,
    after: Duration,
) -> SoakResult<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    let row = admin
        .query_one(Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT count(*) AS connections FROM pg_stat_activity WHERE datname = $1",
            [database.into()],
        ))
        .await?
        .ok_or("pg_stat_activity answered nothing")?;
    let connections: i64 = row.try_get("", "connections")?;
    Ok(Sample {
        after,
        rss_kib: status_field(&status, "VmRSS:"),
        open_fds,
        threads: status_field(&status, "Threads:"),
        connections: connections.max(0) as u64,
    })
}

/// Prints each goal with its figures, and answers whether all were met.
pub fn judge(samples: &[Sample], warm_up: Duration, verdict: &Verdict, server_errors: u64) -> bool {
    let Some(warm) = samples.iter().find(|sample| sample.after >= warm_up) else {
        println!("\nno sample after the warm-up: the run was too short to judge");
        return false;
    };
    let after_warm_up: Vec<&Sample> = samples.iter().filter(|s| s.after >= warm.after).collect();
    let most =
        |field: fn(&Sample) -> u64| after_warm_up.iter().map(|s| field(s)).max().unwrap_or(0);
    let last = after_warm_up.last().copied().unwrap_or(warm);
    let rss_growth = last.rss_kib as f64 / warm.rss_kib.max(1) as f64 - 1.0;
    let peak_growth = most(|s| s.rss_kib) as f64 / warm.rss_kib.max(1) as f64 - 1.0;
    let goals = [
        (
            format!(
                "resident memory within 10% of its value after warm-up ({:.1} MiB at {:.0} s): {:+.1}% at the end, {:+.1}% at the most",
                warm.rss_kib as f64 / 1024.0,
                warm.after.as_secs_f64(),
                rss_growth * 100.0,
                peak_growth * 100.0
            ),
            peak_growth <= RSS_GROWTH_ALLOWED,
        ),
        (
            format!("open fds flat: {} after warm-up, {} at the most", warm.open_fds, most(|s| s.open_fds)),
            most(|s| s.open_fds) <= warm.open_fds + FDS_SLACK,
        ),
        (
            format!("threads flat: {} after warm-up, {} at the most", warm.threads, most(|s| s.threads)),
            most(|s| s.threads) <= warm.threads + THREADS_SLACK,
        ),
        (
            format!(
                "database connections flat: {} after warm-up, {} at the most",
                warm.connections,
                most(|s| s.connections)
            ),
            most(|s| s.connections) <= warm.connections + CONNECTIONS_SLACK,
        ),
        (format!("no 5xx: {server_errors}"), server_errors == 0),
        (
            format!(
                "every promotion final: {} of {} unfinished",
                verdict.unfinished, verdict.promotions
            ),
            verdict.unfinished == 0 && verdict.promotions > 0,
        ),
        (
            format!(
                "one release per target: {} targets with a release, {} releases made by promotions, {} shared",
                verdict.targets_with_release,
                verdict.releases_made_by_promotions,
                verdict.shared_releases
            ),
            verdict.shared_releases == 0
                && verdict.targets_with_release == verdict.releases_made_by_promotions,
        ),
        (
            format!("every watch ran to its end: {} broke", verdict.watches_broken),
            verdict.watches_broken == 0,
        ),
    ];
    println!();
    let mut met = true;
    for (goal, kept) in goals {
        println!("- {} {goal}", if kept { "met:" } else { "MISSED:" });
        met &= kept;
    }
    met
}
