//! Row locks: the modes each kind of work takes on app, pipeline and promotion rows (see
//! the lock order in [`crate::lifecycle`]), the queue's clock read under them, and the
//! soft delete that waits for all of them.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{entities, now};

/// The live row with this id of a soft-deleted table (apps, pipelines), locked against
/// deletion until the caller's transaction ends (`FOR SHARE` on PostgreSQL; SQLite's
/// single connection serializes transactions). `None` once the row is deleted: a delete
/// that committed first is seen, one that runs later waits for the caller.
pub async fn lock_live<E>(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Column: SoftDeleteColumns,
{
    live::<E>(id).lock_shared().one(db).await
}

/// The row with this id, unless it is deleted.
fn live<E>(id: Uuid) -> sea_orm::Select<E>
where
    E: EntityTrait,
    E::Column: SoftDeleteColumns,
{
    E::find()
        .filter(E::Column::id().eq(id))
        .filter(E::Column::deleted_at().is_null())
}

/// The ids of the live apps among `app_ids`, locked against deletion in one statement,
/// in id order, for work on the apps the queue has already ordered (the engine's steps).
///
/// `FOR KEY SHARE` on PostgreSQL: it waits for a delete ([`mark_deleted`] locks
/// `FOR UPDATE`), but not for work joining the apps' queues
/// ([`lock_apps_to_join_queues`]), which lines up behind this work and never changes it.
pub async fn lock_live_apps(
    db: &impl ConnectionTrait,
    app_ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    live_apps_in_id_order(app_ids)
        .lock(sea_orm::sea_query::LockType::KeyShare)
        .into_tuple()
        .all(db)
        .await
}

/// A live app locked by [`lock_live_apps_for_batch`].
#[derive(Debug, sea_orm::FromQueryResult)]
pub struct LiveAppForBatch {
    pub id: Uuid,
    /// Whether it feeds an auto-promote coupling (see [`super::triggers`]).
    pub feeds_auto_promotion: bool,
}

/// Locks the live apps among `app_ids` (sorted) like [`lock_live_apps`], and reads
/// whether each one feeds auto-promotion, in one statement.
pub async fn lock_live_apps_for_batch(
    db: &impl ConnectionTrait,
    app_ids: &[Uuid],
) -> Result<Vec<LiveAppForBatch>, DbErr> {
    use sea_orm::{FromQueryResult, Statement};
    if app_ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let lock = match backend {
        DbBackend::Postgres => " FOR KEY SHARE",
        _ => "",
    };
    let sql = format!(
        "SELECT a.id, {} AS feeds_auto_promotion \
         FROM apps a WHERE a.id IN ({}) AND a.deleted_at IS NULL ORDER BY a.id{lock}",
        super::triggers::feeds_auto_promotion("a.id"),
        super::placeholders(backend, 1, app_ids.len()),
    );
    LiveAppForBatch::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        app_ids.iter().map(|id| sea_orm::Value::from(*id)),
    ))
    .all(db)
    .await
}

/// The advisory-lock space of release numbering: the two-key form, which never meets
/// the single-key locks taken elsewhere.
const RELEASE_NUMBERING: i32 = 0x7265_6c76;

/// The advisory key of an app's release numbering. Two apps may share a key; they then
/// only number their releases one after the other.
fn release_numbering_key(app_id: Uuid) -> i32 {
    let bits = app_id.as_u128();
    let folded =
        (bits as u32) ^ ((bits >> 32) as u32) ^ ((bits >> 64) as u32) ^ ((bits >> 96) as u32);
    folded as i32
}

/// Takes the numbering of `app_ids`' next releases until the transaction ends, then
/// reads each one's newest version (absent when it has none). Every writer of a new
/// release calls this first, so concurrent creates, rollbacks and promotion targets on
/// one app number their releases one after the other, the first one included.
///
/// On PostgreSQL these are transaction-scoped advisory locks, taken in key order and
/// after every row lock the writer needs (the lock order in [`crate::lifecycle`]), so
/// that no two writers wait for each other in a cycle. The versions are read in a
/// statement of their own, whose snapshot sees what the previous holder committed.
/// SQLite runs one writer at a time, which serializes numbering already.
pub async fn lock_release_numbering(
    db: &impl ConnectionTrait,
    app_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, i64>, DbErr> {
    use sea_orm::Statement;
    if app_ids.is_empty() {
        return Ok(Default::default());
    }
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        let mut keys: Vec<i32> = app_ids.iter().copied().map(release_numbering_key).collect();
        keys.sort_unstable();
        keys.dedup();
        let keys: Vec<String> = keys.iter().map(i32::to_string).collect();
        // `unnest` yields the array in order, and the locks are taken row by row.
        db.execute(Statement::from_string(
            backend,
            format!(
                "SELECT pg_advisory_xact_lock({RELEASE_NUMBERING}, key) \
                 FROM unnest(ARRAY[{}]::int4[]) AS key",
                keys.join(", ")
            ),
        ))
        .await?;
    }
    let sql = format!(
        "SELECT app_id, MAX(version) AS newest FROM releases WHERE app_id IN ({}) GROUP BY app_id",
        super::placeholders(backend, 1, app_ids.len()),
    );
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            sql,
            app_ids.iter().map(|id| sea_orm::Value::from(*id)),
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get::<Uuid>("", "app_id")?,
                row.try_get::<i64>("", "newest")?,
            ))
        })
        .collect()
}

/// The ids of the live apps among `app_ids`, in id order, the order locks are taken in.
fn live_apps_in_id_order(app_ids: &[Uuid]) -> sea_orm::Select<entities::app::Entity> {
    use entities::app;
    use sea_orm::QueryOrder;
    app::Entity::find()
        .select_only()
        .column(app::Column::Id)
        .filter(app::Column::Id.is_in(app_ids.iter().copied()))
        .filter(app::Column::DeletedAt.is_null())
        .order_by_asc(app::Column::Id)
}

/// The ids of the live apps among `app_ids`, locked in one statement in id order, for
/// work about to join their queues: two transactions joining one app's queue take their
/// places one after the other, each seeing the other's committed work (on SQLite,
/// transactions are serialized anyway). Pair with [`queue_clock`].
///
/// `FOR NO KEY UPDATE` on PostgreSQL: it excludes other joins and deletes, and lets the
/// engine's steps on work already queued ([`lock_live_apps`]) go on meanwhile.
pub async fn lock_apps_to_join_queues(
    db: &impl ConnectionTrait,
    app_ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    live_apps_in_id_order(app_ids)
        .lock(sea_orm::sea_query::LockType::NoKeyUpdate)
        .into_tuple()
        .all(db)
        .await
}

/// The time work joins a queue: read once its apps are locked
/// ([`lock_apps_to_join_queues`]), from the database's clock on PostgreSQL, so that every
/// replica orders queues by one clock and later joins always sort later.
pub async fn queue_clock(
    db: &impl ConnectionTrait,
) -> Result<chrono::DateTime<chrono::Utc>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(now());
    }
    let row = db
        .query_one(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT clock_timestamp() AS now",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("the database did not tell the time".into()))?;
    row.try_get::<chrono::DateTime<chrono::Utc>>("", "now")
}

/// What [`lock_to_create_promotion`] found live, and locked.
#[derive(Debug, PartialEq, Eq)]
pub struct LiveToCreate {
    pub pipeline: bool,
    pub source_app: bool,
    /// The live target apps, in id order.
    pub targets: Vec<Uuid>,
}

/// Takes a new promotion's locks in the lock order: its pipeline and then its source app
/// against deletion, like [`lock_live`], and then its
/// target apps to join their queues, like [`lock_apps_to_join_queues`]. On PostgreSQL in
/// one statement.
pub async fn lock_to_create_promotion(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
    source_app_id: Uuid,
    target_ids: &[Uuid],
) -> Result<LiveToCreate, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let placeholder = |n: usize| super::placeholder(backend, n);
    let share = if postgres { " FOR SHARE" } else { "" };
    let mut sql = format!(
        "SELECT (SELECT id FROM pipelines WHERE id = {} AND deleted_at IS NULL{share}) \
         AS pipeline, (SELECT id FROM apps WHERE id = {} AND deleted_at IS NULL{share}) \
         AS app",
        placeholder(1),
        placeholder(2),
    );
    let mut values: Vec<sea_orm::Value> = vec![pipeline_id.into(), source_app_id.into()];
    if postgres && !target_ids.is_empty() {
        let ids: Vec<String> = (0..target_ids.len()).map(|n| placeholder(n + 3)).collect();
        sql.push_str(&format!(
            ", (SELECT string_agg(id::text, ' ') FROM (SELECT id FROM apps \
             WHERE id IN ({}) AND deleted_at IS NULL ORDER BY id FOR NO KEY UPDATE) AS joining) \
             AS targets",
            ids.join(", ")
        ));
        values.extend(target_ids.iter().map(|id| sea_orm::Value::from(*id)));
    }
    let row = db
        .query_one(sea_orm::Statement::from_sql_and_values(
            backend, sql, values,
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("locking a new promotion's rows returned no row".into()))?;
    let pipeline: Option<Uuid> = row.try_get("", "pipeline")?;
    let source_app: Option<Uuid> = row.try_get("", "app")?;
    let targets = if !postgres {
        lock_apps_to_join_queues(db, target_ids).await?
    } else if target_ids.is_empty() {
        Vec::new()
    } else {
        let joined: Option<String> = row.try_get("", "targets")?;
        let mut live = joined
            .unwrap_or_default()
            .split_whitespace()
            .map(|id| Uuid::parse_str(id).map_err(|error| DbErr::Custom(error.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        live.sort();
        live
    };
    Ok(LiveToCreate {
        pipeline: pipeline.is_some(),
        source_app: source_app.is_some(),
        targets,
    })
}

/// The promotion row, locked for update until the caller's transaction ends.
pub async fn lock_promotion(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Option<entities::promotion::Model>, DbErr> {
    entities::promotion::Entity::find_by_id(promotion_id)
        .lock_exclusive()
        .one(db)
        .await
}

/// Marks a live app or pipeline row deleted. Exactly one of several concurrent deletes
/// changes the row (the others wait for its lock and then find it deleted), so the
/// caller knows whether it was the one.
///
/// The row is locked `FOR UPDATE` first, the one mode that waits for every other lock on
/// it, the engine's `FOR KEY SHARE` ([`lock_live_apps`]) included: a delete never commits
/// while a step on the app is under way.
pub async fn mark_deleted<E>(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr>
where
    E: EntityTrait,
    E::Column: SoftDeleteColumns,
{
    let locked = live::<E>(id).lock_exclusive().one(db).await?;
    if locked.is_none() {
        return Ok(false);
    }
    let now = now();
    let result = E::update_many()
        .col_expr(E::Column::deleted_at(), Some(now).into())
        .col_expr(E::Column::updated_at(), now.into())
        .filter(E::Column::id().eq(id))
        .filter(E::Column::deleted_at().is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The columns a soft-deleted table shares.
pub trait SoftDeleteColumns: ColumnTrait {
    fn id() -> Self;
    fn deleted_at() -> Self;
    fn updated_at() -> Self;
}

impl SoftDeleteColumns for entities::app::Column {
    fn id() -> Self {
        Self::Id
    }
    fn deleted_at() -> Self {
        Self::DeletedAt
    }
    fn updated_at() -> Self {
        Self::UpdatedAt
    }
}

impl SoftDeleteColumns for entities::pipeline::Column {
    fn id() -> Self {
        Self::Id
    }
    fn deleted_at() -> Self {
        Self::DeletedAt
    }
    fn updated_at() -> Self {
        Self::UpdatedAt
    }
}
