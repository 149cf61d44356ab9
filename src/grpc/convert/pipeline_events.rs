//! Conversions of the pipeline event stream, the stage diff and release lineage.

use super::{
    coupling, freeze, frozen, pipeline, promotion, promotion_target, release, release_status,
    resource_ref, stage_to_proto, timestamp, verification_to_proto,
};
use crate::{
    pipeline_events::{
        hub::StreamItem,
        render::{PipelineEventView, PipelineSubject},
    },
    proto::{self, pipeline_event::Resource},
    service::{StageDiffView, TargetDiff},
    views::{ReleaseSummary, ReleaseView},
};

fn release_summary(summary: ReleaseSummary) -> proto::ReleaseSummary {
    proto::ReleaseSummary {
        id: summary.id.to_string(),
        version: summary.version,
        image: summary.image,
        created_at: timestamp(summary.created_at),
    }
}

fn pipeline_event(event: &PipelineEventView) -> proto::PipelineEvent {
    let mut status_app = None;
    let resource = match event.subject.clone() {
        PipelineSubject::Pipeline(view) => Resource::Pipeline(pipeline(view)),
        PipelineSubject::Coupling(view) => Resource::Coupling(coupling(view)),
        PipelineSubject::Release(view) => Resource::Release(release(view)),
        PipelineSubject::Status { app, status } => {
            status_app = resource_ref(app);
            Resource::Status(release_status(status))
        }
        PipelineSubject::Promotion(view) => Resource::Promotion(promotion(view)),
        PipelineSubject::Target(view) => Resource::Target(promotion_target(view)),
        PipelineSubject::Freeze(view) => Resource::Freeze(freeze(view)),
        PipelineSubject::App(app) => Resource::App(proto::AppChange {
            app: resource_ref(app),
        }),
        PipelineSubject::Gone { id, app } => Resource::Removed(proto::RemovedResource {
            id: id.to_string(),
            app: app.and_then(resource_ref),
        }),
    };
    proto::PipelineEvent {
        sequence: event.sequence,
        kind: event.kind.clone(),
        at: timestamp(event.at),
        resource: Some(resource),
        status_app,
    }
}

/// One item of a pipeline's stream.
pub fn stream_item(item: StreamItem) -> proto::PipelineEvent {
    match item {
        StreamItem::Event(event) => pipeline_event(&event),
        StreamItem::Reset { last } => proto::PipelineEvent {
            sequence: 0,
            kind: "reset".to_owned(),
            at: timestamp(crate::store::now()),
            resource: Some(Resource::Reset(proto::StreamReset {
                last_sequence: last,
            })),
            status_app: None,
        },
    }
}

fn target_diff(diff: TargetDiff) -> proto::DiffTarget {
    proto::DiffTarget {
        app: resource_ref(diff.app),
        current: diff.current.map(release_summary),
        image_differs: diff.image_differs,
        missing_on_target: diff.config_keys.missing_on_target,
        missing_on_source: diff.config_keys.missing_on_source,
        checks: diff
            .checks
            .into_iter()
            .map(|(context, state)| proto::DiffCheck {
                context,
                state: state.to_owned(),
            })
            .collect(),
        verification: diff.verification.map(verification_to_proto),
        frozen: diff.frozen.as_ref().map(frozen),
        promotable: diff.promotable,
        blocked_by: diff
            .blocked_by
            .into_iter()
            .map(|blocker| proto::DiffBlocker {
                kind: blocker.kind.to_owned(),
                context: blocker.context.unwrap_or_default(),
                message: blocker.message,
            })
            .collect(),
    }
}

pub fn stage_diff(view: StageDiffView) -> proto::DiffStagesResponse {
    proto::DiffStagesResponse {
        pipeline: resource_ref(view.pipeline),
        from_stage: stage_to_proto(view.from) as i32,
        to_stage: stage_to_proto(view.to) as i32,
        source_app: resource_ref(view.source_app),
        source_release: Some(release_summary(view.source_release)),
        targets: view.targets.into_iter().map(target_diff).collect(),
    }
}

pub fn lineage(releases: Vec<(ReleaseView, bool)>) -> proto::FindReleasesResponse {
    proto::FindReleasesResponse {
        releases: releases
            .into_iter()
            .map(|(view, current)| proto::ReleaseInLineage {
                release: Some(release(view)),
                current,
            })
            .collect(),
    }
}
