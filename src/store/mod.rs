//! Storage: the sea-orm entities, the connection and migrations, and every statement
//! written out in SQL, in a module named after what it stores (`promotions`, `targets`,
//! `events`, `releases`, `release_statuses`, `triggers`, `apps`, `votes`, the leases on
//! work and the per-app `queue`, and the row locks in `locks`). Callers get typed rows
//! back.

pub mod apps;
pub mod audit;
pub mod config_vars;
pub mod couplings;
pub mod entities;
pub mod events;
pub mod freezes;
pub mod leases;
mod locks;
mod parameters;
pub mod pipeline_events;
pub mod pipelines;
pub mod promotions;
pub mod queue;
mod ranges;
pub mod release_statuses;
pub mod releases;
pub mod rollbacks;
pub mod targets;
pub mod tokens;
pub mod triggers;
pub mod verifications;
pub mod votes;

pub use locks::{
    lock_apps_to_join_queues, lock_live, lock_live_apps, lock_live_apps_for_batch, lock_promotion,
    lock_release_numbering, lock_to_create_promotion, mark_deleted, queue_clock, LiveAppForBatch,
    LiveToCreate, SoftDeleteColumns,
};
pub use parameters::{placeholder, placeholders, AppIds, Parameters};
pub use ranges::{in_key_range, KeyRange};

use std::time::Duration;

use chrono::Timelike;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Set, SqlErr, TransactionTrait,
};
use uuid::Uuid;

/// The default database: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://pipelines.db?mode=rwc";

/// Opens the database named by `url` and prepares the connection for the service.
///
/// SQLite runs with a single connection: the embedded mode serves one process, and one
/// writer at a time is what SQLite allows anyway, so requests queue in the pool instead of
/// failing with `SQLITE_BUSY`.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_pool(url, REQUEST_POOL_SIZE).await
}

/// The most connections the request pool opens on PostgreSQL.
const REQUEST_POOL_SIZE: u32 = 20;

/// The process's connection pools.
#[derive(Clone)]
pub struct Pools {
    /// What requests use.
    pub requests: DatabaseConnection,
    /// The engine's own, on PostgreSQL; `None` where it shares the request pool (SQLite).
    pub engine: Option<DatabaseConnection>,
}

impl Pools {
    /// The connections the engine uses.
    pub fn engine(&self) -> &DatabaseConnection {
        self.engine.as_ref().unwrap_or(&self.requests)
    }

    /// Each distinct pool with its name (`requests`, `engine`).
    pub fn named(&self) -> Vec<(&'static str, &DatabaseConnection)> {
        let mut named = vec![("requests", &self.requests)];
        named.extend(self.engine.as_ref().map(|engine| ("engine", engine)));
        named
    }
}

/// The engine's own connections beside `requests`: on PostgreSQL a pool of its own, so
/// that requests queued for the request pool (a burst of creates, say) never hold back
/// the steps that finish the work they queue behind. SQLite has one connection, which the
/// engine shares.
///
/// The engine runs `parallel_targets` groups of steps at once, one statement at a time
/// each, beside its claim loop and the announcements of waiting targets.
pub async fn with_engine_pool(
    url: &str,
    requests: DatabaseConnection,
    parallel_targets: usize,
) -> Result<Pools, DbErr> {
    if requests.get_database_backend() != DbBackend::Postgres {
        return Ok(Pools {
            requests,
            engine: None,
        });
    }
    let size = u32::try_from(parallel_targets)
        .unwrap_or(u32::MAX)
        .saturating_add(2);
    let engine = connect_pool(url, size).await?;
    Ok(Pools {
        requests,
        engine: Some(engine),
    })
}

/// Opens a pool of at most `size` connections to the database named by `url`.
async fn connect_pool(url: &str, size: u32) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("postgres") {
        check_postgres_reachable(url).await?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        options.max_connections(1).min_connections(1);
    } else {
        options.max_connections(size).min_connections(1);
    }
    let db = Database::connect(options)
        .await
        .map_err(|error| describe_sqlite_error(url, error))?;
    if db.get_database_backend() == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode = WAL").await?;
        db.execute_unprepared("PRAGMA foreign_keys = ON").await?;
        db.execute_unprepared("PRAGMA busy_timeout = 10000").await?;
    }
    Ok(db)
}

/// The PostgreSQL channel that carries "promotion P has new events" between processes.
pub const EVENTS_CHANNEL: &str = "pipelines_events";

/// A column for a statement that returns rows of `promotion_events` (on PostgreSQL): for
/// each row, it tells other processes that the promotion has new events, which app the
/// event was about (its releases may have changed), and which process wrote it (the
/// statement's parameter `origin_parameter`), in the payload
/// `<promotion> <app> <origin>`, the nil UUID standing for no app. The notifications are
/// delivered when the transaction commits, and PostgreSQL delivers the identical ones of
/// one transaction once. Older processes wrote `<promotion>` or `<promotion> <app>`, and
/// read the first two words of this.
pub fn notifying_promotion_changed(origin_parameter: &str) -> String {
    format!(
        "pg_notify('{EVENTS_CHANNEL}', promotion_id::text || ' ' || \
         COALESCE(app_id, '{}'::uuid)::text || ' ' || {origin_parameter}) IS NULL AS notified",
        Uuid::nil()
    )
}

/// A payload of [`notifying_promotion_changed`], read.
#[derive(Debug, PartialEq, Eq)]
pub struct PromotionChanged<'a> {
    pub promotion_id: Uuid,
    pub app_id: Option<Uuid>,
    /// The process that wrote it; `None` from older processes.
    pub origin: Option<&'a str>,
}

/// Reads a payload sent by [`notifying_promotion_changed`], or by older processes.
pub fn parse_promotion_changed(payload: &str) -> Option<PromotionChanged<'_>> {
    let mut parts = payload.split(' ');
    let promotion_id = Uuid::parse_str(parts.next()?).ok()?;
    let app_id = match parts.next() {
        Some(app) => Some(Uuid::parse_str(app).ok()?).filter(|id| !id.is_nil()),
        None => None,
    };
    let origin = parts.next().filter(|origin| !origin.is_empty());
    Some(PromotionChanged {
        promotion_id,
        app_id,
        origin,
    })
}

/// Sends `payload` on a PostgreSQL channel (delivered when the caller's transaction
/// commits, or at once outside one). Nothing on SQLite, which has one process.
pub async fn notify(db: &impl ConnectionTrait, channel: &str, payload: &str) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [channel.into(), payload.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Tells the other processes (on PostgreSQL) that a promotion changed without a new event,
/// in the payload of [`notifying_promotion_changed`], so that they reread it.
pub async fn announce_promotion_changed(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    origin: &str,
) -> Result<(), DbErr> {
    let payload = format!("{promotion_id} {} {origin}", Uuid::nil());
    notify(db, EVENTS_CHANNEL, &payload).await
}

/// How long start-up waits for PostgreSQL to answer before saying why it cannot.
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// Opens one connection to PostgreSQL before the pool is built, so that a wrong URL fails
/// within seconds with the reason: which host, and whether it refused, rejected the login
/// or has no such database.
async fn check_postgres_reachable(url: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::{postgres::PgConnectOptions, ConnectOptions as _, Connection as _};
    let options: PgConnectOptions = url
        .parse()
        .map_err(|error| DbErr::Custom(format!("the database URL is not valid: {error}")))?;
    let place = format!("{}:{}", options.get_host(), options.get_port());
    let user = options.get_username().to_owned();
    let database = options.get_database().unwrap_or(&user).to_owned();
    let attempt = tokio::time::timeout(FIRST_CONNECT_TIMEOUT, options.connect()).await;
    let error = match attempt {
        Ok(Ok(connection)) => {
            connection.close().await.ok();
            return Ok(());
        }
        Ok(Err(error)) => error,
        Err(_) => {
            return Err(DbErr::Custom(format!(
                "PostgreSQL at {place} did not answer within {} s",
                FIRST_CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    use sea_orm::sqlx::Error as SqlxError;
    let reason = match &error {
        SqlxError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("cannot connect to PostgreSQL at {place}: connection refused (is it running, and on that port?)")
        }
        SqlxError::Io(io) => format!("cannot connect to PostgreSQL at {place}: {io}"),
        SqlxError::Database(db) => match db.code().as_deref() {
            Some("28P01") | Some("28000") => format!(
                "PostgreSQL at {place} rejected the login of user '{user}': {}",
                db.message()
            ),
            Some("3D000") => format!("PostgreSQL at {place} has no database '{database}'"),
            _ => format!(
                "PostgreSQL at {place} refused the connection: {}",
                db.message()
            ),
        },
        other => format!("cannot connect to PostgreSQL at {place}: {other}"),
    };
    Err(DbErr::Custom(reason))
}

/// Says which SQLite file could not be opened.
fn describe_sqlite_error(url: &str, error: DbErr) -> DbErr {
    match url.strip_prefix("sqlite://") {
        Some(rest) => {
            let path = rest.split('?').next().unwrap_or(rest);
            DbErr::Custom(format!(
                "cannot open the SQLite database '{path}' (does its directory exist, and may this user write there?): {error}"
            ))
        }
        None => error,
    }
}

/// A database error as a person reads it: the message alone for the ones this module
/// wrote, without sea-orm's category prefix.
pub fn describe(error: &DbErr) -> String {
    match error {
        DbErr::Custom(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Whether the database answers a trivial query.
pub async fn is_reachable(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// Whether an error is a unique-constraint violation, which concurrent writers turn into
/// ALREADY_EXISTS or a retry.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// A unique violation as ALREADY_EXISTS with the message `taken` gives, any other error as
/// itself: for inserting what has a unique name.
pub fn taken_or(error: DbErr, taken: impl FnOnce() -> String) -> crate::error::Error {
    if is_unique_violation(&error) {
        crate::error::Error::AlreadyExists(taken())
    } else {
        error.into()
    }
}

/// A reference by UUID or by name, as every `{app}` and `{pipeline}` parameter accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Id(Uuid),
    Name(String),
}

impl Reference {
    pub fn parse(value: &str) -> Reference {
        match Uuid::parse_str(value) {
            Ok(id) => Reference::Id(id),
            Err(_) => Reference::Name(value.to_owned()),
        }
    }
}

/// A release to record with the app's next version.
#[derive(Debug, Clone)]
pub struct NewRelease {
    pub app_id: Uuid,
    pub image: String,
    pub description: String,
    pub status: &'static str,
    pub promoted_from_app_id: Option<Uuid>,
    pub promoted_from_release_id: Option<Uuid>,
    pub promoted_from_promotion_id: Option<Uuid>,
    pub promotion_target_id: Option<Uuid>,
    /// Who made it: the token's id, and its email or name.
    pub created_by_id: Option<Uuid>,
    pub created_by_email: String,
}

const RELEASE_VERSION_ATTEMPTS: usize = 50;

/// Inserts a release with the app's next version, numbered under
/// [`lock_release_numbering`], which the caller's transaction holds until it ends.
///
/// A process of an earlier version numbers without that lock and may still take the same
/// version first; the unique index on (app, version) then lets exactly one win, and this
/// one retries with the next number. Each attempt runs in its own (nested) transaction
/// so that a lost race does not abort the enclosing one on PostgreSQL.
pub async fn insert_release_with_next_version<C>(
    db: &C,
    new: NewRelease,
) -> Result<entities::release::Model, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    use entities::release;
    let mut newest = lock_release_numbering(db, &[new.app_id])
        .await?
        .get(&new.app_id)
        .copied();
    let mut last_error = None;
    for _ in 0..RELEASE_VERSION_ATTEMPTS {
        let attempt = db.begin().await?;
        if last_error.is_some() {
            newest = release::Entity::find()
                .select_only()
                .column_as(release::Column::Version.max(), "newest")
                .filter(release::Column::AppId.eq(new.app_id))
                .into_tuple::<Option<i64>>()
                .one(&attempt)
                .await?
                .flatten();
        }
        let now = now();
        let row = release::ActiveModel {
            id: Set(Uuid::new_v4()),
            app_id: Set(new.app_id),
            version: Set(newest.unwrap_or(0) + 1),
            image: Set(new.image.clone()),
            description: Set(new.description.clone()),
            status: Set(new.status.to_owned()),
            promoted_from_app_id: Set(new.promoted_from_app_id),
            promoted_from_release_id: Set(new.promoted_from_release_id),
            promoted_from_promotion_id: Set(new.promoted_from_promotion_id),
            promotion_target_id: Set(new.promotion_target_id),
            created_by_id: Set(new.created_by_id),
            created_by_email: Set(Some(new.created_by_email.clone())),
            // Set by the database as the row is inserted.
            config_change_id: sea_orm::NotSet,
            created_at: Set(now),
            updated_at: Set(now),
        };
        match row.insert(&attempt).await {
            Ok(model) => {
                attempt.commit().await?;
                return Ok(model);
            }
            Err(error) if is_unique_violation(&error) => {
                attempt.rollback().await?;
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| DbErr::Custom("release version allocation failed".into())))
}

/// The current time at the precision both backends store (microseconds), so that a value
/// reads back exactly as it was written on SQLite and PostgreSQL alike.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    let micros = now.timestamp_subsec_micros();
    now.with_nanosecond(micros * 1000).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_change_payloads_are_read_with_or_without_an_app_and_from_older_processes() {
        let (promotion_id, app_id) = (Uuid::new_v4(), Uuid::new_v4());
        let nil = Uuid::nil();
        let with_app = format!("{promotion_id} {app_id} p1");
        assert_eq!(
            parse_promotion_changed(&with_app),
            Some(PromotionChanged {
                promotion_id,
                app_id: Some(app_id),
                origin: Some("p1"),
            })
        );
        let without_app = format!("{promotion_id} {nil} p1");
        assert_eq!(
            parse_promotion_changed(&without_app).map(|read| read.app_id),
            Some(None)
        );
        // As older processes wrote them: no origin, and no app at all.
        let older = [
            (format!("{promotion_id}"), None),
            (format!("{promotion_id} {app_id}"), Some(app_id)),
        ];
        for (payload, app) in older {
            assert_eq!(
                parse_promotion_changed(&payload),
                Some(PromotionChanged {
                    promotion_id,
                    app_id: app,
                    origin: None,
                }),
                "{payload}"
            );
        }
        for bad in ["", "promotion", "x y z", &format!("{promotion_id} nope")] {
            assert_eq!(parse_promotion_changed(bad), None, "{bad}");
        }
    }
}
