//! Releases: which one is each app's current release, and releases read by id.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement, Value,
};
use uuid::Uuid;

use super::{entities::release, parameters::placeholder};
use crate::domain::status::ReleaseState;

/// Each of `app_ids`' current release: its newest succeeded one. Apps without one are
/// left out.
pub async fn current_releases_of_apps(
    db: &impl ConnectionTrait,
    app_ids: &[Uuid],
) -> Result<Vec<release::Model>, DbErr> {
    current_releases_among(db, super::AppIds::Listed(app_ids)).await
}

/// The current release of each app among `apps`.
pub async fn current_releases_among(
    db: &impl ConnectionTrait,
    apps: super::AppIds<'_>,
) -> Result<Vec<release::Model>, DbErr> {
    if apps.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let (which_apps, app_values) = apps.sql(backend, "a.id", 2);
    // Per app, the releases index read backwards from the newest version to the first that
    // succeeded: one or a few rows, however many releases the app has. PostgreSQL reads
    // each app's row once, with a lateral join; SQLite has none, and finds the row by id.
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT r.* FROM apps a CROSS JOIN LATERAL (SELECT n.* FROM releases n \
             WHERE n.app_id = a.id AND n.status = {} ORDER BY n.version DESC LIMIT 1) r \
             WHERE {which_apps}",
            placeholder(backend, 1),
        ),
        _ => format!(
            "SELECT r.* FROM releases r WHERE r.id IN (SELECT (SELECT n.id FROM releases n \
             WHERE n.app_id = a.id AND n.status = {} ORDER BY n.version DESC LIMIT 1) \
             FROM apps a WHERE {which_apps})",
            placeholder(backend, 1),
        ),
    };
    let mut values = vec![Value::from(ReleaseState::Succeeded.as_str())];
    values.extend(app_values);
    release::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await
}

/// The releases among `ids` that exist.
pub async fn releases_by_id(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<release::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    release::Entity::find()
        .filter(release::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// Sets a release's state; `only_from`, when given, is the state it must be in.
pub async fn set_state(
    db: &impl ConnectionTrait,
    id: Uuid,
    state: ReleaseState,
    only_from: Option<ReleaseState>,
) -> Result<(), DbErr> {
    let mut update = release::Entity::update_many()
        .col_expr(release::Column::Status, state.as_str().into())
        .col_expr(release::Column::UpdatedAt, super::now().into())
        .filter(release::Column::Id.eq(id));
    if let Some(from) = only_from {
        update = update.filter(release::Column::Status.eq(from.as_str()));
    }
    update.exec(db).await?;
    Ok(())
}

/// One release, if it exists.
pub async fn release_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<release::Model>, DbErr> {
    release::Entity::find_by_id(id).one(db).await
}

/// The release of `app_id` with this version, if any.
pub async fn release_by_version(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    version: i64,
) -> Result<Option<release::Model>, DbErr> {
    release::Entity::find()
        .filter(release::Column::AppId.eq(app_id))
        .filter(release::Column::Version.eq(version))
        .one(db)
        .await
}

/// The releases of `app_id` newest first, older than version `before` when given, at most
/// `limit` of them.
pub async fn releases_newest_first(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    before: Option<i64>,
    limit: Option<u64>,
) -> Result<Vec<release::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = release::Entity::find()
        .filter(release::Column::AppId.eq(app_id))
        .order_by_desc(release::Column::Version);
    if let Some(version) = before {
        query = query.filter(release::Column::Version.lt(version));
    }
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    query.all(db).await
}

/// The releases of `app_id` oldest first, newer than version `after` when given, at most
/// `limit` of them: one range of the `(app_id, version)` index.
pub async fn releases_oldest_first(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<release::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = release::Entity::find()
        .filter(release::Column::AppId.eq(app_id))
        .order_by_asc(release::Column::Version)
        .limit(limit);
    if let Some(version) = after {
        query = query.filter(release::Column::Version.gt(version));
    }
    query.all(db).await
}

/// The version of the `n`th newest release of `app_id` (1 is the newest), if it has
/// that many.
pub async fn nth_newest_version(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    n: u64,
) -> Result<Option<i64>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    release::Entity::find()
        .select_only()
        .column(release::Column::Version)
        .filter(release::Column::AppId.eq(app_id))
        .order_by_desc(release::Column::Version)
        .offset(n.saturating_sub(1))
        .limit(1)
        .into_tuple()
        .one(db)
        .await
}

/// The releases whose image is exactly `image`, of apps not deleted, newest first, at most
/// `limit`.
pub async fn releases_with_image(
    db: &impl ConnectionTrait,
    image: &str,
    limit: u64,
) -> Result<Vec<release::Model>, DbErr> {
    use sea_orm::{sea_query::Query, QueryOrder, QuerySelect};
    let live_apps = Query::select()
        .column(super::entities::app::Column::Id)
        .from(super::entities::app::Entity)
        .and_where(super::entities::app::Column::DeletedAt.is_null())
        .to_owned();
    release::Entity::find()
        .filter(release::Column::Image.eq(image))
        .filter(release::Column::AppId.in_subquery(live_apps))
        .order_by_desc(release::Column::CreatedAt)
        .order_by_desc(release::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The releases of `app_id` in a range of versions: one range of the `(app_id, version)`
/// index, however many releases the app has.
pub async fn releases_in_version_range(
    db: &impl ConnectionTrait,
    app_id: Uuid,
    range: super::KeyRange<i64>,
) -> Result<Vec<release::Model>, DbErr> {
    let of_app = release::Entity::find().filter(release::Column::AppId.eq(app_id));
    super::in_key_range(of_app, release::Column::Version, range)
        .all(db)
        .await
}
