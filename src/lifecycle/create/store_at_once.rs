//! PostgreSQL: a new promotion, its targets and its first events in one statement, every
//! time in them the database's clock read in that statement, after the caller's locks.

use sea_orm::{DbBackend, EntityTrait, Statement};

use super::StoreError;
use crate::{
    lifecycle::{
        events::{event_rows, record_stored, EventDraft},
        Transaction,
    },
    store::{
        entities::{promotion, promotion_event, promotion_target},
        Parameters,
    },
};

/// The most targets stored this way: with their events, well within PostgreSQL's 65,535
/// parameters. Larger promotions are stored step by step.
pub(super) const MOST_TARGETS: usize = 1_000;

/// Stores `row` (its event count set here), `targets` and `events`, numbered from 1, and
/// returns the promotion as stored.
pub(super) async fn store(
    tx: &mut Transaction,
    mut row: promotion::Model,
    targets: Vec<promotion_target::Model>,
    events: Vec<EventDraft>,
) -> Result<promotion::Model, StoreError> {
    let events = event_rows(row.id, events, row.created_at);
    row.event_count = events.len() as i64;
    let mut p = Parameters::default();
    let promotion_sql = format!(
        "INSERT INTO promotions (id, pipeline_id, source_app_id, source_release_id, status, \
         safe, created_by, overridden_checks, request_id, request_fingerprint, event_count, \
         created_at, updated_at, finished_at, cancel_requested_at, required_approvals, \
         triggered_by) \
         SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, clock.now, clock.now, NULL, NULL, \
         {}, {} FROM clock RETURNING id, status",
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
    );
    let target_tuples: Vec<String> = targets
        .iter()
        .map(|target| {
            format!(
                "({}, {}, {}, {}, {}, {})",
                p.bind(target.id, "uuid"),
                p.bind(target.app_id, "uuid"),
                p.bind(target.position, "integer"),
                p.bind(target.status.clone(), "text"),
                p.bind(target.queued_behind, "uuid"),
                p.bind(target.queued_at.is_some(), "boolean"),
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
         app_deleted, queued_at, created_at, updated_at) \
         SELECT v.id, p.id, v.app_id, v.position, v.status, NULL, '', v.queued_behind, NULL, \
         NULL, 0, false, CASE WHEN v.queued THEN clock.now END, clock.now, clock.now \
         FROM p, clock, (VALUES {}) AS v(id, app_id, position, status, queued_behind, queued)) \
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
        crate::store::notifying_promotion_changed(&p.bind(tx.origin().to_owned(), "text")),
    );
    let mut stored = promotion_event::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            p.values,
        ))
        .all(tx.connection())
        .await?;
    stored.sort_by_key(|event| event.sequence);
    let Some(clock) = stored.first().map(|event| event.created_at) else {
        return Err(StoreError::Other(crate::error::Error::Internal(format!(
            "promotion {}: its events were not stored",
            row.id
        ))));
    };
    row.created_at = clock;
    row.updated_at = clock;
    record_stored(tx, stored)?;
    Ok(row)
}
