//! Fan-out of pipeline events in one process, and the watch itself.
//!
//! One task per process ([`PipelineStreams::pump`]) wakes when a sequencer numbered new
//! events, here or (by `NOTIFY`) on another process, and only if some pipeline is watched
//! here: it reads the new events of the watched pipelines once,
//! renders each once, and broadcasts them to every watcher of that pipeline. A watcher
//! costs a broadcast receiver, not a poll loop; one that lags, or sees a gap, reads what it
//! missed from the database, where every event is, in order.

use std::{collections::HashMap, sync::Arc};

use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use super::render::{render, PipelineEventView};
use crate::{
    error::{Error, Result},
    fanout::{Fanout, Sequenced, Subscription},
    progress::EventHub,
    service::Services,
    store::{self, entities::pipeline_event},
};

/// Events read from the database per statement.
const PAGE: u64 = 500;

/// What a watcher receives.
#[derive(Debug, Clone)]
pub enum StreamItem {
    Event(Arc<PipelineEventView>),
    /// The watcher asked to resume from events no longer kept (or not known here): it
    /// should reload what it shows. The stream goes on after `last`.
    Reset {
        last: i64,
    },
}

impl Sequenced for PipelineEventView {
    fn sequence(&self) -> i64 {
        self.sequence
    }
}

/// The pipeline streams of one process.
pub struct PipelineStreams {
    db: DatabaseConnection,
    hub: Arc<EventHub>,
    watchers: Arc<Fanout<PipelineEventView>>,
}

impl PipelineStreams {
    pub fn new(db: DatabaseConnection, hub: Arc<EventHub>) -> Arc<Self> {
        Arc::new(Self {
            db,
            hub,
            watchers: Fanout::new(),
        })
    }

    /// Publishes new events of watched pipelines whenever a change commits, until `stop`;
    /// `services` render them.
    pub async fn pump(
        self: Arc<Self>,
        services: Services,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = self.hub.pipeline_events_signalled() => {}
                _ = stop.changed() => return,
            }
            if let Err(error) = self.publish_new(&services).await {
                tracing::warn!(%error, "cannot read new pipeline events");
            }
        }
    }

    /// The number of pipelines watched in this process.
    pub fn watched_pipelines(&self) -> usize {
        self.watchers.len()
    }

    async fn publish_new(&self, services: &Services) -> Result<()> {
        let watched = self.watchers.watched();
        if watched.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = watched.iter().map(|(id, _)| *id).collect();
        let heads: HashMap<Uuid, i64> = store::pipeline_events::last_sequences(&self.db, &ids)
            .await?
            .into_iter()
            .collect();
        for (pipeline_id, mut published) in watched {
            let last = heads.get(&pipeline_id).copied().unwrap_or(0);
            while published < last {
                let rows =
                    store::pipeline_events::events_after(&self.db, pipeline_id, published, PAGE)
                        .await?;
                let Some(newest) = rows.last().map(|row| row.sequence) else {
                    break;
                };
                let mut rendered = Vec::with_capacity(rows.len());
                for row in &rows {
                    rendered.push(Arc::new(render(services, row).await?));
                }
                self.watchers.send(pipeline_id, rendered);
                published = newest;
            }
        }
        Ok(())
    }

    /// Watches a pipeline (an id or a name): from the present, or after sequence `after`.
    /// The receiver gets the events in order until it is dropped or the process stops.
    pub async fn watch(
        self: &Arc<Self>,
        services: &Services,
        pipeline: &str,
        after: Option<i64>,
    ) -> Result<mpsc::Receiver<Result<StreamItem>>> {
        if after.is_some_and(|after| after < 0) {
            return Err(Error::invalid(
                "after_sequence",
                "must be a sequence number, 0 or more",
            ));
        }
        let found = services.pipelines.get(pipeline).await?;
        let opened = self.open(found.id, after).await?;
        let (sink, receiver) = mpsc::channel(64);
        self.run(services.clone(), opened, sink);
        Ok(receiver)
    }

    /// Opens a watch of a pipeline: from the present, or after sequence `after`.
    async fn open(self: &Arc<Self>, pipeline_id: Uuid, after: Option<i64>) -> Result<OpenedStream> {
        let bounds = store::pipeline_events::bounds(&self.db, pipeline_id).await?;
        let live = self
            .watchers
            .subscribe(pipeline_id, bounds.last)
            .ok_or_else(|| Error::Internal("the pipeline streams are unavailable".into()))?;
        let (start, reset) = match after {
            None => (bounds.last, false),
            Some(after) => {
                let kept = after >= bounds.last
                    || bounds.oldest_kept.is_some_and(|oldest| after + 1 >= oldest);
                if after <= bounds.last && kept {
                    (after, false)
                } else {
                    (bounds.last, true)
                }
            }
        };
        Ok(OpenedStream {
            pipeline_id,
            start,
            reset,
            live,
        })
    }

    /// Runs an opened watch: the events after its start, then live ones, until the
    /// receiver goes away or the process shuts down.
    fn run(
        self: &Arc<Self>,
        services: Services,
        opened: OpenedStream,
        sink: mpsc::Sender<Result<StreamItem>>,
    ) {
        let streams = Arc::clone(self);
        tokio::spawn(async move {
            let OpenedStream {
                pipeline_id,
                start,
                reset,
                mut live,
            } = opened;
            let mut closing = streams.hub.closing();
            let mut last = start;
            if reset && sink.send(Ok(StreamItem::Reset { last })).await.is_err() {
                return;
            }
            // The history, then whatever the broadcast missed, read from the database.
            let mut catch_up = true;
            loop {
                if catch_up {
                    match streams
                        .catch_up(&services, pipeline_id, &mut last, &sink)
                        .await
                    {
                        Ok(true) => catch_up = false,
                        Ok(false) => return,
                        Err(error) => {
                            let _ = sink.send(Err(error)).await;
                            return;
                        }
                    }
                }
                if *closing.borrow() {
                    return;
                }
                let received = tokio::select! {
                    received = live.recv() => received,
                    _ = sink.closed() => return,
                    _ = closing.changed() => return,
                };
                match received {
                    Ok(event) if event.sequence <= last => {}
                    Ok(event) if event.sequence == last + 1 => {
                        last = event.sequence;
                        if sink.send(Ok(StreamItem::Event(event))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => catch_up = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Sends every stored event after `last`; false when the receiver went away.
    async fn catch_up(
        &self,
        services: &Services,
        pipeline_id: Uuid,
        last: &mut i64,
        sink: &mpsc::Sender<Result<StreamItem>>,
    ) -> Result<bool> {
        loop {
            let rows: Vec<pipeline_event::Model> =
                store::pipeline_events::events_after(&self.db, pipeline_id, *last, PAGE).await?;
            let complete = (rows.len() as u64) < PAGE;
            for row in rows {
                let event = render(services, &row).await?;
                *last = event.sequence;
                if sink
                    .send(Ok(StreamItem::Event(Arc::new(event))))
                    .await
                    .is_err()
                {
                    return Ok(false);
                }
            }
            if complete {
                return Ok(true);
            }
        }
    }
}

/// A watch opened and not run yet.
pub struct OpenedStream {
    pipeline_id: Uuid,
    start: i64,
    reset: bool,
    live: Subscription<PipelineEventView>,
}
