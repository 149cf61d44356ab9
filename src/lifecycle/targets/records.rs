//! What a target's steps record, apart from its state: the releases a batch numbers, the
//! events that tell each step, and the auto-promotion trigger of a delivered release.

use std::collections::HashMap;

use uuid::Uuid;

use super::{DeployOutcome, Run};
use crate::{
    domain::{
        promotion::{EventKind, PromotionStatus, TargetStatus},
        status::ReleaseState,
        verification::Verification,
    },
    lifecycle::{auto_promotion::Trigger, events::EventDraft},
    store::{
        self,
        entities::{promotion, promotion_target, release},
        NewRelease,
    },
    views::{ReleaseRef, ResourceRef},
};

/// `target.running` for a target that starts.
pub(super) fn running_event(target: &promotion_target::Model, app: &ResourceRef) -> EventDraft {
    EventDraft::about_target(
        EventKind::TargetRunning,
        target,
        app.clone(),
        TargetStatus::Running,
        format!("promoting to '{}'", app.name),
    )
    .reporting(PromotionStatus::Running)
}

/// `target.release_created` for the release made for a target.
pub(super) fn release_created_event(
    target: &promotion_target::Model,
    app: &ResourceRef,
    release: &release::Model,
) -> EventDraft {
    EventDraft::about_target(
        EventKind::TargetReleaseCreated,
        target,
        app.clone(),
        TargetStatus::Running,
        format!(
            "release v{} created on '{}' with image {}",
            release.version, app.name, release.image
        ),
    )
    .with_release(ReleaseRef {
        id: release.id,
        version: release.version,
    })
    .reporting(PromotionStatus::Running)
}

/// Releases for `news`, numbered from each app's `newest` version on (none: from 1),
/// in order; not stored.
pub(super) fn number_releases<'a>(
    news: impl Iterator<Item = &'a NewRelease>,
    newest: &HashMap<Uuid, i64>,
) -> Vec<release::Model> {
    let mut next: HashMap<Uuid, i64> = HashMap::new();
    let now = store::now();
    news.map(|new| {
        let version = next
            .entry(new.app_id)
            .or_insert_with(|| newest.get(&new.app_id).copied().unwrap_or(0) + 1);
        let model = release::Model {
            id: Uuid::new_v4(),
            app_id: new.app_id,
            version: *version,
            image: new.image.clone(),
            description: new.description.clone(),
            status: new.status.to_owned(),
            promoted_from_app_id: new.promoted_from_app_id,
            promoted_from_release_id: new.promoted_from_release_id,
            promoted_from_promotion_id: new.promoted_from_promotion_id,
            promotion_target_id: new.promotion_target_id,
            created_by_id: new.created_by_id,
            created_by_email: Some(new.created_by_email.clone()),
            // Set by the database as the row is inserted.
            config_change_id: None,
            created_at: now,
            updated_at: now,
        };
        *version += 1;
        model
    })
    .collect()
}

/// The auto-promotion trigger of a release delivered by a promotion.
pub(super) fn delivery_trigger(
    promotion: &promotion::Model,
    app: &ResourceRef,
    release: &release::Model,
) -> Trigger {
    Trigger {
        app_id: app.id,
        release_id: release.id,
        triggered_by: promotion
            .triggered_by
            .clone()
            .unwrap_or_else(|| promotion.created_by.clone()),
        reason: format!(
            "release v{} delivered to '{}' by promotion {}",
            release.version, app.name, promotion.id
        ),
    }
}

/// The event that tells a deployment's outcome.
pub(super) fn outcome_event(
    run: &Run,
    kind: EventKind,
    status: TargetStatus,
    message: String,
) -> EventDraft {
    EventDraft::about_target(kind, &run.target, run.app.clone(), status, message).with_release(
        ReleaseRef {
            id: run.release.id,
            version: run.release.version,
        },
    )
}

/// What an outcome makes of its target and release, and the event that tells it.
pub(super) struct OutcomeRecord {
    pub(super) target_status: TargetStatus,
    pub(super) release_state: ReleaseState,
    pub(super) error_message: String,
    pub(super) kind: EventKind,
    pub(super) message: String,
}

impl OutcomeRecord {
    /// A deploy into an app whose coupling has `verification`: the release becomes current
    /// and the target verifies until `deadline`.
    pub(super) fn verifying(
        run: &Run,
        verification: &Verification,
        deadline: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            target_status: TargetStatus::Verifying,
            release_state: ReleaseState::Succeeded,
            error_message: String::new(),
            kind: EventKind::TargetVerifying,
            message: format!(
                "release v{} is now current on '{}'; verifying {} until {}",
                run.release.version,
                run.app.name,
                verification.all_contexts().join(", "),
                deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        }
    }

    pub(super) fn of(run: &Run, outcome: &DeployOutcome) -> Self {
        match outcome {
            DeployOutcome::Deployed => Self {
                target_status: TargetStatus::Succeeded,
                release_state: ReleaseState::Succeeded,
                error_message: String::new(),
                kind: EventKind::TargetSucceeded,
                message: format!(
                    "release v{} is now current on '{}'",
                    run.release.version, run.app.name
                ),
            },
            DeployOutcome::Failed(reason) => Self {
                target_status: TargetStatus::Failed,
                release_state: ReleaseState::Failed,
                error_message: reason.clone(),
                kind: EventKind::TargetFailed,
                message: format!("deploying to '{}' failed: {reason}", run.app.name),
            },
        }
    }
}
