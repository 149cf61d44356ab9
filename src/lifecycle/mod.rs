//! The promotion lifecycle: every state change of a promotion or one of its targets, one
//! function per transition. Callers (the use cases and the engine) decide *when* a
//! transition happens; this module decides *how*: the guard on the state it expects, the
//! update, the event, and publishing that event once the transaction commits.
//!
//! One lock order holds everywhere, so that concurrent transitions wait for each other
//! instead of deadlocking:
//!
//! 1. the app row, where its being live matters (deleting it, or releasing onto it), in
//!    the mode that excludes only what must wait: a delete `FOR UPDATE`, work joining the
//!    app's queue `FOR NO KEY UPDATE`, and the engine's steps on work already queued
//!    `FOR KEY SHARE`, which a join does not wait for;
//! 2. the promotion row ([`store::lock_promotion`]), before any of its targets;
//! 3. its target rows, and rollback rows;
//! 4. the numbering of the apps' releases ([`store::lock_release_numbering`]), the last
//!    lock a writer takes, then the releases themselves.
//!
//! Claims and lease renewals touch one target row in one statement, outside any
//! transaction, so they hold no lock while waiting for another.

mod approvals;
mod auto_promotion;
mod cancel;
mod create;
mod events;
mod queue;
mod rollbacks;
mod subject;
mod targets;
mod verification;

pub use approvals::vote;
pub use auto_promotion::{evaluate_trigger, pending_triggers, record_triggers, Trigger};
pub use cancel::{cancel_promotion, cancel_targets_of_deleted_app};
pub use create::{create_promotion, PromotionRecord};
pub use events::EventDraft;
pub use queue::{announce_frozen, announce_waiting};
pub use rollbacks::{
    cancel_rollbacks_of_deleted_app, create_rollback, record_rollback_outcome, start_rollback,
};
pub use subject::{SourceRelease, Subject};
pub use targets::{DeployOutcome, OutcomeRecorded, Run, TargetBatch};
pub use verification::{
    record_rollback_deploy, record_verdict, rollback_to_deploy, RollbackToDeploy,
};

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use crate::{
    audit::{Actor, AuditEntry},
    domain::promotion::{PromotionStatus, TargetStatus},
    error::{Error, Result},
    pipeline_events::{self, PipelineEventDraft},
    progress::EventHub,
    store::{self, entities::promotion},
    views::PromotionEventView,
};

/// A database transaction that collects the events its transitions write, and publishes
/// them to this process's watchers once it commits. Dropped without a commit, it rolls
/// back and publishes nothing.
///
/// Other processes hear of the events from the statements that store them: on
/// PostgreSQL each one also sends the notifications of its rows, in the name of this
/// process's hub, and they are delivered exactly when the transaction commits.
pub struct Transaction {
    txn: DatabaseTransaction,
    hub: Arc<EventHub>,
    events: Vec<PromotionEventView>,
    /// The changes to queue for their pipelines' streams just before the commit.
    pipeline_events: Vec<PipelineEventDraft>,
    /// Set when the transaction left work for the engine (an auto-promotion trigger), so
    /// that the commit wakes it.
    pub wake_engine: bool,
    /// Set when the transaction left a verification to decide or a rollback to deploy.
    pub wake_verification: bool,
}

impl Transaction {
    pub async fn begin(db: &DatabaseConnection, hub: &Arc<EventHub>) -> Result<Self> {
        Ok(Self {
            txn: db.begin().await?,
            hub: Arc::clone(hub),
            events: Vec::new(),
            pipeline_events: Vec::new(),
            wake_engine: false,
            wake_verification: false,
        })
    }

    /// The connection to run queries on inside the transaction.
    pub fn connection(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// What this process's notifications are signed with.
    fn origin(&self) -> &str {
        self.hub.origin()
    }

    /// Records an audit entry of the transaction's change; its pipeline event is queued
    /// with the others at the commit.
    pub async fn record_audit(&mut self, entry: AuditEntry, actor: &Actor) -> Result<()> {
        self.pipeline_events.extend(entry.pipeline_event());
        AuditEntry::record_leaving_stream(vec![entry], &self.txn, actor).await
    }

    /// Adds a change to its pipeline's stream, queued at the commit.
    pub fn add_pipeline_event(&mut self, draft: PipelineEventDraft) {
        self.pipeline_events.push(draft);
    }

    /// Queues the pipeline events, commits, then publishes the events written, in order.
    pub async fn commit(self) -> Result<()> {
        let drafts = self.pipeline_events;
        let queued =
            pipeline_events::queue(&self.txn, drafts, &self.hub.promotion_pipelines).await?;
        self.txn.commit().await?;
        if !queued.is_empty() {
            // Its events are numbered by the sequencer.
            self.hub.read_model.pipeline_events_committed();
        }
        crate::metrics::record_committed(&self.events);
        self.hub.publish(self.events);
        if self.wake_engine {
            self.hub.signal_work();
        }
        if self.wake_verification {
            self.hub.signal_verification();
        }
        Ok(())
    }

    /// Whether any transition in this transaction wrote an event.
    pub fn wrote_events(&self) -> bool {
        !self.events.is_empty()
    }
}

/// The guard of a target's move to `next`: the stored names of every state the transition
/// table lets move there.
fn target_states_moving_to(next: TargetStatus) -> Vec<&'static str> {
    TargetStatus::sources_of(next)
        .into_iter()
        .map(TargetStatus::as_str)
        .collect()
}

/// The guard of a promotion's move to `next`, like [`target_states_moving_to`].
fn promotion_states_moving_to(next: PromotionStatus) -> Vec<&'static str> {
    PromotionStatus::sources_of(next)
        .into_iter()
        .map(PromotionStatus::as_str)
        .collect()
}

/// Locks the promotion row for the rest of the transaction: the first step of every
/// transition that touches a promotion or its targets.
async fn lock_promotion(tx: &Transaction, promotion_id: Uuid) -> Result<promotion::Model> {
    store::lock_promotion(tx.connection(), promotion_id)
        .await?
        .ok_or_else(|| Error::not_found("promotion", &promotion_id.to_string()))
}
