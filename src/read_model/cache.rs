//! Promotions and targets read from the database on a miss, kept until their key changes.

use std::{collections::HashMap, sync::Mutex};

use uuid::Uuid;

use crate::error::Result;

/// How many values are kept at most.
const KEPT: usize = 10_000;

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
    pub(super) fn new() -> Self {
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
            if slots.len() >= KEPT && !slots.contains_key(&id) {
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

    pub(super) fn invalidate(&self, id: Uuid) {
        if let Some(slot) = self.slots().get_mut(&id) {
            slot.version += 1;
            slot.value = None;
        }
    }

    pub(super) fn clear(&self) {
        self.slots().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
