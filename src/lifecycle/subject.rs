//! What running a promotion's targets needs to know of it: its pipeline, source app and
//! source release, the names of its target apps, and the release each target gets.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};
use uuid::Uuid;

use super::ClaimedTarget;
use crate::{
    domain::status::ReleaseState,
    error::{Error, Result},
    store::{entities::promotion_target, NewRelease},
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

/// The columns a query selects for [`Subject::from_row`], from `promotions pr` joined
/// with its pipeline `p`, source app `a` and source release `r`.
pub(super) const SUBJECT_COLUMNS: &str = "p.id AS subject_pipeline_id, \
     p.name AS subject_pipeline_name, a.id AS subject_source_app_id, \
     a.name AS subject_source_app_name, r.id AS subject_source_release_id, \
     r.version AS subject_source_release_version, r.image AS subject_source_release_image";

/// The joins [`SUBJECT_COLUMNS`] reads from, after `FROM promotions pr`: deleted rows
/// included, since a promotion under way keeps its names.
pub(super) const SUBJECT_JOINS: &str = "JOIN pipelines p ON p.id = pr.pipeline_id \
     JOIN apps a ON a.id = pr.source_app_id JOIN releases r ON r.id = pr.source_release_id";

impl Subject {
    pub(super) fn from_row(promotion_id: Uuid, row: &sea_orm::QueryResult) -> Result<Self> {
        let get_uuid = |column: &str| row.try_get::<Uuid>("", column);
        let get_text = |column: &str| row.try_get::<String>("", column);
        Ok(Self {
            promotion_id,
            pipeline: ResourceRef {
                id: get_uuid("subject_pipeline_id")?,
                name: get_text("subject_pipeline_name")?,
            },
            source_app: ResourceRef {
                id: get_uuid("subject_source_app_id")?,
                name: get_text("subject_source_app_name")?,
            },
            source_release: SourceRelease {
                id: get_uuid("subject_source_release_id")?,
                version: row.try_get("", "subject_source_release_version")?,
                image: get_text("subject_source_release_image")?,
            },
        })
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

#[derive(FromQueryResult)]
struct TargetAppRow {
    target_app_id: Uuid,
    target_app_name: String,
}

/// The promotion's subject and the apps of `targets`, in one query, outside any lock.
pub async fn load_subject(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    targets: &[promotion_target::Model],
) -> Result<(Subject, HashMap<Uuid, ResourceRef>)> {
    let backend = db.get_database_backend();
    let placeholder = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    };
    let target_ids: Vec<String> = (0..targets.len()).map(|n| placeholder(n + 2)).collect();
    let sql = format!(
        "SELECT {SUBJECT_COLUMNS}, ta.id AS target_app_id, ta.name AS target_app_name \
         FROM promotions pr {SUBJECT_JOINS} \
         JOIN promotion_targets t ON t.promotion_id = pr.id \
         JOIN apps ta ON ta.id = t.app_id \
         WHERE pr.id = {} AND t.id IN ({})",
        placeholder(1),
        target_ids.join(", ")
    );
    let mut values: Vec<sea_orm::Value> = vec![promotion_id.into()];
    values.extend(targets.iter().map(|target| sea_orm::Value::from(target.id)));
    let rows = db
        .query_all(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let Some(first) = rows.first() else {
        return Err(Error::Internal(format!(
            "promotion {promotion_id}: it, its pipeline, its source app, its release or its targets are missing"
        )));
    };
    let subject = Subject::from_row(promotion_id, first)?;
    let apps = rows
        .iter()
        .map(|row| {
            let app = TargetAppRow::from_query_result(row, "")?;
            Ok((
                app.target_app_id,
                ResourceRef {
                    id: app.target_app_id,
                    name: app.target_app_name,
                },
            ))
        })
        .collect::<Result<_>>()?;
    Ok((subject, apps))
}
