//! Release lineage: where one image runs, and where it ran.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{lookup::release_views, Releases};
use crate::{
    error::{Error, Result},
    store::{self, entities::release},
    views::ReleaseView,
};

/// The most releases a lineage lists.
pub const LINEAGE_LIMIT: u64 = 1_000;

impl Releases {
    /// Every release of a live app whose image is exactly `image`, newest first (at most
    /// [`LINEAGE_LIMIT`]), each with whether it is its app's current release: where a build
    /// runs, and where it ran.
    pub async fn with_image(&self, image: &str) -> Result<Vec<(ReleaseView, bool)>> {
        let image = image.trim();
        if image.is_empty() {
            return Err(Error::invalid("image", "is required: an image reference"));
        }
        if image.chars().count() > 1000 || image.chars().any(char::is_control) {
            return Err(Error::invalid(
                "image",
                "must be at most 1000 characters, without control characters",
            ));
        }
        let rows = store::releases::releases_with_image(&self.db, image, LINEAGE_LIMIT).await?;
        let mut app_ids: Vec<Uuid> = rows.iter().map(|row| row.app_id).collect();
        app_ids.sort();
        app_ids.dedup();
        let current: HashSet<Uuid> = store::releases::current_releases_of_apps(&self.db, &app_ids)
            .await?
            .into_iter()
            .map(|release| release.id)
            .collect();
        let owners = store::apps::apps_by_id(&self.db, app_ids).await?;
        let mut by_owner: HashMap<Uuid, Vec<release::Model>> = HashMap::new();
        for row in rows {
            by_owner.entry(row.app_id).or_default().push(row);
        }
        let mut views = Vec::new();
        for owner in &owners {
            let rows = by_owner.remove(&owner.id).unwrap_or_default();
            for view in release_views(&self.db, owner, rows).await? {
                let is_current = current.contains(&view.id);
                views.push((view, is_current));
            }
        }
        views.sort_by_key(|(view, _)| std::cmp::Reverse((view.created_at, view.id)));
        Ok(views)
    }
}
