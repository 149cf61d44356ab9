//! What a watcher receives for a stored pipeline event: the resource it names, as it
//! stands when the event is sent, or only its id once the resource is gone.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::resource_of_kind;
use crate::{
    error::{Error, Result},
    service::Services,
    store::entities::pipeline_event,
    views::{
        CouplingView, FreezeView, PipelineView, PromotionView, ReleaseStatusView, ReleaseView,
        ResourceRef, TargetView,
    },
};

/// One numbered change in a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineEventView {
    pub pipeline_id: Uuid,
    pub sequence: i64,
    /// `<resource>.<verb>`, for example `status.updated`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub subject: PipelineSubject,
}

/// The resource a pipeline event is about.
#[derive(Debug, Clone)]
pub enum PipelineSubject {
    Pipeline(PipelineView),
    Coupling(CouplingView),
    Release(ReleaseView),
    Status {
        app: ResourceRef,
        status: ReleaseStatusView,
    },
    Promotion(PromotionView),
    Target(TargetView),
    Freeze(FreezeView),
    /// An app whose config vars changed (key names are in the audit log, values nowhere),
    /// or that was deleted.
    App(ResourceRef),
    /// A resource that no longer exists: deleted since, or by this very change.
    Gone {
        id: Uuid,
        app: Option<ResourceRef>,
    },
}

/// Renders a stored event with its resource as it stands now; `Err` only while the database
/// is unavailable.
pub async fn render(services: &Services, row: &pipeline_event::Model) -> Result<PipelineEventView> {
    let id = row.subject_id;
    let app = row.app_id.map(|app_id| ResourceRef {
        id: app_id,
        name: row.app_name.clone(),
    });
    let gone = || PipelineSubject::Gone {
        id,
        app: app.clone(),
    };
    let loaded = match (resource_of_kind(&row.kind), row.kind.ends_with(".deleted")) {
        (_, true) => Ok(gone()),
        ("pipeline", _) => services
            .pipelines
            .get(&id.to_string())
            .await
            .map(PipelineSubject::Pipeline),
        ("coupling", _) => services
            .couplings
            .get(&id.to_string())
            .await
            .map(PipelineSubject::Coupling),
        ("release", _) => match &app {
            Some(app) => services
                .releases
                .get(&app.id.to_string(), &id.to_string())
                .await
                .map(PipelineSubject::Release),
            None => Ok(gone()),
        },
        ("status", _) => match &app {
            Some(app) => services
                .releases
                .status(id)
                .await
                .map(|status| PipelineSubject::Status {
                    app: app.clone(),
                    status,
                }),
            None => Ok(gone()),
        },
        ("promotion" | "approval", _) => services
            .promotions
            .get(&id.to_string())
            .await
            .map(PipelineSubject::Promotion),
        ("target", _) => services
            .promotions
            .target(id)
            .await
            .map(PipelineSubject::Target),
        ("freeze", _) => services
            .freezes
            .get(row.pipeline_id, id)
            .await
            .map(PipelineSubject::Freeze),
        _ => Ok(match &app {
            Some(app) => PipelineSubject::App(app.clone()),
            None => gone(),
        }),
    };
    let subject = match loaded {
        Ok(subject) => subject,
        Err(Error::NotFound(_)) => gone(),
        // The database is away: the event is sent once it answers again.
        Err(error @ Error::Unavailable(_)) => return Err(error),
        // A resource that cannot be rendered must not hold up the events after it.
        Err(error) => {
            error.log_cause();
            gone()
        }
    };
    Ok(PipelineEventView {
        pipeline_id: row.pipeline_id,
        sequence: row.sequence,
        kind: row.kind.clone(),
        at: row.created_at,
        subject,
    })
}
