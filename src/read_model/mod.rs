//! The read model: the hot reads (pipelines, apps, couplings with their current release,
//! a pipeline's status contexts, promotions and their targets) answered from memory.
//!
//! **What it holds.** Every live pipeline and app, loaded at start-up ([`state::Catalog`]),
//! and the promotions read recently ([`VersionedCache`]). History (old releases, events)
//! stays in the database.
//!
//! **How it stays current.** Every write says which pipelines or apps it changed, once it
//! has committed ([`ReadModel::changed`]); every committed promotion event names its
//! promotion and app. The keys are marked stale at once, so the next read on this process
//! reloads them first: a write is seen by the next read (read-your-writes). Other
//! processes learn the keys through PostgreSQL `NOTIFY`, within milliseconds. A periodic
//! full resync bounds the harm of a notification lost between a commit and its `NOTIFY`,
//! and losing the listening connection (a database outage) forces a full reload.
//!
//! **What it is not for.** Gates, the per-app queue, idempotency and every check inside a
//! write read authoritative rows in their transactions. A read the model cannot answer
//! (not loaded, still stale, or not found) goes to the database, so a resource created on
//! another process a moment ago is never a 404.

mod cache;
mod load;
mod state;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use uuid::Uuid;

pub use cache::VersionedCache;
pub use state::{AppEntry, Catalog, CouplingRow};

use crate::{
    error::Result,
    views::{PromotionEventView, PromotionView, TargetView},
};

/// The PostgreSQL channel that carries "these pipelines or apps changed" between
/// processes. Payload: `pipeline <uuid>` or `app <uuid>`.
pub const CATALOG_CHANNEL: &str = "pipelines_catalog";

/// Something a write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Pipeline(Uuid),
    /// An app, its coupling, its releases or their statuses.
    App(Uuid),
}

impl Key {
    fn payload(self) -> String {
        match self {
            Key::Pipeline(id) => format!("pipeline {id}"),
            Key::App(id) => format!("app {id}"),
        }
    }

    fn parse(payload: &str) -> Option<Key> {
        let (kind, id) = payload.split_once(' ')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "pipeline" => Some(Key::Pipeline(id)),
            "app" => Some(Key::App(id)),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Freshness {
    /// Counts invalidations; each stale key remembers the count when it went stale.
    generation: u64,
    stale: HashMap<Key, u64>,
    /// Everything must be reloaded before memory is trusted (start-up, a lost listener).
    everything_stale: bool,
    /// The generation at which memory was last distrusted as a whole: a full reload that
    /// began before it cannot restore trust.
    distrusted_at: u64,
    /// While a full reload builds its catalog, the keys changed since it began: it may
    /// have read them before their change committed, so they are stale again once it
    /// swaps its catalog in.
    changed_during_reload: Option<HashSet<Key>>,
}

impl Freshness {
    fn mark_stale(&mut self, key: Key) {
        self.generation += 1;
        self.stale.insert(key, self.generation);
        if let Some(changed) = &mut self.changed_during_reload {
            changed.insert(key);
        }
    }
}

#[derive(Default)]
struct Inner {
    catalog: Catalog,
    freshness: Freshness,
}

/// The process's read model. Cheap to share: clone the `Arc`.
pub struct ReadModel {
    db: DatabaseConnection,
    inner: RwLock<Inner>,
    /// One refresh of stale keys at a time; readers that need one wait for it. A refresh
    /// loads a few entries, so the wait is short, and a full reload never holds it.
    refreshing: tokio::sync::Mutex<()>,
    /// One full reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Wakes [`ReadModel::keep_in_sync`] for a full reload.
    reload_wanted: tokio::sync::Notify,
    /// Full reloads completed since start.
    full_reloads: std::sync::atomic::AtomicU64,
    /// Counts the changes that may have changed a pipeline's freezes: a pipeline's key
    /// marked stale, memory distrusted, or everything reloaded.
    pipeline_changes: std::sync::atomic::AtomicU64,
    pub promotions: VersionedCache<PromotionView>,
    pub targets: VersionedCache<Vec<TargetView>>,
    /// Rung by every committed change this process hears of, so that the pipeline events it
    /// queued are numbered (see [`crate::pipeline_events::sequencer`]).
    stream_bell: tokio::sync::Notify,
}

impl ReadModel {
    /// An empty model that answers nothing until [`ReadModel::reload_everything`] ran.
    pub fn new(db: DatabaseConnection) -> Arc<Self> {
        Arc::new(Self {
            db,
            inner: RwLock::new(Inner {
                catalog: Catalog::default(),
                freshness: Freshness {
                    everything_stale: true,
                    ..Freshness::default()
                },
            }),
            refreshing: tokio::sync::Mutex::new(()),
            reloading: tokio::sync::Mutex::new(()),
            reload_wanted: tokio::sync::Notify::new(),
            full_reloads: std::sync::atomic::AtomicU64::new(0),
            pipeline_changes: std::sync::atomic::AtomicU64::new(0),
            promotions: VersionedCache::new(),
            targets: VersionedCache::new(),
            stream_bell: tokio::sync::Notify::new(),
        })
    }

    fn read_inner(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // Writers replace whole values under the lock, so a poisoned lock holds valid data.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_inner(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers from memory: `None` when memory cannot be trusted right now or does not
    /// know the answer, and the caller reads the database instead.
    pub async fn read<T>(&self, answer: impl FnOnce(&Catalog) -> Option<T>) -> Option<T> {
        {
            let inner = self.read_inner();
            if inner.freshness.stale.is_empty() && !inner.freshness.everything_stale {
                return answer(&inner.catalog);
            }
        }
        match self.refresh().await {
            Ok(true) => answer(&self.read_inner().catalog),
            Ok(false) => None,
            Err(error) => {
                tracing::debug!(%error, "read model refresh failed; reading the database");
                None
            }
        }
    }

    /// Reloads the stale keys. `false` when memory still cannot be trusted: everything
    /// is stale (a full reload is under way elsewhere) or writes keep coming.
    async fn refresh(&self) -> Result<bool> {
        let _one_at_a_time = self.refreshing.lock().await;
        for _ in 0..3 {
            let (generation, pipeline_ids, app_ids) = {
                let inner = self.read_inner();
                let freshness = &inner.freshness;
                if freshness.everything_stale {
                    return Ok(false);
                }
                if freshness.stale.is_empty() {
                    return Ok(true);
                }
                let mut pipeline_ids = Vec::new();
                let mut app_ids = Vec::new();
                for key in freshness.stale.keys() {
                    match key {
                        Key::Pipeline(id) => pipeline_ids.push(*id),
                        Key::App(id) => app_ids.push(*id),
                    }
                }
                (freshness.generation, pipeline_ids, app_ids)
            };
            let loaded = load::load(&self.db, &pipeline_ids, &app_ids).await?;
            let mut inner = self.write_inner();
            inner.catalog.apply(&pipeline_ids, &app_ids, loaded);
            // A key invalidated after the load began may have been read before its write
            // committed: it stays stale for the next round.
            inner.freshness.stale.retain(|_, since| *since > generation);
        }
        Ok(self.read_inner().freshness.stale.is_empty())
    }

    /// Loads every live pipeline and app, replacing what memory holds. The new catalog is
    /// built off to the side while reads and refreshes of single keys go on against the
    /// old one, then swapped in at once; keys changed while it was built stay stale.
    pub async fn reload_everything(&self) -> Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let began = std::time::Instant::now();
        let started = self.begin_full_reload();
        let built = load::load_everything(&self.db).await;
        self.finish_full_reload(started, built)?;
        self.full_reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.pipeline_changed();
        crate::metrics::record_read_model_reload(began.elapsed());
        Ok(())
    }

    /// Starts recording the keys that change while a full reload builds; answers the
    /// generation it began at.
    fn begin_full_reload(&self) -> u64 {
        let mut inner = self.write_inner();
        inner.freshness.changed_during_reload = Some(HashSet::new());
        inner.freshness.generation
    }

    /// Swaps in the catalog a full reload built from `started` on, or keeps the old one
    /// when the build failed.
    fn finish_full_reload(&self, started: u64, built: Result<Catalog>) -> Result<()> {
        let mut inner = self.write_inner();
        let freshness = &mut inner.freshness;
        let changed = freshness.changed_during_reload.take().unwrap_or_default();
        let catalog = built?;
        // Keys changed before the build began were read after their change committed.
        freshness.stale.retain(|_, since| *since > started);
        for key in changed {
            freshness.mark_stale(key);
        }
        if freshness.distrusted_at <= started {
            freshness.everything_stale = false;
        }
        let replaced = std::mem::replace(&mut inner.catalog, catalog);
        drop(inner);
        // Freed outside the lock: thousands of entries take a while to drop.
        drop(replaced);
        Ok(())
    }

    /// How many full reloads (at start-up, by the periodic resync, or after a lost
    /// notification) have completed in this process.
    pub fn full_reloads(&self) -> u64 {
        self.full_reloads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tells the pipeline event sequencer that changes committed, here or in another
    /// process.
    pub fn pipeline_events_committed(&self) {
        self.stream_bell.notify_one();
    }

    /// Waits until a change committed since the last wait returned.
    pub async fn pipeline_events_committed_rung(&self) {
        self.stream_bell.notified().await;
    }

    /// Marks keys stale in this process. Call after the change committed.
    pub fn invalidate(&self, keys: impl IntoIterator<Item = Key>) {
        self.pipeline_events_committed();
        let mut inner = self.write_inner();
        for key in keys {
            inner.freshness.mark_stale(key);
            if matches!(key, Key::Pipeline(_)) {
                self.pipeline_changed();
            }
        }
    }

    /// How many changes may have touched a pipeline's freezes so far: whoever keeps its
    /// own copy of them reads them again when this moved.
    pub fn pipeline_changes(&self) -> u64 {
        self.pipeline_changes
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn pipeline_changed(&self) {
        self.pipeline_changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Stops trusting memory until the next full reload.
    pub fn invalidate_everything(&self) {
        self.pipeline_events_committed();
        self.pipeline_changed();
        let mut inner = self.write_inner();
        inner.freshness.generation += 1;
        inner.freshness.everything_stale = true;
        inner.freshness.distrusted_at = inner.freshness.generation;
        drop(inner);
        self.reload_wanted.notify_one();
        self.promotions.clear();
        self.targets.clear();
    }

    /// Marks what committed events changed: their promotions, and the apps whose current
    /// release an event changed (see
    /// [`crate::domain::promotion::EventKind::changes_current_release`]). No other
    /// promotion event changes what memory holds of an app.
    pub fn events_committed<'a>(&self, events: impl IntoIterator<Item = &'a PromotionEventView>) {
        let mut apps = Vec::new();
        for event in events {
            self.promotion_changed(event.promotion_id);
            if let (true, Some(app)) = (event.kind.changes_current_release(), &event.app) {
                apps.push(Key::App(app.id));
            }
        }
        if !apps.is_empty() {
            self.invalidate(apps);
        }
    }

    /// Drops what is kept of one promotion.
    pub fn promotion_changed(&self, promotion_id: Uuid) {
        self.pipeline_events_committed();
        self.promotions.invalidate(promotion_id);
        self.targets.invalidate(promotion_id);
    }

    /// Records committed changes: stale here at once, and announced to the other
    /// processes on PostgreSQL. A failed announcement is logged, not returned: the write
    /// committed, and the periodic resync repairs the other processes.
    pub async fn changed(&self, keys: &[Key]) {
        self.invalidate(keys.iter().copied());
        if self.db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        for key in keys {
            if let Err(error) =
                crate::store::notify(&self.db, CATALOG_CHANNEL, &key.payload()).await
            {
                tracing::warn!(%error, ?key, "cannot announce a change to other processes");
            }
        }
    }

    /// Applies a change announced by another process.
    pub fn notified(&self, payload: &str) {
        match Key::parse(payload) {
            Some(key) => self.invalidate([key]),
            None => tracing::warn!(payload, "unreadable change notification"),
        }
    }

    /// How much the model holds: pipelines, apps, couplings.
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.read_inner();
        let catalog = &inner.catalog;
        (
            catalog.pipeline_count(),
            catalog.app_count(),
            catalog.coupling_count(),
        )
    }

    /// Loads everything at once, then again every `period` and after
    /// [`invalidate_everything`]. Until the first load completes, reads go to the
    /// database. Runs until `stop` changes.
    ///
    /// [`invalidate_everything`]: ReadModel::invalidate_everything
    pub async fn keep_in_sync(
        self: Arc<Self>,
        period: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once: the load below counts for it.
        ticker.tick().await;
        loop {
            while let Err(error) = self.reload_everything().await {
                tracing::warn!(%error, "cannot reload the read model; reads go to the database");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
            }
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.reload_wanted.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_notifications_round_trip() {
        let id = Uuid::new_v4();
        for key in [Key::Pipeline(id), Key::App(id)] {
            assert_eq!(Key::parse(&key.payload()), Some(key));
        }
        for bad in ["", "app", "app x", "user 3f1c"] {
            assert_eq!(Key::parse(bad), None, "{bad}");
        }
    }

    fn model() -> Arc<ReadModel> {
        ReadModel::new(DatabaseConnection::default())
    }

    #[test]
    fn a_key_changed_while_a_reload_builds_is_stale_after_the_swap() {
        let model = model();
        let started = model.begin_full_reload();
        let changed = Key::App(Uuid::new_v4());
        model.invalidate([changed]);
        // A refresh during the build reloads the key into the old catalog.
        model.write_inner().freshness.stale.clear();
        model
            .finish_full_reload(started, Ok(Catalog::default()))
            .expect("swap");
        let inner = model.read_inner();
        assert!(!inner.freshness.everything_stale, "memory is trusted");
        assert!(inner.freshness.stale.contains_key(&changed));
        assert!(inner.freshness.changed_during_reload.is_none());
    }

    #[test]
    fn keys_changed_before_the_reload_began_are_fresh_after_it() {
        let model = model();
        let earlier = Key::Pipeline(Uuid::new_v4());
        model.invalidate([earlier]);
        let started = model.begin_full_reload();
        model
            .finish_full_reload(started, Ok(Catalog::default()))
            .expect("swap");
        assert!(model.read_inner().freshness.stale.is_empty());
    }

    #[test]
    fn memory_distrusted_during_a_reload_stays_distrusted() {
        let model = model();
        let first = model.begin_full_reload();
        model
            .finish_full_reload(first, Ok(Catalog::default()))
            .expect("swap");
        let started = model.begin_full_reload();
        model.invalidate_everything();
        model
            .finish_full_reload(started, Ok(Catalog::default()))
            .expect("swap");
        assert!(model.read_inner().freshness.everything_stale);
    }

    #[test]
    fn a_failed_build_leaves_memory_as_it_was() {
        let model = model();
        let started = model.begin_full_reload();
        let changed = Key::App(Uuid::new_v4());
        model.invalidate([changed]);
        let failed = model.finish_full_reload(
            started,
            Err(crate::error::Error::Internal("database gone".into())),
        );
        assert!(failed.is_err());
        let inner = model.read_inner();
        assert!(
            inner.freshness.everything_stale,
            "never loaded, never trusted"
        );
        assert!(inner.freshness.stale.contains_key(&changed));
        assert!(inner.freshness.changed_during_reload.is_none());
    }
}
