//! What running a promotion's targets needs to know of it: its pipeline, source app and
//! source release, the names of its target apps, and the release each target gets.

use uuid::Uuid;

use crate::{
    domain::{access::Author, status::ReleaseState},
    store::{entities::promotion_target, promotions::SubjectRow, NewRelease},
    views::ResourceRef,
};

/// A promotion as its steps see it, the same for all its targets.
#[derive(Debug, Clone)]
pub struct Subject {
    pub promotion_id: Uuid,
    pub pipeline: ResourceRef,
    pub source_app: ResourceRef,
    pub source_release: SourceRelease,
    /// The promotion's creator, whom its releases are by.
    pub author: Author,
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
            author: Author::stored(row.subject_created_by_id, row.subject_created_by_email),
        }
    }

    /// The release a target gets: the source release's image, noting where it came from.
    pub(super) fn new_release(
        &self,
        app: &ResourceRef,
        target: &promotion_target::Model,
    ) -> NewRelease {
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
            created_by_id: self.author.id,
            created_by_email: self.author.email.clone(),
        }
    }
}
