//! The pipeline event stream's rows: each pipeline's changes, numbered by the pipeline's
//! head row in the order their transactions commit, read back after a sequence, and
//! trimmed to the newest of each pipeline.
//!
//! The head's row lock is held from the append until the transaction ends, so a
//! transaction appends last, after every other lock it takes, and appends to several
//! pipelines in the order of their ids.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{entities::pipeline_event, placeholder, Parameters};

/// The channel on which a committed append tells the other processes (PostgreSQL) that a
/// pipeline has new events, in the payload `<pipeline> <last sequence>`.
pub const PIPELINE_EVENTS_CHANNEL: &str = "pipelines_pipeline_events";

/// A change about to be appended to a pipeline's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPipelineEvent {
    pub kind: String,
    pub subject_id: Uuid,
    pub app_id: Option<Uuid>,
    pub app_name: String,
}

/// Numbers `events` after the pipeline's last one and stores them, in one statement on
/// PostgreSQL (which also notifies the other processes at commit).
pub async fn append(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
    events: &[NewPipelineEvent],
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let count = events.len() as i64;
    let now = super::now();
    if db.get_database_backend() == DbBackend::Postgres {
        let mut parameters = Parameters::default();
        let pipeline = parameters.bind(pipeline_id, "uuid");
        let added = parameters.bind(count, "bigint");
        let at = parameters.bind(now, "timestamptz");
        let rows: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(position, event)| {
                format!(
                    "({}::bigint, {}, {}, {}, {})",
                    position + 1,
                    parameters.bind(event.kind.clone(), "text"),
                    parameters.bind(event.subject_id, "uuid"),
                    parameters.bind(event.app_id, "uuid"),
                    parameters.bind(event.app_name.clone(), "text"),
                )
            })
            .collect();
        let sql = format!(
            "WITH head AS (\
             INSERT INTO pipeline_event_heads (pipeline_id, last_sequence) VALUES ({pipeline}, {added}) \
             ON CONFLICT (pipeline_id) DO UPDATE \
             SET last_sequence = pipeline_event_heads.last_sequence + EXCLUDED.last_sequence \
             RETURNING last_sequence), \
             notified AS (SELECT pg_notify('{PIPELINE_EVENTS_CHANNEL}', \
             {pipeline}::text || ' ' || last_sequence::text) IS NULL AS sent FROM head) \
             INSERT INTO pipeline_events \
             (pipeline_id, sequence, kind, subject_id, app_id, app_name, created_at) \
             SELECT {pipeline}, head.last_sequence - {added} + v.ord, v.kind, v.subject_id, \
             v.app_id, v.app_name, {at} \
             FROM head, notified, (VALUES {}) AS v(ord, kind, subject_id, app_id, app_name)",
            rows.join(", ")
        );
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            parameters.values,
        ))
        .await?;
        return Ok(());
    }
    let backend = db.get_database_backend();
    #[derive(FromQueryResult)]
    struct Head {
        last_sequence: i64,
    }
    let head = Head::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO pipeline_event_heads (pipeline_id, last_sequence) VALUES ({}, {}) \
             ON CONFLICT (pipeline_id) DO UPDATE \
             SET last_sequence = pipeline_event_heads.last_sequence + excluded.last_sequence \
             RETURNING last_sequence",
            placeholder(backend, 1),
            placeholder(backend, 2)
        ),
        [pipeline_id.into(), count.into()],
    ))
    .one(db)
    .await?
    .ok_or_else(|| DbErr::RecordNotInserted)?;
    let first = head.last_sequence - count + 1;
    let rows = events
        .iter()
        .enumerate()
        .map(|(offset, event)| pipeline_event::ActiveModel {
            pipeline_id: sea_orm::Set(pipeline_id),
            sequence: sea_orm::Set(first + offset as i64),
            kind: sea_orm::Set(event.kind.clone()),
            subject_id: sea_orm::Set(event.subject_id),
            app_id: sea_orm::Set(event.app_id),
            app_name: sea_orm::Set(event.app_name.clone()),
            created_at: sea_orm::Set(now),
        });
    pipeline_event::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The pipeline's events after sequence `after`, oldest first, at most `limit`.
pub async fn events_after(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
    after: i64,
    limit: u64,
) -> Result<Vec<pipeline_event::Model>, DbErr> {
    pipeline_event::Entity::find()
        .filter(pipeline_event::Column::PipelineId.eq(pipeline_id))
        .filter(pipeline_event::Column::Sequence.gt(after))
        .order_by_asc(pipeline_event::Column::Sequence)
        .limit(limit)
        .all(db)
        .await
}

/// Where a pipeline's stream stands: its last sequence, and the oldest one still kept
/// (`None` when it has none kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamBounds {
    pub last: i64,
    pub oldest_kept: Option<i64>,
}

/// The bounds of a pipeline's stream; a pipeline without events has last sequence 0.
pub async fn bounds(db: &impl ConnectionTrait, pipeline_id: Uuid) -> Result<StreamBounds, DbErr> {
    let backend = db.get_database_backend();
    #[derive(FromQueryResult)]
    struct Row {
        last: Option<i64>,
        oldest_kept: Option<i64>,
    }
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT (SELECT last_sequence FROM pipeline_event_heads WHERE pipeline_id = {p1}) \
             AS last, (SELECT MIN(sequence) FROM pipeline_events WHERE pipeline_id = {p2}) \
             AS oldest_kept",
            p1 = placeholder(backend, 1),
            p2 = placeholder(backend, 2),
        ),
        [pipeline_id.into(), pipeline_id.into()],
    ))
    .one(db)
    .await?;
    Ok(row
        .map(|row| StreamBounds {
            last: row.last.unwrap_or(0),
            oldest_kept: row.oldest_kept,
        })
        .unwrap_or_default())
}

/// The last sequence of each of `pipelines` that has events.
pub async fn last_sequences(
    db: &impl ConnectionTrait,
    pipelines: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, DbErr> {
    use sea_orm::sea_query::{Alias, Expr, Query};
    if pipelines.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(FromQueryResult)]
    struct Head {
        pipeline_id: Uuid,
        last_sequence: i64,
    }
    let heads = Alias::new("pipeline_event_heads");
    let query = Query::select()
        .columns([Alias::new("pipeline_id"), Alias::new("last_sequence")])
        .from(heads)
        .and_where(Expr::col(Alias::new("pipeline_id")).is_in(pipelines.iter().copied()))
        .to_owned();
    let backend = db.get_database_backend();
    let rows = Head::find_by_statement(backend.build(&query))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|head| (head.pipeline_id, head.last_sequence))
        .collect())
}

/// Deletes up to `batch` events that are more than `keep` behind their pipeline's last
/// one, or whose pipeline was deleted; answers how many it deleted.
pub async fn trim(db: &impl ConnectionTrait, keep: i64, batch: u64) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "DELETE FROM pipeline_events WHERE (pipeline_id, sequence) IN (\
         SELECT e.pipeline_id, e.sequence FROM pipeline_events e \
         JOIN pipeline_event_heads h ON h.pipeline_id = e.pipeline_id \
         WHERE e.sequence <= h.last_sequence - {} \
         OR e.pipeline_id IN (SELECT id FROM pipelines WHERE deleted_at IS NOT NULL) LIMIT {})",
        placeholder(backend, 1),
        placeholder(backend, 2),
    );
    let result = db
        .execute(Statement::from_sql_and_values(
            backend,
            sql,
            [keep.into(), (batch as i64).into()],
        ))
        .await?;
    Ok(result.rows_affected())
}
