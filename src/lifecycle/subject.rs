//! What running a promotion's targets needs to know of it: its pipeline, source app and
//! source release, the names of its target apps, and the release each target gets.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::ClaimedTarget;
use crate::{
    domain::status::ReleaseState,
    error::{Error, Result},
    store::{self, entities::promotion_target, promotions::SubjectRow, NewRelease},
    views::ResourceRef,
};

/// A promotion as its steps see it, the same for all its targets.
#[derive(Debug, Clone)]
pub struct Subject {
    pub promotion_id: Uuid,
    pub pipeline: ResourceRef,
    pub source_app: ResourceRef,
    pub source_release: SourceRelease,
}

#[derive(Debug, Clone)]
pub struct SourceRelease {
    pub id: Uuid,
    pub version: i64,
    pub image: String,
}

impl Subject {
    pub(super) fn from_row(promotion_id: Uuid, row: SubjectRow) -> Self {
        Self {
            promotion_id,
            pipeline: ResourceRef {
                id: row.subject_pipeline_id,
                name: row.subject_pipeline_name,
            },
            source_app: ResourceRef {
                id: row.subject_source_app_id,
                name: row.subject_source_app_name,
            },
            source_release: SourceRelease {
                id: row.subject_source_release_id,
                version: row.subject_source_release_version,
                image: row.subject_source_release_image,
            },
        }
    }

    /// The targets with their apps and the releases they get, in order. A target whose
    /// app is not in `apps` is an internal error.
    pub fn claim(
        &self,
        targets: Vec<promotion_target::Model>,
        apps: &HashMap<Uuid, ResourceRef>,
    ) -> Result<Vec<ClaimedTarget>> {
        targets
            .into_iter()
            .map(|target| {
                let app = apps.get(&target.app_id).cloned().ok_or_else(|| {
                    Error::Internal(format!("target {}: its app is missing", target.id))
                })?;
                let new_release = self.new_release(&app, &target);
                Ok(ClaimedTarget {
                    target,
                    app,
                    new_release,
                })
            })
            .collect()
    }

    /// The release a target gets: the source release's image, noting where it came from.
    fn new_release(&self, app: &ResourceRef, target: &promotion_target::Model) -> NewRelease {
        NewRelease {
            app_id: app.id,
            image: self.source_release.image.clone(),
            description: format!(
                "promoted from '{}' v{}",
                self.source_app.name, self.source_release.version
            ),
            status: ReleaseState::Pending.as_str(),
            promoted_from_app_id: Some(self.source_app.id),
            promoted_from_release_id: Some(self.source_release.id),
            promoted_from_promotion_id: Some(self.promotion_id),
            promotion_target_id: Some(target.id),
        }
    }
}

/// The promotion's subject and the apps of `targets`, in one query, outside any lock.
pub async fn load_subject(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    targets: &[promotion_target::Model],
) -> Result<(Subject, HashMap<Uuid, ResourceRef>)> {
    let target_ids: Vec<Uuid> = targets.iter().map(|target| target.id).collect();
    let Some((subject, apps)) =
        store::promotions::subject_with_target_apps(db, promotion_id, &target_ids).await?
    else {
        return Err(Error::Internal(format!(
            "promotion {promotion_id}: it, its pipeline, its source app, its release or its targets are missing"
        )));
    };
    let apps = apps
        .into_iter()
        .map(|app| {
            (
                app.target_app_id,
                ResourceRef {
                    id: app.target_app_id,
                    name: app.target_app_name,
                },
            )
        })
        .collect();
    Ok((Subject::from_row(promotion_id, subject), apps))
}
