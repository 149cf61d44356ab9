//! Numbered progress events, written in the same transaction as the change they report,
//! and the promotion's end, decided exactly once.

use uuid::Uuid;

use super::{promotion_states_moving_to, Transaction};
pub(super) use crate::store::events::StatusChange;
use crate::{
    domain::promotion::{aggregate_status, EventKind, PromotionStatus, TargetStatus},
    error::{Error, Result},
    pipeline_events::{kinds_of_promotion_event, resource_of_kind, PipelineEventDraft, Scope},
    store::{
        self,
        entities::{promotion_event, promotion_target},
    },
    views::{promotion_event_view, FreezeRef, PromotionEventView, ReleaseRef, ResourceRef},
};

/// What happened, about which target, for an event about to be written.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub kind: EventKind,
    pub target: Option<Uuid>,
    pub app: Option<ResourceRef>,
    pub target_status: Option<TargetStatus>,
    pub release: Option<ReleaseRef>,
    pub message: String,
    /// For `target.queued`: the promotion the target waits for.
    pub waiting_for: Option<Uuid>,
    /// For `target.queued`: the freeze the target waits for.
    pub waiting_for_freeze: Option<FreezeRef>,
    /// For approval events: the token that voted, and its comment.
    pub actor: String,
    pub comment: String,
    /// The promotion's status the event reports, when it is not the status the promotion
    /// has once the statement that stores the event ran.
    pub promotion_status: Option<PromotionStatus>,
}

impl EventDraft {
    pub fn about_promotion(kind: EventKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            target: None,
            app: None,
            target_status: None,
            release: None,
            message: message.into(),
            waiting_for: None,
            waiting_for_freeze: None,
            actor: String::new(),
            comment: String::new(),
            promotion_status: None,
        }
    }

    pub fn about_target(
        kind: EventKind,
        target: &promotion_target::Model,
        app: ResourceRef,
        status: TargetStatus,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            target: Some(target.id),
            app: Some(app),
            target_status: Some(status),
            release: None,
            message: message.into(),
            waiting_for: None,
            waiting_for_freeze: None,
            actor: String::new(),
            comment: String::new(),
            promotion_status: None,
        }
    }

    /// A vote on the promotion: who cast it, and with what comment.
    pub fn vote(kind: EventKind, voter: &str, comment: &str, message: impl Into<String>) -> Self {
        Self {
            actor: voter.to_owned(),
            comment: comment.to_owned(),
            ..Self::about_promotion(kind, message)
        }
    }

    pub fn with_release(mut self, release: ReleaseRef) -> Self {
        self.release = Some(release);
        self
    }

    /// Reports `status` as the promotion's, whatever the statement storing the event sets.
    pub fn reporting(mut self, status: PromotionStatus) -> Self {
        self.promotion_status = Some(status);
        self
    }
}

/// Appends the promotion's next event. The caller holds the promotion's lock, so events
/// of one promotion are numbered and committed in order.
pub(super) async fn append(
    tx: &mut Transaction,
    promotion_id: Uuid,
    draft: EventDraft,
) -> Result<()> {
    append_all(tx, promotion_id, vec![draft]).await
}

/// Appends the promotion's next events, numbered in the order given. The caller holds the
/// promotion's lock. On PostgreSQL they are numbered and stored in one statement, however
/// many there are.
pub(super) async fn append_all(
    tx: &mut Transaction,
    promotion_id: Uuid,
    drafts: Vec<EventDraft>,
) -> Result<()> {
    append_changing_status(tx, promotion_id, drafts, None).await
}

/// Appends events as [`append_all`] does, and makes `change` to the promotion's row in the
/// same statement (on PostgreSQL). Events without their own reported status carry the
/// status after the change.
pub(super) async fn append_changing_status(
    tx: &mut Transaction,
    promotion_id: Uuid,
    drafts: Vec<EventDraft>,
    change: Option<StatusChange>,
) -> Result<()> {
    if drafts.is_empty() {
        return Ok(());
    }
    let rows = event_rows(promotion_id, drafts, store::now());
    let db = tx.connection();
    let stored = store::events::append(db, promotion_id, rows, change, tx.origin())
        .await?
        .ok_or_else(|| Error::not_found("promotion", &promotion_id.to_string()))?;
    record_stored(tx, stored)
}

/// The rows of events about to be stored, not numbered yet (sequence 0), stamped `now`.
pub(super) fn event_rows(
    promotion_id: Uuid,
    drafts: Vec<EventDraft>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<promotion_event::Model> {
    drafts
        .into_iter()
        .map(|draft| promotion_event::Model {
            id: Uuid::new_v4(),
            promotion_id,
            sequence: 0,
            kind: draft.kind.as_str().to_owned(),
            target_id: draft.target,
            app_id: draft.app.as_ref().map(|app| app.id),
            app_name: draft.app.map(|app| app.name).unwrap_or_default(),
            target_status: draft
                .target_status
                .map(|status| status.as_str().to_owned())
                .unwrap_or_default(),
            promotion_status: draft
                .promotion_status
                .map(|status| status.as_str().to_owned())
                .unwrap_or_default(),
            release_id: draft.release.as_ref().map(|release| release.id),
            release_version: draft.release.map(|release| release.version),
            message: draft.message,
            created_at: now,
            waiting_for: draft.waiting_for,
            waiting_for_freeze: draft
                .waiting_for_freeze
                .and_then(|wait| serde_json::to_string(&wait).ok()),
            actor: draft.actor,
            comment: draft.comment,
        })
        .collect()
}

/// Keeps stored events, in order, to publish when the transaction commits.
pub(super) fn record_stored(
    tx: &mut Transaction,
    stored: Vec<promotion_event::Model>,
) -> Result<()> {
    for row in stored {
        let event = promotion_event_view(row)?;
        for draft in pipeline_events_of(&event) {
            tx.add_pipeline_event(draft);
        }
        tx.events.push(event);
    }
    Ok(())
}

/// What a promotion's event changed, in its pipeline's stream.
fn pipeline_events_of(event: &PromotionEventView) -> Vec<PipelineEventDraft> {
    let app = event.app.as_ref().map(|app| (app.id, app.name.as_str()));
    kinds_of_promotion_event(event.kind)
        .iter()
        .filter_map(|kind| {
            let subject = match resource_of_kind(kind) {
                "target" => event.target_id?,
                "release" => event.release?.id,
                _ => event.promotion_id,
            };
            Some(PipelineEventDraft::new(
                Scope::Promotion(event.promotion_id),
                kind,
                subject,
                app,
            ))
        })
        .collect()
}

/// How a promotion ends once every target in `targets` is final: its aggregate status
/// and the text of `promotion.finished`. `None` while a target is still unfinished.
pub(super) fn promotion_end(
    targets: &[promotion_target::Model],
    cancel_requested: bool,
) -> Result<Option<(PromotionStatus, String)>> {
    let mut statuses = Vec::with_capacity(targets.len());
    for target in targets {
        let status = TargetStatus::parse(&target.status).ok_or_else(|| {
            Error::Internal(format!("target {} has an unknown status", target.id))
        })?;
        statuses.push(status.for_outcome(target.app_deleted));
    }
    let Some(outcome) = aggregate_status(&statuses, cancel_requested) else {
        return Ok(None);
    };
    let succeeded = targets
        .iter()
        .filter(|target| target.status == TargetStatus::Succeeded.as_str())
        .count();
    let message = format!(
        "promotion {outcome}: {succeeded} of {} targets succeeded",
        targets.len()
    );
    Ok(Some((outcome, message)))
}

/// Ends the promotion if every target is final: sets the aggregate status and appends
/// `promotion.finished`. The caller holds the promotion's lock; the update only applies to
/// an unfinished promotion, so a promotion finishes exactly once.
pub(super) async fn finish_if_complete(tx: &mut Transaction, promotion_id: Uuid) -> Result<()> {
    let db = tx.connection();
    let targets = store::targets::targets_of_promotion(db, promotion_id).await?;
    let cancel_requested = store::promotions::promotion_by_id(db, promotion_id)
        .await?
        .is_some_and(|promotion| promotion.cancel_requested_at.is_some());
    let Some((outcome, message)) = promotion_end(&targets, cancel_requested)? else {
        return Ok(());
    };
    let from = promotion_states_moving_to(outcome);
    if !store::promotions::move_status(db, promotion_id, from, outcome, true, store::now()).await? {
        return Ok(());
    }
    append(
        tx,
        promotion_id,
        EventDraft::about_promotion(EventKind::PromotionFinished, message),
    )
    .await
}
