//! The pipeline event stream's rows. A change's transaction only queues its events in the
//! outbox ([`enqueue`]), which takes no lock another change waits for. One sequencer at a
//! time ([`lock_sequencing`], [`number_queued`]) moves committed ones into
//! `pipeline_events`, numbered per pipeline after the pipeline's last: the order in which
//! they became visible, which is the same on every replica. Then they are read back after
//! a sequence, and trimmed to the newest of each pipeline.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{
    entities::{pipeline_event, pipeline_event_outbox},
    placeholder,
};

/// The channel on which a sequencer tells the other processes (PostgreSQL) that pipelines
/// have new numbered events, when it commits.
pub const PIPELINE_EVENTS_CHANNEL: &str = "pipelines_pipeline_events";

/// A change about to be queued for a pipeline's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPipelineEvent {
    pub kind: String,
    pub subject_id: Uuid,
    pub app_id: Option<Uuid>,
    pub app_name: String,
}

/// Queues `events` of one pipeline, in order, in one statement. Nothing is announced: the
/// process that commits it rings its own sequencer, and every sequencer also looks at the
/// outbox every few seconds, which covers a process that died between the two.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    pipeline_id: Uuid,
    events: &[NewPipelineEvent],
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let now = super::now();
    let rows = events
        .iter()
        .map(|event| pipeline_event_outbox::ActiveModel {
            id: sea_orm::NotSet,
            pipeline_id: sea_orm::Set(pipeline_id),
            kind: sea_orm::Set(event.kind.clone()),
            subject_id: sea_orm::Set(event.subject_id),
            app_id: sea_orm::Set(event.app_id),
            app_name: sea_orm::Set(event.app_name.clone()),
            created_at: sea_orm::Set(now),
        });
    pipeline_event_outbox::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Makes the caller's transaction the only sequencer until it ends (PostgreSQL; SQLite has
/// one writer at a time anyway).
pub async fn lock_sequencing(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(
            "SELECT pg_advisory_xact_lock(hashtext('pipelines.pipeline_event_sequencer'))",
        )
        .await?;
    }
    Ok(())
}

/// Numbers up to `limit` queued events, oldest first, each after its pipeline's last, and
/// answers each pipeline that got events with its new last sequence. The caller holds
/// [`lock_sequencing`] in the same transaction. On PostgreSQL, other processes hear of the
/// new events when it commits.
pub async fn number_queued(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<(Uuid, i64)>, DbErr> {
    let queued = pipeline_event_outbox::Entity::find()
        .order_by_asc(pipeline_event_outbox::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    if queued.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_pipeline: BTreeMap<Uuid, Vec<&pipeline_event_outbox::Model>> = BTreeMap::new();
    for row in &queued {
        by_pipeline.entry(row.pipeline_id).or_default().push(row);
    }
    let backend = db.get_database_backend();
    #[derive(FromQueryResult)]
    struct Head {
        last_sequence: i64,
    }
    let mut numbered = Vec::with_capacity(queued.len());
    let mut heads = Vec::with_capacity(by_pipeline.len());
    for (pipeline_id, rows) in &by_pipeline {
        let count = rows.len() as i64;
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
            [(*pipeline_id).into(), count.into()],
        ))
        .one(db)
        .await?
        .ok_or(DbErr::RecordNotInserted)?;
        let first = head.last_sequence - count + 1;
        for (offset, row) in rows.iter().enumerate() {
            numbered.push(pipeline_event::ActiveModel {
                pipeline_id: sea_orm::Set(*pipeline_id),
                sequence: sea_orm::Set(first + offset as i64),
                kind: sea_orm::Set(row.kind.clone()),
                subject_id: sea_orm::Set(row.subject_id),
                app_id: sea_orm::Set(row.app_id),
                app_name: sea_orm::Set(row.app_name.clone()),
                created_at: sea_orm::Set(row.created_at),
            });
        }
        heads.push((*pipeline_id, head.last_sequence));
    }
    pipeline_event::Entity::insert_many(numbered)
        .exec_without_returning(db)
        .await?;
    // By id: a row queued with a smaller id may commit later, and is numbered then.
    pipeline_event_outbox::Entity::delete_many()
        .filter(pipeline_event_outbox::Column::Id.is_in(queued.iter().map(|row| row.id)))
        .exec(db)
        .await?;
    super::notify(db, PIPELINE_EVENTS_CHANNEL, "").await?;
    Ok(heads)
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
