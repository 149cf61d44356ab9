//! Conversions between views and protobuf messages, in one place for all services; those of
//! freezes (`freezes`) and of verification (`verification`) in files of their own.

use chrono::{DateTime, Utc};

mod audit;
mod freezes;
mod pipeline_events;
mod verification;

pub use audit::audit_event;
pub use freezes::{freeze, freeze_ref, frozen, new_freeze, time_from_proto};
pub use pipeline_events::{lineage, stage_diff, stream_item};
use verification::target_verification;
pub use verification::{verification_change, verification_to_proto};

use crate::{
    domain::{
        policy::PolicyChange,
        promotion::{EventKind, PromotionStatus, TargetStatus},
        stage::Stage,
        status::{ReleaseState, StatusState},
        InvalidField,
    },
    proto, views,
};

pub fn timestamp(time: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    })
}

pub fn stage_to_proto(stage: Stage) -> proto::Stage {
    match stage {
        Stage::Review => proto::Stage::Review,
        Stage::Development => proto::Stage::Development,
        Stage::Staging => proto::Stage::Staging,
        Stage::Production => proto::Stage::Production,
    }
}

/// A stage from the wire: `None` when unspecified, an error naming `field` when unknown.
/// A required enum field left at 0, or set to a number the enum does not have: the
/// message says which and lists the accepted names. A client that sent a REST-style string
/// such as `"staging"` through a converter that fell back to 0 learns what to send.
fn unaccepted_enum(field: &str, value: i32, unset: &str, accepted: &[&str]) -> InvalidField {
    let problem = if value == 0 {
        format!("must be set; 0 ({unset}) means unset")
    } else {
        format!("{value} is not a known value")
    };
    InvalidField::new(
        field,
        format!("{problem}; accepted values: {}", accepted.join(", ")),
    )
}

pub fn stage_from_proto(field: &str, value: i32) -> Result<Stage, InvalidField> {
    match proto::Stage::try_from(value) {
        Ok(proto::Stage::Review) => Ok(Stage::Review),
        Ok(proto::Stage::Development) => Ok(Stage::Development),
        Ok(proto::Stage::Staging) => Ok(Stage::Staging),
        Ok(proto::Stage::Production) => Ok(Stage::Production),
        Ok(proto::Stage::Unspecified) | Err(_) => Err(unaccepted_enum(
            field,
            value,
            proto::Stage::Unspecified.as_str_name(),
            &Stage::ALL.map(|stage| stage_to_proto(stage).as_str_name()),
        )),
    }
}

pub fn status_state_to_proto(state: StatusState) -> proto::StatusState {
    match state {
        StatusState::Pending => proto::StatusState::Pending,
        StatusState::Success => proto::StatusState::Success,
        StatusState::Failure => proto::StatusState::Failure,
        StatusState::Error => proto::StatusState::Error,
    }
}

/// A status state from the wire: `None` when unspecified, an error naming `field` when
/// unknown.
pub fn status_state_from_proto(field: &str, value: i32) -> Result<StatusState, InvalidField> {
    match proto::StatusState::try_from(value) {
        Ok(proto::StatusState::Pending) => Ok(StatusState::Pending),
        Ok(proto::StatusState::Success) => Ok(StatusState::Success),
        Ok(proto::StatusState::Failure) => Ok(StatusState::Failure),
        Ok(proto::StatusState::Error) => Ok(StatusState::Error),
        Ok(proto::StatusState::Unspecified) | Err(_) => Err(unaccepted_enum(
            field,
            value,
            proto::StatusState::Unspecified.as_str_name(),
            &StatusState::ALL.map(|state| status_state_to_proto(state).as_str_name()),
        )),
    }
}

fn release_state_to_proto(state: ReleaseState) -> proto::ReleaseState {
    match state {
        ReleaseState::Pending => proto::ReleaseState::Pending,
        ReleaseState::Succeeded => proto::ReleaseState::Succeeded,
        ReleaseState::Failed => proto::ReleaseState::Failed,
    }
}

fn resource_ref(reference: views::ResourceRef) -> Option<proto::ResourceRef> {
    Some(proto::ResourceRef {
        id: reference.id.to_string(),
        name: reference.name,
    })
}

pub fn pipeline(view: views::PipelineView) -> proto::Pipeline {
    proto::Pipeline {
        id: view.id.to_string(),
        name: view.name,
        description: view.description,
        created_at: timestamp(view.created_at),
        updated_at: timestamp(view.updated_at),
    }
}

pub fn coupling(view: views::CouplingView) -> proto::Coupling {
    proto::Coupling {
        id: view.id.to_string(),
        app: resource_ref(view.app),
        pipeline: resource_ref(view.pipeline),
        stage: stage_to_proto(view.stage) as i32,
        required_status_checks: Some(proto::RequiredStatusChecks {
            contexts: view.required_contexts,
        }),
        release: view.current_release.map(|release| proto::ReleaseSummary {
            id: release.id.to_string(),
            version: release.version,
            image: release.image,
            created_at: timestamp(release.created_at),
        }),
        created_at: timestamp(view.created_at),
        updated_at: timestamp(view.updated_at),
        promotion_policy: Some(proto::PromotionPolicy {
            auto_promote: Some(view.policy.auto_promote),
            required_approvals: Some(view.policy.required_approvals),
        }),
        verification: view.verification.map(verification_to_proto),
        frozen: view.frozen.as_ref().map(frozen),
    }
}

/// The parts of a policy a request sets.
pub fn policy_change(policy: Option<proto::PromotionPolicy>) -> PolicyChange {
    policy
        .map(|policy| PolicyChange {
            auto_promote: policy.auto_promote,
            required_approvals: policy.required_approvals,
        })
        .unwrap_or_default()
}

pub fn app(view: views::AppView) -> proto::App {
    proto::App {
        id: view.id.to_string(),
        name: view.name,
        created_at: timestamp(view.created_at),
        updated_at: timestamp(view.updated_at),
    }
}

pub fn release(view: views::ReleaseView) -> proto::Release {
    let eligible_for_rollback = view.eligible_for_rollback();
    proto::Release {
        id: view.id.to_string(),
        app: resource_ref(view.app),
        version: view.version,
        image: view.image,
        description: view.description,
        status: release_state_to_proto(view.status) as i32,
        promoted_from: view.promoted_from.map(|from| proto::PromotedFrom {
            app: resource_ref(from.app),
            release_id: from.release_id.to_string(),
            promotion_id: from.promotion_id.to_string(),
        }),
        current: view.current,
        eligible_for_rollback,
        user: Some(proto::ReleaseUser {
            id: view.user.id.map(|id| id.to_string()).unwrap_or_default(),
            email: view.user.email,
        }),
        created_at: timestamp(view.created_at),
        updated_at: timestamp(view.updated_at),
    }
}

pub fn release_status(view: views::ReleaseStatusView) -> proto::ReleaseStatus {
    proto::ReleaseStatus {
        id: view.id.to_string(),
        release_id: view.release_id.to_string(),
        context: view.context,
        name: view.name,
        state: status_state_to_proto(view.state) as i32,
        description: view.description,
        target_url: view.target_url,
        image_url: view.image_url,
        created_at: timestamp(view.created_at),
        updated_at: timestamp(view.updated_at),
    }
}

pub fn config_vars(vars: views::ConfigVars) -> proto::ConfigVars {
    proto::ConfigVars {
        vars: vars.into_iter().collect(),
        values_withheld: false,
    }
}

pub fn visible_config_vars(vars: views::VisibleConfigVars) -> proto::ConfigVars {
    let values_withheld = vars.values().any(Option::is_none);
    proto::ConfigVars {
        vars: vars
            .into_iter()
            .map(|(key, value)| (key, value.unwrap_or_default()))
            .collect(),
        values_withheld,
    }
}

fn promotion_status_to_proto(status: PromotionStatus) -> proto::PromotionStatus {
    match status {
        PromotionStatus::Pending => proto::PromotionStatus::Pending,
        PromotionStatus::Running => proto::PromotionStatus::Running,
        PromotionStatus::Successful => proto::PromotionStatus::Successful,
        PromotionStatus::Failed => proto::PromotionStatus::Failed,
        PromotionStatus::PartiallyFailed => proto::PromotionStatus::PartiallyFailed,
        PromotionStatus::Canceled => proto::PromotionStatus::Canceled,
        PromotionStatus::AwaitingApproval => proto::PromotionStatus::AwaitingApproval,
        PromotionStatus::Rejected => proto::PromotionStatus::Rejected,
    }
}

/// The domain's promotion state for a wire value; `None` for an unspecified or unknown one.
pub fn promotion_status_from_proto(value: i32) -> Option<PromotionStatus> {
    let wire = proto::PromotionStatus::try_from(value).ok()?;
    PromotionStatus::ALL
        .into_iter()
        .find(|status| promotion_status_to_proto(*status) == wire)
}

/// The domain's target state for a wire value; `None` for an unspecified or unknown one.
pub fn target_status_from_proto(value: i32) -> Option<TargetStatus> {
    let wire = proto::TargetStatus::try_from(value).ok()?;
    TargetStatus::ALL
        .into_iter()
        .find(|status| target_status_to_proto(*status) == wire)
}

fn target_status_to_proto(status: TargetStatus) -> proto::TargetStatus {
    match status {
        TargetStatus::Pending => proto::TargetStatus::Pending,
        TargetStatus::Running => proto::TargetStatus::Running,
        TargetStatus::Verifying => proto::TargetStatus::Verifying,
        TargetStatus::Succeeded => proto::TargetStatus::Succeeded,
        TargetStatus::Failed => proto::TargetStatus::Failed,
        TargetStatus::Canceled => proto::TargetStatus::Canceled,
    }
}

fn event_type_to_proto(kind: EventKind) -> proto::EventType {
    match kind {
        EventKind::PromotionCreated => proto::EventType::PromotionCreated,
        EventKind::TargetQueued => proto::EventType::TargetQueued,
        EventKind::TargetRunning => proto::EventType::TargetRunning,
        EventKind::TargetReleaseCreated => proto::EventType::TargetReleaseCreated,
        EventKind::TargetSucceeded => proto::EventType::TargetSucceeded,
        EventKind::TargetFailed => proto::EventType::TargetFailed,
        EventKind::TargetCanceled => proto::EventType::TargetCanceled,
        EventKind::PromotionFinished => proto::EventType::PromotionFinished,
        EventKind::PromotionAwaitingApproval => proto::EventType::PromotionAwaitingApproval,
        EventKind::ApprovalGranted => proto::EventType::ApprovalGranted,
        EventKind::ApprovalRejected => proto::EventType::ApprovalRejected,
        EventKind::TargetVerifying => proto::EventType::TargetVerifying,
        EventKind::TargetVerified => proto::EventType::TargetVerified,
        EventKind::TargetVerificationFailed => proto::EventType::TargetVerificationFailed,
        EventKind::TargetRolledBack => proto::EventType::TargetRolledBack,
    }
}

fn release_ref(release: views::ReleaseRef) -> proto::ReleaseRef {
    proto::ReleaseRef {
        id: release.id.to_string(),
        version: release.version,
    }
}

pub fn status_check(check: views::CheckRef) -> proto::StatusCheck {
    let stage = stage_to_proto(check.stage) as i32;
    proto::StatusCheck {
        app: Some(proto::ResourceRef {
            id: check.app_id.to_string(),
            name: check.app_name,
        }),
        stage,
        context: check.context,
    }
}

pub fn target_drift(drift: views::TargetDrift) -> proto::TargetDrift {
    proto::TargetDrift {
        app: resource_ref(drift.app),
        missing_on_target: drift.missing_on_target,
        missing_on_source: drift.missing_on_source,
    }
}

pub fn promotion(view: views::PromotionView) -> proto::Promotion {
    proto::Promotion {
        id: view.id.to_string(),
        pipeline: resource_ref(view.pipeline),
        source: Some(proto::PromotionSource {
            app: resource_ref(view.source_app),
            release: Some(release_ref(view.source_release)),
        }),
        status: promotion_status_to_proto(view.status) as i32,
        safe: view.safe,
        created_by: view.created_by,
        overridden_checks: view
            .overridden_checks
            .into_iter()
            .map(status_check)
            .collect(),
        request_id: view.request_id.unwrap_or_default(),
        created_at: timestamp(view.created_at),
        updated_at: timestamp(view.updated_at),
        triggered_by: view.triggered_by.unwrap_or_default(),
        required_approvals: view.required_approvals,
        approvals: view
            .approvals
            .into_iter()
            .map(|approval| proto::Approval {
                by: approval.by,
                comment: approval.comment,
                created_at: timestamp(approval.created_at),
            })
            .collect(),
        overridden_freezes: view.overridden_freezes.iter().map(freeze_ref).collect(),
    }
}

pub fn promotion_target(view: views::TargetView) -> proto::PromotionTarget {
    proto::PromotionTarget {
        id: view.id.to_string(),
        promotion_id: view.promotion_id.to_string(),
        app: resource_ref(view.app),
        release: view.release.map(release_ref),
        status: target_status_to_proto(view.status) as i32,
        error_message: view.error_message,
        created_at: timestamp(view.created_at),
        updated_at: timestamp(view.updated_at),
        verification: view.verification.map(target_verification),
    }
}

pub fn plan(view: views::PromotionPlan) -> proto::PromotionPlan {
    proto::PromotionPlan {
        pipeline: resource_ref(view.pipeline),
        source: Some(proto::PromotionSource {
            app: resource_ref(view.source_app),
            release: Some(release_ref(view.source_release)),
        }),
        source_stage: stage_to_proto(view.source_stage) as i32,
        target_stage: stage_to_proto(view.target_stage) as i32,
        targets: view
            .targets
            .into_iter()
            .map(|target| proto::PlannedTarget {
                app: resource_ref(target.app),
                busy_with_promotion_id: target
                    .busy_with
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                verification: target.verification.map(verification_to_proto),
            })
            .collect(),
        checks: view
            .checks
            .into_iter()
            .map(|verdict| proto::CheckVerdict {
                check: Some(status_check(verdict.check)),
                state: verdict
                    .state
                    .map(|state| status_state_to_proto(state) as i32),
                satisfied: verdict.satisfied,
                overridden: verdict.overridden,
            })
            .collect(),
        drift: view.drift.into_iter().map(target_drift).collect(),
        safe: view.safe,
        required_approvals: view.required_approvals,
        overridden_freezes: view.overridden_freezes.iter().map(freeze_ref).collect(),
    }
}

pub fn promotion_event(view: views::PromotionEventView) -> proto::PromotionEvent {
    proto::PromotionEvent {
        sequence: view.sequence,
        promotion_id: view.promotion_id.to_string(),
        r#type: event_type_to_proto(view.kind) as i32,
        name: view.kind.as_str().to_owned(),
        target_id: view.target_id.map(|id| id.to_string()).unwrap_or_default(),
        app: view.app.and_then(resource_ref),
        target_status: view
            .target_status
            .map(|status| target_status_to_proto(status) as i32)
            .unwrap_or_default(),
        promotion_status: promotion_status_to_proto(view.promotion_status) as i32,
        release: view.release.map(release_ref),
        message: view.message,
        created_at: timestamp(view.created_at),
        waiting_for_promotion_id: view
            .waiting_for
            .map(|id| id.to_string())
            .unwrap_or_default(),
        actor: view.actor,
        comment: view.comment,
        waiting_for_freeze: view.waiting_for_freeze.as_ref().map(freeze_ref),
    }
}
