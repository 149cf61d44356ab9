//! Retention: entries older than the configured period are deleted in the background, in
//! bounded batches so that no statement holds locks for long, and by one process at a time
//! when several share PostgreSQL.

use std::time::Duration;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::watch;

use crate::{error::Result, store};

/// The most entries one statement deletes.
const BATCH: u64 = 1000;
/// How often the log is trimmed after the first time, at start-up.
const EVERY: Duration = Duration::from_secs(3600);
/// The pause between two batches, so that trimming a large backlog leaves room for
/// requests.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// Trims the log at start-up and then hourly, until `stopped` turns true.
pub async fn keep_trimmed(
    db: DatabaseConnection,
    retention: chrono::Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        match trim(&db, retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted audit log entries past retention"),
            Err(error) => tracing::warn!(%error, "cannot trim the audit log; trying again later"),
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stopped.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// Deletes every entry older than `retention`, batch by batch, and says how many. It stops
/// early when another process is trimming.
pub async fn trim(db: &DatabaseConnection, retention: chrono::Duration) -> Result<u64> {
    let cutoff = store::now() - retention;
    let mut deleted = 0;
    loop {
        let txn = db.begin().await?;
        if !store::audit::try_lock_trimming(&txn).await? {
            return Ok(deleted);
        }
        let batch = store::audit::delete_audit_events_before(&txn, cutoff, BATCH).await?;
        txn.commit().await?;
        deleted += batch;
        if batch < BATCH {
            return Ok(deleted);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}
