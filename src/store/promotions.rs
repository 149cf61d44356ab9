//! Promotions: what running one needs to read of it (its subject: pipeline, source app and
//! source release), read with its lock; a new promotion stored with its targets (and, on
//! PostgreSQL, its first events in the same statement); and the changes to its row.

use std::collections::HashSet;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, IdenStatic,
    Iterable, QueryFilter, QueryResult, Statement,
};
use uuid::Uuid;

use super::{
    entities::{promotion, promotion_event, promotion_target},
    parameters::placeholder,
    Parameters,
};
use crate::domain::promotion::PromotionStatus;

/// The columns [`SubjectRow`] decodes, from `promotions pr` joined with its pipeline `p`,
/// source app `a` and source release `r`.
const SUBJECT_COLUMNS: &str = "p.id AS subject_pipeline_id, \
     p.name AS subject_pipeline_name, a.id AS subject_source_app_id, \
     a.name AS subject_source_app_name, r.id AS subject_source_release_id, \
     r.version AS subject_source_release_version, r.image AS subject_source_release_image, \
     pr.created_by_id AS subject_created_by_id, pr.created_by_email AS subject_created_by_email";

/// The joins [`SUBJECT_COLUMNS`] reads from, after `FROM promotions pr`: deleted rows
/// included, since a promotion under way keeps its names.
const SUBJECT_JOINS: &str = "JOIN pipelines p ON p.id = pr.pipeline_id \
     JOIN apps a ON a.id = pr.source_app_id JOIN releases r ON r.id = pr.source_release_id";

/// A promotion's pipeline, source app and source release, as one row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct SubjectRow {
    pub subject_pipeline_id: Uuid,
    pub subject_pipeline_name: String,
    pub subject_source_app_id: Uuid,
    pub subject_source_app_name: String,
    pub subject_source_release_id: Uuid,
    pub subject_source_release_version: i64,
    pub subject_source_release_image: String,
    pub subject_created_by_id: Option<Uuid>,
    pub subject_created_by_email: Option<String>,
}

/// Locks the promotion row (`FOR UPDATE` on PostgreSQL) and reads it with its subject.
/// `None` when it does not exist.
pub async fn lock_with_subject(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Option<(promotion::Model, SubjectRow)>, DbErr> {
    let backend = db.get_database_backend();
    let lock = match backend {
        DbBackend::Postgres => " FOR UPDATE OF pr",
        _ => "",
    };
    let promotion_columns = promotion::Column::iter()
        .map(|column| format!("pr.\"{0}\" AS \"p_{0}\"", column.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {promotion_columns}, {SUBJECT_COLUMNS} FROM promotions pr {SUBJECT_JOINS} \
         WHERE pr.id = {}{lock}",
        placeholder(backend, 1),
    );
    let row: Option<QueryResult> = db
        .query_one(Statement::from_sql_and_values(
            backend,
            sql,
            [promotion_id.into()],
        ))
        .await?;
    row.map(|row| {
        Ok((
            promotion::Model::from_query_result(&row, "p_")?,
            SubjectRow::from_query_result(&row, "")?,
        ))
    })
    .transpose()
}

/// The most targets [`insert_with_targets_and_events`] stores: with their events, well
/// within PostgreSQL's 65,535 parameters. Larger promotions are stored step by step.
const MOST_TARGETS_IN_ONE_STATEMENT: usize = 1_000;

/// PostgreSQL: a new promotion `row`, its `targets` and its first `events`, numbered from
/// one, in one statement. Every time in them is the database's clock read in that
/// statement, and other processes are notified of the events in the name of `origin`.
/// Returns the events as stored, in order; the first one's `created_at` is the
/// promotion's.
async fn insert_with_targets_and_events(
    db: &impl ConnectionTrait,
    origin: &str,
    row: &promotion::Model,
    targets: &[promotion_target::Model],
    events: Vec<promotion_event::Model>,
) -> Result<Vec<promotion_event::Model>, DbErr> {
    let mut p = Parameters::default();
    let promotion_sql = format!(
        "INSERT INTO promotions (id, pipeline_id, source_app_id, source_release_id, status, \
         safe, created_by, overridden_checks, request_id, request_fingerprint, event_count, \
         created_at, updated_at, finished_at, cancel_requested_at, required_approvals, \
         triggered_by, overridden_freezes, created_by_id, created_by_email) \
         SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, clock.now, clock.now, NULL, NULL, \
         {}, {}, {}, {}, {} FROM clock RETURNING id, status",
        p.bind(row.id, "uuid"),
        p.bind(row.pipeline_id, "uuid"),
        p.bind(row.source_app_id, "uuid"),
        p.bind(row.source_release_id, "uuid"),
        p.bind(row.status.clone(), "text"),
        p.bind(row.safe, "boolean"),
        p.bind(row.created_by.clone(), "text"),
        p.bind(row.overridden_checks.clone(), "text"),
        p.bind(row.request_id.clone(), "text"),
        p.bind(row.request_fingerprint.clone(), "text"),
        p.bind(row.event_count, "bigint"),
        p.bind(row.required_approvals, "integer"),
        p.bind(row.triggered_by.clone(), "text"),
        p.bind(row.overridden_freezes.clone(), "text"),
        p.bind(row.created_by_id, "uuid"),
        p.bind(row.created_by_email.clone(), "text"),
    );
    let target_tuples: Vec<String> = targets
        .iter()
        .map(|target| {
            format!(
                "({}, {}, {}, {}, {}, {}, {})",
                p.bind(target.id, "uuid"),
                p.bind(target.app_id, "uuid"),
                p.bind(target.position, "integer"),
                p.bind(target.status.clone(), "text"),
                p.bind(target.queued_behind, "uuid"),
                p.bind(target.queued_at.is_some(), "boolean"),
                p.bind(target.freeze_exempt, "boolean"),
            )
        })
        .collect();
    let event_tuples: Vec<String> = events
        .into_iter()
        .enumerate()
        .map(|(position, event)| {
            format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                p.bind(event.id, "uuid"),
                p.bind(position as i64 + 1, "bigint"),
                p.bind(event.kind, "text"),
                p.bind(event.target_id, "uuid"),
                p.bind(event.app_id, "uuid"),
                p.bind(event.app_name, "text"),
                p.bind(event.target_status, "text"),
                p.bind(event.message, "text"),
                p.bind(event.waiting_for, "uuid"),
                p.bind(event.actor, "text"),
                p.bind(event.comment, "text"),
            )
        })
        .collect();
    let sql = format!(
        "WITH clock AS MATERIALIZED (SELECT clock_timestamp() AS now), \
         p AS ({promotion_sql}), \
         t AS (INSERT INTO promotion_targets (id, promotion_id, app_id, position, status, \
         release_id, error_message, queued_behind, lease_owner, lease_expires_at, attempts, \
         app_deleted, queued_at, created_at, updated_at, freeze_exempt) \
         SELECT v.id, p.id, v.app_id, v.position, v.status, NULL, '', v.queued_behind, NULL, \
         NULL, 0, false, CASE WHEN v.queued THEN clock.now END, clock.now, clock.now, \
         v.freeze_exempt \
         FROM p, clock, (VALUES {}) AS v(id, app_id, position, status, queued_behind, queued, \
         freeze_exempt)) \
         INSERT INTO promotion_events (id, promotion_id, sequence, kind, target_id, app_id, \
         app_name, target_status, promotion_status, release_id, release_version, message, \
         created_at, waiting_for, actor, comment) \
         SELECT v.id, p.id, v.sequence, v.kind, v.target_id, v.app_id, v.app_name, \
         v.target_status, p.status, NULL, NULL, v.message, clock.now, v.waiting_for, v.actor, \
         v.comment \
         FROM p, clock, (VALUES {}) AS v(id, sequence, kind, target_id, app_id, app_name, \
         target_status, message, waiting_for, actor, comment) \
         RETURNING *, {}",
        target_tuples.join(", "),
        event_tuples.join(", "),
        super::notifying_promotion_changed(&p.bind(origin.to_owned(), "text")),
    );
    let mut stored = promotion_event::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            p.values,
        ))
        .all(db)
        .await?;
    stored.sort_by_key(|event| event.sequence);
    Ok(stored)
}

/// One promotion, if it exists.
pub async fn promotion_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<promotion::Model>, DbErr> {
    promotion::Entity::find_by_id(id).one(db).await
}

/// Moves a promotion to `next` where it is in one of `from` (stored names), as of `at`;
/// `finished` also stamps its end. Returns whether it moved.
pub async fn move_status(
    db: &impl ConnectionTrait,
    id: Uuid,
    from: Vec<&'static str>,
    next: PromotionStatus,
    finished: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, DbErr> {
    let mut update = promotion::Entity::update_many()
        .col_expr(promotion::Column::Status, next.as_str().into())
        .col_expr(promotion::Column::UpdatedAt, at.into());
    if finished {
        update = update.col_expr(promotion::Column::FinishedAt, Some(at).into());
    }
    let moved = update
        .filter(promotion::Column::Id.eq(id))
        .filter(promotion::Column::Status.is_in(from))
        .exec(db)
        .await?;
    Ok(moved.rows_affected == 1)
}

/// Marks a promotion changed, as of `at`, without changing its state.
pub async fn touch(
    db: &impl ConnectionTrait,
    id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    promotion::Entity::update_many()
        .col_expr(promotion::Column::UpdatedAt, at.into())
        .filter(promotion::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Notes a caller's request to cancel a promotion, once.
pub async fn request_cancel(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    let now = super::now();
    promotion::Entity::update_many()
        .col_expr(promotion::Column::CancelRequestedAt, Some(now).into())
        .col_expr(promotion::Column::UpdatedAt, now.into())
        .filter(promotion::Column::Id.eq(id))
        .filter(promotion::Column::CancelRequestedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// The promotions among `ids` that `creator` created.
pub async fn created_by_among(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
    creator: &str,
) -> Result<HashSet<Uuid>, DbErr> {
    Ok(promotion::Entity::find()
        .filter(promotion::Column::Id.is_in(ids))
        .filter(promotion::Column::CreatedBy.eq(creator))
        .all(db)
        .await?
        .into_iter()
        .map(|promotion| promotion.id)
        .collect())
}

/// Stores a new promotion `row` with its `targets` and first `events` (numbered here), and
/// returns the promotion and its events as stored. Every time in them is the queue's clock
/// (see [`super::queue_clock`]). On PostgreSQL, up to [`MOST_TARGETS_IN_ONE_STATEMENT`]
/// targets, in one statement; otherwise one statement after the other. A unique violation
/// means another request took the promotion's idempotency key first.
pub async fn insert_new(
    db: &impl ConnectionTrait,
    origin: &str,
    mut row: promotion::Model,
    mut targets: Vec<promotion_target::Model>,
    mut events: Vec<promotion_event::Model>,
) -> Result<(promotion::Model, Vec<promotion_event::Model>), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres
        && !targets.is_empty()
        && targets.len() <= MOST_TARGETS_IN_ONE_STATEMENT
    {
        row.event_count = events.len() as i64;
        let stored = insert_with_targets_and_events(db, origin, &row, &targets, events).await?;
        let Some(clock) = stored.first().map(|event| event.created_at) else {
            return Err(DbErr::Custom(format!(
                "promotion {}: its events were not stored",
                row.id
            )));
        };
        row.created_at = clock;
        row.updated_at = clock;
        return Ok((row, stored));
    }
    let now = super::queue_clock(db).await?;
    row.created_at = now;
    row.updated_at = now;
    for target in &mut targets {
        target.queued_at = target.queued_at.map(|_| now);
        target.created_at = now;
        target.updated_at = now;
    }
    for event in &mut events {
        event.created_at = now;
    }
    let id = row.id;
    let stored = insert_with_targets(db, row, &targets).await?;
    let events = super::events::append(db, id, events, None, origin)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("promotion {id}")))?;
    Ok((stored, events))
}

/// Stores a new promotion and its targets (in statements of at most 1,000 rows, well within
/// both databases' parameter limits), one statement after the other.
async fn insert_with_targets(
    db: &impl ConnectionTrait,
    row: promotion::Model,
    targets: &[promotion_target::Model],
) -> Result<promotion::Model, DbErr> {
    use sea_orm::ActiveModelTrait;
    let stored = promotion::ActiveModel::from(row).insert(db).await?;
    for rows in targets.chunks(1_000) {
        promotion_target::Entity::insert_many(
            rows.iter()
                .cloned()
                .map(promotion_target::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(stored)
}

/// The promotion an earlier request with this idempotency key created, if any.
pub async fn promotion_of_request(
    db: &impl ConnectionTrait,
    request_id: &str,
) -> Result<Option<promotion::Model>, DbErr> {
    promotion::Entity::find()
        .filter(promotion::Column::RequestId.eq(request_id))
        .one(db)
        .await
}

/// Promotions newest first, of one pipeline when given, after the place `after`
/// (`created_at`, id) when given, at most `limit` of them.
pub async fn promotions_newest_first(
    db: &impl ConnectionTrait,
    pipeline_id: Option<Uuid>,
    after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<promotion::Model>, DbErr> {
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    let mut query = promotion::Entity::find()
        .order_by_desc(promotion::Column::CreatedAt)
        .order_by_desc(promotion::Column::Id)
        .limit(limit);
    if let Some(pipeline_id) = pipeline_id {
        query = query.filter(promotion::Column::PipelineId.eq(pipeline_id));
    }
    if let Some((created_at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(promotion::Column::CreatedAt.lt(created_at))
                .add(
                    Condition::all()
                        .add(promotion::Column::CreatedAt.eq(created_at))
                        .add(promotion::Column::Id.lt(id)),
                ),
        );
    }
    query.all(db).await
}

/// Promotions, of one pipeline when given, in a range of ids: one range of the primary
/// key.
pub async fn promotions_in_id_range(
    db: &impl ConnectionTrait,
    pipeline_id: Option<Uuid>,
    range: super::KeyRange<Uuid>,
) -> Result<Vec<promotion::Model>, DbErr> {
    let mut query = promotion::Entity::find();
    if let Some(pipeline_id) = pipeline_id {
        query = query.filter(promotion::Column::PipelineId.eq(pipeline_id));
    }
    super::in_key_range(query, promotion::Column::Id, range)
        .all(db)
        .await
}

/// The pipeline of a promotion, if the promotion exists.
pub async fn pipeline_of_promotion(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Option<Uuid>, DbErr> {
    use sea_orm::QuerySelect;
    promotion::Entity::find_by_id(promotion_id)
        .select_only()
        .column(promotion::Column::PipelineId)
        .into_tuple::<Uuid>()
        .one(db)
        .await
}
