//! Writing a batch of one promotion's target moves with the releases they make, in one
//! statement on PostgreSQL.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    sea_query::{Expr, OnConflict},
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
};
use uuid::Uuid;

use crate::{
    domain::{promotion::TargetStatus, status::ReleaseState},
    store::{
        entities::{promotion_target, release},
        Parameters,
    },
};

/// One target's move in a batch, as the lifecycle decided it under the promotion's lock:
/// from the state it was read in to the state it ends the batch in (the same state when
/// only its release is linked). A move the batch made in two steps (pending, running,
/// succeeded) is written as one.
#[derive(Debug, Clone)]
pub struct TargetMove {
    pub target_id: Uuid,
    pub from: TargetStatus,
    pub to: TargetStatus,
    pub error_message: Option<String>,
    /// The release to link, when the target has none linked yet.
    pub link_release: Option<Uuid>,
}

/// What a group of [`TargetMove`]s writes, the same for each.
#[derive(Debug, PartialEq, Eq)]
struct TargetMoveValues {
    from: TargetStatus,
    to: TargetStatus,
    error_message: Option<String>,
    links_release: bool,
}

/// What a batch of one promotion's targets changed, to be written together.
#[derive(Debug, Default)]
pub struct BatchWrite {
    /// Releases made in the batch, in the state the batch leaves them in.
    pub new_releases: Vec<release::Model>,
    /// Releases made before the batch whose state it changed.
    pub release_states: Vec<(Uuid, ReleaseState)>,
    pub moves: Vec<TargetMove>,
}

/// What [`write_batch`] did.
#[derive(Debug, Default)]
pub struct BatchWritten {
    /// The targets that moved: each was still in its `from` state under the worker's lease.
    pub moved: HashSet<Uuid>,
    /// New releases not inserted because another release took their version meanwhile;
    /// their targets did not move.
    pub versions_taken: HashSet<Uuid>,
}

/// Writes a batch: inserts its new releases (skipping one whose version another took
/// meanwhile), sets the changed releases' states, and moves each target from its `from`
/// state where `worker` holds its lease, linking its release; a move out of the deploying
/// states (to a final state, or to `verifying`) gives the lease back. On PostgreSQL in one statement; on SQLite, which has one writer,
/// in one statement per kind of change.
pub async fn write_batch(
    db: &impl ConnectionTrait,
    worker: &str,
    batch: BatchWrite,
) -> Result<BatchWritten, DbErr> {
    if batch.moves.is_empty() && batch.new_releases.is_empty() && batch.release_states.is_empty() {
        return Ok(BatchWritten::default());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        write_batch_in_one_statement(db, worker, batch).await
    } else {
        write_batch_step_by_step(db, worker, batch).await
    }
}

async fn write_batch_in_one_statement(
    db: &impl ConnectionTrait,
    worker: &str,
    batch: BatchWrite,
) -> Result<BatchWritten, DbErr> {
    let mut p = Parameters::default();
    let now = p.bind(crate::store::now(), "timestamptz");
    let mut parts = Vec::new();
    let new_release_ids: Vec<Uuid> = batch.new_releases.iter().map(|r| r.id).collect();
    if batch.new_releases.is_empty() {
        parts.push("made AS (SELECT NULL::uuid AS id WHERE false)".to_owned());
    } else {
        let rows: Vec<String> = batch
            .new_releases
            .into_iter()
            .map(|release| {
                format!(
                    "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {now}, {now})",
                    p.bind(release.id, "uuid"),
                    p.bind(release.app_id, "uuid"),
                    p.bind(release.version, "bigint"),
                    p.bind(release.image, "text"),
                    p.bind(release.description, "text"),
                    p.bind(release.status, "text"),
                    p.bind(release.promoted_from_app_id, "uuid"),
                    p.bind(release.promoted_from_release_id, "uuid"),
                    p.bind(release.promoted_from_promotion_id, "uuid"),
                    p.bind(release.promotion_target_id, "uuid"),
                    p.bind(release.created_by_id, "uuid"),
                    p.bind(release.created_by_email, "text"),
                )
            })
            .collect();
        parts.push(format!(
            "made AS (INSERT INTO releases (id, app_id, version, image, description, status, \
             promoted_from_app_id, promoted_from_release_id, promoted_from_promotion_id, \
             promotion_target_id, created_by_id, created_by_email, created_at, updated_at) \
             VALUES {} \
             ON CONFLICT (app_id, version) DO NOTHING RETURNING id)",
            rows.join(", ")
        ));
    }
    if !batch.release_states.is_empty() {
        let rows: Vec<String> = batch
            .release_states
            .into_iter()
            .map(|(id, state)| {
                format!(
                    "({}, {})",
                    p.bind(id, "uuid"),
                    p.bind(state.as_str(), "text")
                )
            })
            .collect();
        parts.push(format!(
            "states AS (UPDATE releases r SET status = v.status, updated_at = {now} \
             FROM (VALUES {}) AS v(id, status) WHERE r.id = v.id RETURNING r.id)",
            rows.join(", ")
        ));
    }
    let mut selects = vec!["SELECT NULL::uuid AS moved, made.id AS made FROM made".to_owned()];
    if !batch.moves.is_empty() {
        let rows: Vec<String> = batch
            .moves
            .into_iter()
            .map(|m| {
                let new_release = m
                    .link_release
                    .is_some_and(|release| new_release_ids.contains(&release));
                format!(
                    "({}, {}, {}, {}, {}, {}, {})",
                    p.bind(m.target_id, "uuid"),
                    p.bind(m.from.as_str(), "text"),
                    p.bind(m.to.as_str(), "text"),
                    p.bind(m.error_message, "text"),
                    p.bind(m.link_release, "uuid"),
                    p.bind(new_release, "boolean"),
                    p.bind(!m.to.is_deploying(), "boolean"),
                )
            })
            .collect();
        // A target whose new release was not inserted (its version taken) does not move.
        parts.push(format!(
            "moved AS (UPDATE promotion_targets t SET status = v.next, \
             error_message = COALESCE(v.error_message, t.error_message), \
             release_id = COALESCE(t.release_id, v.link_release), \
             lease_owner = CASE WHEN v.ends THEN NULL ELSE t.lease_owner END, \
             lease_expires_at = CASE WHEN v.ends THEN NULL ELSE t.lease_expires_at END, \
             updated_at = {now} \
             FROM (VALUES {}) AS v(id, previous, next, error_message, link_release, \
             new_release, ends) \
             WHERE t.id = v.id AND t.status = v.previous AND t.lease_owner = {} \
             AND (NOT v.new_release OR v.link_release IN (SELECT id FROM made)) \
             RETURNING t.id)",
            rows.join(", "),
            p.bind(worker.to_owned(), "text"),
        ));
        selects.push("SELECT moved.id, NULL::uuid FROM moved".to_owned());
    }
    let sql = format!("WITH {} {}", parts.join(", "), selects.join(" UNION ALL "));
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            p.values,
        ))
        .await?;
    let mut written = BatchWritten::default();
    let mut made = HashSet::new();
    for row in rows {
        if let Some(id) = row.try_get_by_index::<Option<Uuid>>(0)? {
            written.moved.insert(id);
        }
        if let Some(id) = row.try_get_by_index::<Option<Uuid>>(1)? {
            made.insert(id);
        }
    }
    written.versions_taken = new_release_ids
        .into_iter()
        .filter(|id| !made.contains(id))
        .collect();
    Ok(written)
}

async fn write_batch_step_by_step(
    db: &impl ConnectionTrait,
    worker: &str,
    batch: BatchWrite,
) -> Result<BatchWritten, DbErr> {
    let now = crate::store::now();
    let mut written = BatchWritten::default();
    if !batch.new_releases.is_empty() {
        let ids: Vec<Uuid> = batch.new_releases.iter().map(|r| r.id).collect();
        let made: HashSet<Uuid> =
            release::Entity::insert_many(batch.new_releases.into_iter().map(|release| {
                release::ActiveModel::from(release::Model {
                    created_at: now,
                    updated_at: now,
                    ..release
                })
            }))
            .on_conflict(
                OnConflict::columns([release::Column::AppId, release::Column::Version])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_with_returning_keys(db)
            .await?
            .into_iter()
            .collect();
        written.versions_taken = ids.into_iter().filter(|id| !made.contains(id)).collect();
    }
    let mut by_state: HashMap<ReleaseState, Vec<Uuid>> = HashMap::new();
    for (id, state) in batch.release_states {
        by_state.entry(state).or_default().push(id);
    }
    for (state, ids) in by_state {
        release::Entity::update_many()
            .col_expr(release::Column::Status, state.as_str().into())
            .col_expr(release::Column::UpdatedAt, now.into())
            .filter(release::Column::Id.is_in(ids))
            .exec(db)
            .await?;
    }
    // Moves that write the same values share one statement: every outcome of a batch's
    // successes, say. A release to link is the one made for the target (SQLite runs one
    // writer at a time, so the statement sees the release just inserted).
    let mut groups: Vec<(TargetMoveValues, Vec<Uuid>)> = Vec::new();
    for m in batch.moves {
        if m.link_release
            .is_some_and(|release| written.versions_taken.contains(&release))
        {
            continue;
        }
        let values = TargetMoveValues {
            from: m.from,
            to: m.to,
            error_message: m.error_message,
            links_release: m.link_release.is_some(),
        };
        match groups.iter_mut().find(|(group, _)| *group == values) {
            Some((_, ids)) => ids.push(m.target_id),
            None => groups.push((values, vec![m.target_id])),
        }
    }
    for (values, ids) in groups {
        let mut update = promotion_target::Entity::update_many()
            .col_expr(promotion_target::Column::Status, values.to.as_str().into())
            .col_expr(promotion_target::Column::UpdatedAt, now.into());
        if let Some(message) = values.error_message {
            update = update.col_expr(promotion_target::Column::ErrorMessage, message.into());
        }
        if values.links_release {
            update = update.col_expr(
                promotion_target::Column::ReleaseId,
                Expr::cust(
                    "COALESCE(release_id, (SELECT r.id FROM releases r \
                     WHERE r.promotion_target_id = promotion_targets.id))",
                ),
            );
        }
        if !values.to.is_deploying() {
            update = crate::store::leases::clearing_lease(update);
        }
        let moved = update
            .filter(promotion_target::Column::Id.is_in(ids))
            .filter(promotion_target::Column::Status.eq(values.from.as_str()))
            .filter(promotion_target::Column::LeaseOwner.eq(worker.to_owned()))
            .exec_with_returning(db)
            .await?;
        written.moved.extend(moved.into_iter().map(|row| row.id));
    }
    Ok(written)
}
