//! Fan-out of numbered events to the watchers in one process, keyed by what they watch
//! (a promotion, a pipeline). Each key has one broadcast channel while it has watchers,
//! and remembers the last sequence sent on it, so that whoever reads new events from the
//! database knows where to start. A watcher that lags reads what it missed from the
//! database itself, where every event is, in order.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::broadcast;
use uuid::Uuid;

/// Buffered events per key before a slow watcher falls back to the database.
const CHANNEL_CAPACITY: usize = 256;

/// An event with its place in its stream.
pub trait Sequenced {
    fn sequence(&self) -> i64;
}

struct Channel<T> {
    sender: broadcast::Sender<Arc<T>>,
    /// The last sequence sent on this channel.
    published: i64,
}

/// The channels of one kind of stream.
pub struct Fanout<T> {
    channels: Mutex<HashMap<Uuid, Channel<T>>>,
}

impl<T: Sequenced + Send + Sync + 'static> Fanout<T> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// Subscribes to `key`'s events; a new channel starts as if `published` had been sent.
    pub fn subscribe(self: &Arc<Self>, key: Uuid, published: i64) -> Option<Subscription<T>> {
        let mut channels = self.channels.lock().ok()?;
        let channel = channels.entry(key).or_insert_with(|| Channel {
            sender: broadcast::channel(CHANNEL_CAPACITY).0,
            published,
        });
        Some(Subscription {
            receiver: Some(channel.sender.subscribe()),
            fanout: Arc::clone(self),
            key,
        })
    }

    /// Sends events to `key`'s watchers, if it has any, skipping those already sent.
    pub fn send(&self, key: Uuid, events: impl IntoIterator<Item = Arc<T>>) {
        let Ok(mut channels) = self.channels.lock() else {
            return;
        };
        let Some(channel) = channels.get_mut(&key) else {
            return;
        };
        for event in events {
            if event.sequence() <= channel.published {
                continue;
            }
            channel.published = event.sequence();
            if channel.sender.send(event).is_err() {
                // Nobody listens any more.
                channels.remove(&key);
                return;
            }
        }
    }

    /// The watched keys, each with the last sequence sent to it.
    pub fn watched(&self) -> Vec<(Uuid, i64)> {
        self.channels
            .lock()
            .map(|channels| {
                channels
                    .iter()
                    .map(|(key, channel)| (*key, channel.published))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The last sequence sent to `key`, if it is watched.
    pub fn published(&self, key: Uuid) -> Option<i64> {
        self.channels
            .lock()
            .ok()?
            .get(&key)
            .map(|channel| channel.published)
    }

    /// How many keys have watchers.
    pub fn len(&self) -> usize {
        self.channels.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One watcher's receiver. Dropping the last one of a key frees its channel.
pub struct Subscription<T> {
    receiver: Option<broadcast::Receiver<Arc<T>>>,
    fanout: Arc<Fanout<T>>,
    key: Uuid,
}

impl<T: Clone> Subscription<T> {
    pub async fn recv(&mut self) -> Result<Arc<T>, broadcast::error::RecvError> {
        match self.receiver.as_mut() {
            Some(receiver) => receiver.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.receiver.take();
        if let Ok(mut channels) = self.fanout.channels.lock() {
            if channels
                .get(&self.key)
                .is_some_and(|channel| channel.sender.receiver_count() == 0)
            {
                channels.remove(&self.key);
            }
        }
    }
}
