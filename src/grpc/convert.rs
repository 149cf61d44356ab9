//! Conversions between views and protobuf messages, in one place for all services.

use chrono::{DateTime, Utc};

use crate::{
    domain::{
        stage::Stage,
        status::{ReleaseState, StatusState},
        InvalidField,
    },
    proto,
    service::views,
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
pub fn stage_from_proto(field: &str, value: i32) -> Result<Option<Stage>, InvalidField> {
    match proto::Stage::try_from(value) {
        Ok(proto::Stage::Unspecified) => Ok(None),
        Ok(proto::Stage::Review) => Ok(Some(Stage::Review)),
        Ok(proto::Stage::Development) => Ok(Some(Stage::Development)),
        Ok(proto::Stage::Staging) => Ok(Some(Stage::Staging)),
        Ok(proto::Stage::Production) => Ok(Some(Stage::Production)),
        Err(_) => Err(InvalidField::new(field, format!("{value} is not a stage"))),
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
pub fn status_state_from_proto(
    field: &str,
    value: i32,
) -> Result<Option<StatusState>, InvalidField> {
    match proto::StatusState::try_from(value) {
        Ok(proto::StatusState::Unspecified) => Ok(None),
        Ok(proto::StatusState::Pending) => Ok(Some(StatusState::Pending)),
        Ok(proto::StatusState::Success) => Ok(Some(StatusState::Success)),
        Ok(proto::StatusState::Failure) => Ok(Some(StatusState::Failure)),
        Ok(proto::StatusState::Error) => Ok(Some(StatusState::Error)),
        Err(_) => Err(InvalidField::new(
            field,
            format!("{value} is not a status state"),
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
    }
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
