//! Numbered progress events, written in the same transaction as the change they report,
//! and the promotion's end, decided exactly once.

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use uuid::Uuid;

use super::Transaction;
use crate::{
    domain::promotion::{aggregate_status, EventKind, PromotionStatus, TargetStatus},
    error::{Error, Result},
    store::{
        self,
        entities::{promotion, promotion_event, promotion_target},
    },
    views::{PromotionEventView, ReleaseRef, ResourceRef},
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
        }
    }

    pub fn with_release(mut self, release: ReleaseRef) -> Self {
        self.release = Some(release);
        self
    }
}

pub fn event_view(model: promotion_event::Model) -> Result<PromotionEventView> {
    let kind = EventKind::parse(&model.kind)
        .ok_or_else(|| Error::Internal(format!("event {} has unknown kind", model.id)))?;
    let promotion_status = PromotionStatus::parse(&model.promotion_status).ok_or_else(|| {
        Error::Internal(format!("event {} has unknown promotion status", model.id))
    })?;
    Ok(PromotionEventView {
        promotion_id: model.promotion_id,
        sequence: model.sequence,
        kind,
        target_id: model.target_id,
        app: model.app_id.map(|id| ResourceRef {
            id,
            name: model.app_name.clone(),
        }),
        target_status: TargetStatus::parse(&model.target_status),
        promotion_status,
        release: match (model.release_id, model.release_version) {
            (Some(id), Some(version)) => Some(ReleaseRef { id, version }),
            _ => None,
        },
        message: model.message,
        created_at: model.created_at,
        waiting_for: model.waiting_for,
    })
}

/// Appends the promotion's next event. The caller holds the promotion's lock, so events
/// of one promotion are numbered and committed in order.
pub(super) async fn append(
    tx: &mut Transaction,
    promotion_id: Uuid,
    draft: EventDraft,
) -> Result<()> {
    let db = tx.connection();
    let counted = promotion::Entity::update_many()
        .col_expr(
            promotion::Column::EventCount,
            Expr::col(promotion::Column::EventCount).add(1),
        )
        .filter(promotion::Column::Id.eq(promotion_id));
    // One round trip where the database can return the updated row.
    let current = if db.support_returning() {
        counted.exec_with_returning(db).await?.pop()
    } else {
        counted.exec(db).await?;
        promotion::Entity::find_by_id(promotion_id).one(db).await?
    }
    .ok_or_else(|| Error::not_found("promotion", &promotion_id.to_string()))?;
    let row = promotion_event::ActiveModel {
        id: Set(Uuid::new_v4()),
        promotion_id: Set(promotion_id),
        sequence: Set(current.event_count),
        kind: Set(draft.kind.as_str().to_owned()),
        target_id: Set(draft.target),
        app_id: Set(draft.app.as_ref().map(|app| app.id)),
        app_name: Set(draft.app.map(|app| app.name).unwrap_or_default()),
        target_status: Set(draft
            .target_status
            .map(|status| status.as_str().to_owned())
            .unwrap_or_default()),
        promotion_status: Set(current.status.clone()),
        release_id: Set(draft.release.as_ref().map(|release| release.id)),
        release_version: Set(draft.release.map(|release| release.version)),
        message: Set(draft.message),
        created_at: Set(store::now()),
        waiting_for: Set(draft.waiting_for),
    };
    let event = event_view(row.insert(db).await?)?;
    let payload = store::promotion_changed_payload(promotion_id, event.app.as_ref().map(|a| a.id));
    if !tx.notifications.contains(&payload) {
        tx.notifications.push(payload);
    }
    tx.events.push(event);
    Ok(())
}

/// Ends the promotion if every target is final: sets the aggregate status and appends
/// `promotion.finished`. The caller holds the promotion's lock; the update only applies to
/// an unfinished promotion, so a promotion finishes exactly once.
pub(super) async fn finish_if_complete(tx: &mut Transaction, promotion_id: Uuid) -> Result<()> {
    let db = tx.connection();
    let targets = promotion_target::Entity::find()
        .filter(promotion_target::Column::PromotionId.eq(promotion_id))
        .all(db)
        .await?;
    let mut statuses = Vec::with_capacity(targets.len());
    for target in &targets {
        let status = TargetStatus::parse(&target.status).ok_or_else(|| {
            Error::Internal(format!("target {} has an unknown status", target.id))
        })?;
        statuses.push(status.for_outcome(target.app_deleted));
    }
    let cancel_requested = promotion::Entity::find_by_id(promotion_id)
        .one(db)
        .await?
        .is_some_and(|promotion| promotion.cancel_requested_at.is_some());
    let Some(outcome) = aggregate_status(&statuses, cancel_requested) else {
        return Ok(());
    };
    let now = store::now();
    let updated = promotion::Entity::update_many()
        .col_expr(promotion::Column::Status, outcome.as_str().into())
        .col_expr(promotion::Column::UpdatedAt, now.into())
        .col_expr(promotion::Column::FinishedAt, Some(now).into())
        .filter(promotion::Column::Id.eq(promotion_id))
        .filter(promotion::Column::Status.is_in(PromotionStatus::UNFINISHED.map(|s| s.as_str())))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(());
    }
    let succeeded = targets
        .iter()
        .filter(|target| target.status == TargetStatus::Succeeded.as_str())
        .count();
    let message = format!(
        "promotion {outcome}: {succeeded} of {} targets succeeded",
        targets.len()
    );
    append(
        tx,
        promotion_id,
        EventDraft::about_promotion(EventKind::PromotionFinished, message),
    )
    .await
}

/// Events of a promotion after a sequence number, in order.
pub async fn events_after(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    after: i64,
) -> Result<Vec<PromotionEventView>> {
    promotion_event::Entity::find()
        .filter(promotion_event::Column::PromotionId.eq(promotion_id))
        .filter(promotion_event::Column::Sequence.gt(after))
        .order_by_asc(promotion_event::Column::Sequence)
        .all(db)
        .await?
        .into_iter()
        .map(event_view)
        .collect()
}
