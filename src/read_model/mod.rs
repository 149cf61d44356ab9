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

mod load;
mod state;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use uuid::Uuid;

pub use state::{AppEntry, Catalog, CouplingRow};

use crate::{
    error::Result,
    views::{PromotionEventView, PromotionView, TargetView},
};

/// The PostgreSQL channel that carries "these pipelines or apps changed" between
/// processes. Payload: `pipeline <uuid>` or `app <uuid>`.
pub const CATALOG_CHANNEL: &str = "pipelines_catalog";

/// How many promotions' views are kept at most.
const PROMOTIONS_KEPT: usize = 10_000;

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
}

#[derive(Default)]
struct Inner {
    catalog: Catalog,
    freshness: Freshness,
}

/// Values loaded from the database on a miss and dropped when their key changes. A load
/// that raced a change is not kept: the version it started from no longer matches.
pub struct VersionedCache<V> {
    slots: Mutex<HashMap<Uuid, Slot<V>>>,
}

struct Slot<V> {
    version: u64,
    value: Option<V>,
}

impl<V: Clone> VersionedCache<V> {
    fn new() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot<V>>> {
        // Every update leaves a slot consistent, so a poisoned lock still guards valid data.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value, or the load on a miss (kept if nothing changed meanwhile).
    pub async fn get_or_load<F, Fut>(&self, id: Uuid, load: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V>>,
    {
        let version = {
            let mut slots = self.slots();
            if let Some(value) = slots.get(&id).and_then(|slot| slot.value.clone()) {
                return Ok(value);
            }
            if slots.len() >= PROMOTIONS_KEPT && !slots.contains_key(&id) {
                // A load in flight finds its slot gone and keeps nothing: always safe.
                slots.clear();
            }
            slots
                .entry(id)
                .or_insert(Slot {
                    version: 0,
                    value: None,
                })
                .version
        };
        let loaded = load().await;
        let mut slots = self.slots();
        match &loaded {
            Ok(value) => {
                if let Some(slot) = slots.get_mut(&id) {
                    if slot.version == version {
                        slot.value = Some(value.clone());
                    }
                }
            }
            // Nothing to keep (an unknown id, a database error): free the slot, so that
            // lookups of ids that do not exist cannot fill the cache.
            Err(_) => {
                if slots
                    .get(&id)
                    .is_some_and(|slot| slot.version == version && slot.value.is_none())
                {
                    slots.remove(&id);
                }
            }
        }
        drop(slots);
        loaded
    }

    fn invalidate(&self, id: Uuid) {
        if let Some(slot) = self.slots().get_mut(&id) {
            slot.version += 1;
            slot.value = None;
        }
    }

    fn clear(&self) {
        self.slots().clear();
    }
}

/// The process's read model. Cheap to share: clone the `Arc`.
pub struct ReadModel {
    db: DatabaseConnection,
    inner: RwLock<Inner>,
    /// One refresh at a time; readers that need one wait for it.
    refreshing: tokio::sync::Mutex<()>,
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

    /// Loads every live pipeline and app, replacing what memory holds. Keys invalidated
    /// while it ran stay stale.
    pub async fn reload_everything(&self) -> Result<()> {
        let _one_at_a_time = self.refreshing.lock().await;
        let generation = self.read_inner().freshness.generation;
        let catalog = load::load_everything(&self.db).await?;
        let mut inner = self.write_inner();
        inner.catalog = catalog;
        inner.freshness.stale.retain(|_, since| *since > generation);
        inner.freshness.everything_stale = false;
        drop(inner);
        self.full_reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.pipeline_changed();
        crate::metrics::record_read_model_reload();
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
            inner.freshness.generation += 1;
            let generation = inner.freshness.generation;
            inner.freshness.stale.insert(key, generation);
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

    /// Reloads everything every `period`, and at once after [`invalidate_everything`].
    /// Runs until `stop` changes.
    ///
    /// [`invalidate_everything`]: ReadModel::invalidate_everything
    pub async fn keep_in_sync(
        self: Arc<Self>,
        period: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.reload_wanted.notified() => {}
                _ = stop.changed() => return,
            }
            while let Err(error) = self.reload_everything().await {
                tracing::warn!(%error, "cannot reload the read model; reads go to the database");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
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

    #[tokio::test]
    async fn failed_loads_leave_nothing_behind() {
        let cache: VersionedCache<u32> = VersionedCache::new();
        for _ in 0..100 {
            let missing = cache
                .get_or_load(Uuid::new_v4(), || async {
                    Err(crate::error::Error::not_found("promotion", "x"))
                })
                .await;
            assert!(missing.is_err());
        }
        assert_eq!(cache.slots().len(), 0, "unknown ids take no room");
    }

    #[tokio::test]
    async fn a_load_that_raced_a_change_is_not_kept() {
        let cache: VersionedCache<u32> = VersionedCache::new();
        let id = Uuid::new_v4();
        let loaded = cache
            .get_or_load(id, || async {
                // The value changes while it is being read.
                cache.invalidate(id);
                Ok(1)
            })
            .await
            .unwrap();
        assert_eq!(loaded, 1);
        let reloaded = cache.get_or_load(id, || async { Ok(2) }).await.unwrap();
        assert_eq!(reloaded, 2, "the raced value was not kept");
        let kept = cache.get_or_load(id, || async { Ok(3) }).await.unwrap();
        assert_eq!(kept, 2, "an undisturbed load is kept");
    }
}
