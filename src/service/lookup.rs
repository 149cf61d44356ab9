//! Resolving references and turning stored rows into views, shared by the use cases.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

pub use crate::views::{
    app_ref, app_view, coupling_contexts, coupling_policy, coupling_stage, coupling_verification,
    pipeline_view, release_summary,
};
use crate::views::{PromotedFrom, ReleaseView, ResourceRef};
use crate::{
    domain::{access::Author, quoted, status::ReleaseState, ReleaseReference},
    error::{Error, Result},
    store::{
        self,
        entities::{app, pipeline, release},
        Reference,
    },
};

/// Parses a field that must hold a UUID.
pub fn parse_uuid(field: &str, value: &str) -> Result<Uuid> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Uuid::parse_str(value)
        .map_err(|_| Error::invalid(field, format!("{} is not a UUID", quoted(value))))
}

/// A reference to look up, or `None` when it cannot name anything: no name or id holds a
/// NUL character, and PostgreSQL cannot even compare one.
fn require_reference(field: &str, value: &str) -> Result<Option<Reference>> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if value.contains('\0') {
        return Ok(None);
    }
    Ok(Some(Reference::parse(value)))
}

/// Finds a live pipeline by UUID or name.
pub async fn find_pipeline(
    db: &impl ConnectionTrait,
    field: &str,
    value: &str,
) -> Result<pipeline::Model> {
    let found = match require_reference(field, value)? {
        None => None,
        Some(reference) => store::pipelines::live_pipeline(db, &reference).await?,
    };
    found.ok_or_else(|| Error::not_found("pipeline", value))
}

/// Finds a live app by UUID or name. A UUID that matches no id is also tried as a name,
/// because app names are long enough to look like one.
pub async fn find_app(db: &impl ConnectionTrait, field: &str, value: &str) -> Result<app::Model> {
    let found = match require_reference(field, value)? {
        None => None,
        Some(Reference::Id(id)) => match store::apps::live_app_by_id(db, id).await? {
            Some(found) => Some(found),
            None => store::apps::live_app_by_name(db, value).await?,
        },
        Some(Reference::Name(name)) => store::apps::live_app_by_name(db, &name).await?,
    };
    found.ok_or_else(|| Error::not_found("app", value))
}

/// Finds live apps by UUID or name, as [`find_app`] does each, in one query. Each value
/// gets its own answer, in order: an invalid reference's error, or the app if it exists.
pub async fn find_apps(
    db: &impl ConnectionTrait,
    references: &[(String, &str)],
) -> Result<Vec<Result<Option<app::Model>>>> {
    let parsed: Vec<Result<Option<Reference>>> = references
        .iter()
        .map(|(field, value)| require_reference(field, value))
        .collect();
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for (reference, (_, value)) in parsed.iter().zip(references) {
        match reference {
            Ok(Some(Reference::Id(id))) => {
                ids.push(*id);
                names.push((*value).to_owned());
            }
            Ok(Some(Reference::Name(name))) => names.push(name.clone()),
            _ => {}
        }
    }
    let live = store::apps::live_apps_by_ids_or_names(db, ids, names).await?;
    let by_id = |id: Uuid| live.iter().find(|app| app.id == id);
    let by_name = |name: &str| live.iter().find(|app| app.name == name);
    Ok(parsed
        .into_iter()
        .zip(references)
        .map(|(reference, (_, value))| {
            Ok(match reference? {
                None => None,
                Some(Reference::Id(id)) => by_id(id).or_else(|| by_name(value)).cloned(),
                Some(Reference::Name(name)) => by_name(&name).cloned(),
            })
        })
        .collect())
}

/// Finds a release of `app` by UUID, or by version as `7` or `v7`: 422 naming `field`
/// for anything else, 404 when there is no such release.
pub async fn find_release_of_app(
    db: &impl ConnectionTrait,
    app: &ResourceRef,
    field: &str,
    reference: &str,
) -> Result<release::Model> {
    let reference = reference.trim();
    let not_found = || {
        Error::NotFound(format!(
            "release {} of app '{}' not found",
            quoted(reference),
            app.name
        ))
    };
    let found = match ReleaseReference::parse(reference) {
        Some(ReleaseReference::Version(version)) => {
            return store::releases::release_by_version(db, app.id, version)
                .await?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "release v{version} of app '{}' not found",
                        app.name
                    ))
                });
        }
        Some(ReleaseReference::Id(id)) => store::releases::release_by_id(db, id)
            .await?
            .filter(|release| release.app_id == app.id),
        None => {
            return Err(Error::invalid(
                field,
                format!(
                    "{} is neither a release id nor a version such as 7 or v7",
                    quoted(reference)
                ),
            ))
        }
    };
    found.ok_or_else(not_found)
}

/// The app's current release: its newest succeeded one (the one query for it:
/// [`store::releases::current_releases_of_apps`]).
pub async fn current_release(
    db: &impl ConnectionTrait,
    app_id: Uuid,
) -> Result<Option<release::Model>> {
    Ok(store::releases::current_releases_of_apps(db, &[app_id])
        .await?
        .into_iter()
        .next())
}

/// Loads apps by id, deleted ones included, since history may point at them.
pub async fn apps_by_id(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, app::Model>> {
    Ok(store::apps::apps_by_id(db, ids.into_iter().collect())
        .await?
        .into_iter()
        .map(|model| (model.id, model))
        .collect())
}

/// Turns release rows of one app into views, resolving where promoted releases came from.
pub async fn release_views(
    db: &impl ConnectionTrait,
    owner: &app::Model,
    releases: Vec<release::Model>,
) -> Result<Vec<ReleaseView>> {
    let sources = apps_by_id(
        db,
        releases
            .iter()
            .filter_map(|release| release.promoted_from_app_id),
    )
    .await?;
    let current = current_release(db, owner.id)
        .await?
        .map(|release| release.id);
    releases
        .into_iter()
        .map(|model| {
            let status = ReleaseState::parse(&model.status).ok_or_else(|| {
                Error::Internal(format!(
                    "release {} has unknown status '{}'",
                    model.id, model.status
                ))
            })?;
            let promoted_from = match (
                model.promoted_from_app_id,
                model.promoted_from_release_id,
                model.promoted_from_promotion_id,
            ) {
                (Some(app_id), Some(release_id), Some(promotion_id)) => Some(PromotedFrom {
                    app: ResourceRef {
                        id: app_id,
                        name: sources
                            .get(&app_id)
                            .map(|source| source.name.clone())
                            .unwrap_or_default(),
                    },
                    release_id,
                    promotion_id,
                }),
                _ => None,
            };
            Ok(ReleaseView {
                id: model.id,
                app: app_ref(owner),
                version: model.version,
                image: model.image,
                description: model.description,
                status,
                promoted_from,
                current: current == Some(model.id),
                user: Author::stored(model.created_by_id, model.created_by_email),
                created_at: model.created_at,
                updated_at: model.updated_at,
            })
        })
        .collect()
}
