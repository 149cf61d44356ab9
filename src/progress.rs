//! The progress of promotions as watchers see it: fanning committed events out to
//! watchers, carrying them between processes, and the watch itself (history first, then
//! live events, until `promotion.finished`). Events are written by [`crate::lifecycle`].
//!
//! Fan-out has one source per process: whoever commits an event publishes it to the
//! [`EventHub`], and every watcher in the process subscribes there. A watcher costs a
//! broadcast receiver, not a database poll loop.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, mpsc, Notify};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    fanout::{Fanout, Sequenced, Subscription},
    read_model::{self, ReadModel},
    store,
    views::PromotionEventView,
};

/// The events of a promotion after sequence number `after`, in order, as watchers see them.
async fn events_after(
    db: &impl sea_orm::ConnectionTrait,
    promotion_id: Uuid,
    after: i64,
) -> Result<Vec<PromotionEventView>> {
    store::events::events_after(db, promotion_id, after)
        .await?
        .into_iter()
        .map(crate::views::promotion_event_view)
        .collect()
}

impl Sequenced for PromotionEventView {
    fn sequence(&self) -> i64 {
        self.sequence
    }
}

/// Publishes the events committed after what this process last published for one watched
/// promotion. Used for events written by other processes.
async fn refresh(db: &DatabaseConnection, hub: &EventHub, promotion_id: Uuid, after: i64) {
    match events_after(db, promotion_id, after).await {
        Ok(events) if !events.is_empty() => hub.publish(events),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, %promotion_id, "cannot read promotion events"),
    }
}

/// Carries changes between processes sharing PostgreSQL. Every committed event sends a
/// `NOTIFY` naming its promotion (and app), and every other committed change names the
/// pipelines and apps it touched; this task (one per process) marks them stale in the read
/// model and publishes the new events of watched promotions to the local hub.
///
/// Notifications can be lost only while the listening connection is down or reconnecting,
/// so losing it makes the read model reload everything, and the watched promotions are
/// polled every `poll_every` until a tick finds the connection back (that poll covers the
/// gap): one query per watched promotion, however many watchers it has. While listening,
/// nothing is polled.
pub async fn relay_between_processes(
    db: DatabaseConnection,
    hub: Arc<EventHub>,
    poll_every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = db.get_postgres_connection_pool().clone();
    let connect = || async {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener
            .listen_all([
                store::EVENTS_CHANNEL,
                read_model::CATALOG_CHANNEL,
                store::pipeline_events::PIPELINE_EVENTS_CHANNEL,
            ])
            .await?;
        Ok::<_, sea_orm::sqlx::Error>(listener)
    };
    let mut listener = match connect().await {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(%error, "cannot LISTEN for changes; polling until it can");
            hub.read_model.invalidate_everything();
            None
        }
    };
    // Whether notifications may have been missed since the watched promotions were last
    // polled.
    let mut may_have_missed = listener.is_none();
    let mut ticker = tokio::time::interval(poll_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let notified = async {
            match listener.as_mut() {
                // `None` when the connection was lost; the next call reconnects.
                Some(listener) => listener.try_recv().await.ok().flatten(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            notification = notified => {
                let Some(notification) = notification else {
                    // What is sent until the next tick listens again is lost: the read
                    // model reloads, and the watchers are polled, once listening again.
                    tracing::info!("lost the LISTEN connection; reloading the read model");
                    hub.read_model.invalidate_everything();
                    listener = None;
                    may_have_missed = true;
                    continue;
                };
                if notification.channel() == store::pipeline_events::PIPELINE_EVENTS_CHANNEL {
                    hub.signal_pipeline_events();
                    continue;
                }
                if notification.channel() == read_model::CATALOG_CHANNEL {
                    hub.read_model.notified(notification.payload());
                    // A pipeline's freezes may have changed: the engine looks at once.
                    if notification.payload().starts_with("pipeline ") {
                        hub.signal_work();
                    }
                    continue;
                }
                let Some(store::PromotionChanged { promotion_id, app_id, origin }) =
                    store::parse_promotion_changed(notification.payload())
                else {
                    continue;
                };
                if origin == Some(hub.origin()) {
                    // Published here at its commit, and the read model told then.
                    continue;
                }
                hub.read_model.promotion_changed(promotion_id);
                if let Some(app_id) = app_id {
                    hub.read_model.invalidate([read_model::Key::App(app_id)]);
                }
                if let Some(after) = hub.published(promotion_id) {
                    refresh(&db, &hub, promotion_id, after).await;
                }
            }
            _ = ticker.tick() => {
                if listener.is_none() {
                    listener = connect().await.ok();
                    if listener.is_some() {
                        // Listening again: a reload now misses nothing, and the pipeline
                        // streams look for events numbered meanwhile.
                        hub.read_model.invalidate_everything();
                        hub.signal_pipeline_events();
                    }
                }
                if may_have_missed {
                    // Polled after the connection is back, this covers everything sent
                    // while it was down.
                    may_have_missed = listener.is_none();
                    for (promotion_id, after) in hub.watched() {
                        refresh(&db, &hub, promotion_id, after).await;
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// The per-process fan-out of promotion events, and the signal that new work exists.
pub struct EventHub {
    /// Told of every committed event, so that no read serves a promotion or app it changed.
    pub read_model: Arc<ReadModel>,
    watchers: Arc<Fanout<PromotionEventView>>,
    /// Names this hub in the notifications its process sends, so that it skips its own.
    origin: String,
    /// The pipelines of promotions whose events this process appended to pipeline streams.
    pub promotion_pipelines: crate::pipeline_events::PromotionPipelines,
    work_available: Notify,
    verification_due: Notify,
    pipeline_events_numbered: Notify,
    closing: tokio::sync::watch::Sender<bool>,
}

impl EventHub {
    pub fn new(read_model: Arc<ReadModel>) -> Arc<Self> {
        Arc::new(Self {
            read_model,
            watchers: Fanout::new(),
            origin: Uuid::new_v4().simple().to_string(),
            promotion_pipelines: Default::default(),
            work_available: Notify::new(),
            verification_due: Notify::new(),
            pipeline_events_numbered: Notify::new(),
            closing: tokio::sync::watch::channel(false).0,
        })
    }

    /// Ends every watch in this process (at shutdown), so that clients resume elsewhere
    /// with their last sequence number.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Turns true when the process shuts down: every watch ends then.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// What this hub's process signs its change notifications with.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Delivers committed events to this process's watchers.
    pub fn publish(&self, events: Vec<PromotionEventView>) {
        self.read_model.events_committed(&events);
        for event in events {
            self.watchers.send(event.promotion_id, [Arc::new(event)]);
        }
    }

    fn subscribe(&self, promotion_id: Uuid) -> Option<Subscription<PromotionEventView>> {
        self.watchers.subscribe(promotion_id, 0)
    }

    /// The watched promotions and the last sequence each has seen published.
    fn watched(&self) -> Vec<(Uuid, i64)> {
        self.watchers.watched()
    }

    fn published(&self, promotion_id: Uuid) -> Option<i64> {
        self.watchers.published(promotion_id)
    }

    /// The number of promotions that currently have watchers in this process.
    pub fn watched_promotions(&self) -> usize {
        self.watchers.len()
    }

    /// Tells this process's pipeline streams that pipelines have new numbered events.
    pub fn signal_pipeline_events(&self) {
        self.pipeline_events_numbered.notify_one();
    }

    pub async fn pipeline_events_signalled(&self) {
        self.pipeline_events_numbered.notified().await;
    }

    /// Wakes the engine: a promotion was created or a target was freed.
    pub fn signal_work(&self) {
        self.work_available.notify_one();
    }

    pub async fn work_signalled(&self) {
        self.work_available.notified().await;
    }

    /// Tells the verification pass that a verification may be decidable now (a status was
    /// posted, a target began verifying) or a rollback waits to deploy.
    pub fn signal_verification(&self) {
        self.verification_due.notify_one();
    }

    pub async fn verification_signalled(&self) {
        self.verification_due.notified().await;
    }
}

/// Keeps the events after `last`, advancing it; reports whether the stream's last event
/// was among them.
fn take_new(events: Vec<PromotionEventView>, last: &mut i64) -> (Vec<PromotionEventView>, bool) {
    let mut fresh = Vec::new();
    for event in events {
        if event.sequence <= *last {
            continue;
        }
        *last = event.sequence;
        let ends = event.kind.ends_stream();
        fresh.push(event);
        if ends {
            return (fresh, true);
        }
    }
    (fresh, false)
}

/// A watch opened on a promotion and not run yet: subscribed to its live events, with the
/// history after `after` read once subscribed, so that nothing committed in between is
/// missed.
pub struct OpenedWatch {
    promotion_id: Uuid,
    after: i64,
    live: Subscription<PromotionEventView>,
    history: Vec<PromotionEventView>,
}

impl OpenedWatch {
    /// Whether the promotion has events after the watch's start. A promotion without
    /// any may not exist, or may be finished with nothing more to tell.
    pub fn has_history(&self) -> bool {
        !self.history.is_empty()
    }
}

/// Opens a watch on `promotion_id` from after sequence `after`.
pub async fn open_watch(
    db: &DatabaseConnection,
    hub: &Arc<EventHub>,
    promotion_id: Uuid,
    after: i64,
) -> Result<OpenedWatch> {
    let live = hub
        .subscribe(promotion_id)
        .ok_or_else(|| Error::Internal("the event hub is unavailable".into()))?;
    let history = events_after(db, promotion_id, after).await?;
    Ok(OpenedWatch {
        promotion_id,
        after,
        live,
        history,
    })
}

/// Runs an opened watch: sends its history, then live events, and ends after
/// `promotion.finished`. It stops as soon as the receiver is dropped.
pub fn watch(
    db: DatabaseConnection,
    hub: Arc<EventHub>,
    opened: OpenedWatch,
    sink: mpsc::Sender<Result<PromotionEventView>>,
) {
    let OpenedWatch {
        promotion_id,
        after,
        mut live,
        history,
    } = opened;
    tokio::spawn(async move {
        let mut closing = hub.closing.subscribe();
        let mut last = after;
        let mut pending = history;
        loop {
            let (batch, ended) = take_new(std::mem::take(&mut pending), &mut last);
            for event in batch {
                if sink.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if ended {
                return;
            }
            if *closing.borrow() {
                return;
            }
            let received = tokio::select! {
                received = live.recv() => received,
                _ = sink.closed() => return,
                _ = closing.changed() => return,
            };
            pending = match received {
                Ok(event) if event.sequence <= last => continue,
                Ok(event) if event.sequence == last + 1 => vec![(*event).clone()],
                // A gap or a lag: the database has everything committed, in order.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    match events_after(&db, promotion_id, last).await {
                        Ok(events) => events,
                        Err(error) => {
                            let _ = sink.send(Err(error)).await;
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
        }
    });
}
