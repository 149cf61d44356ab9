//! Promotion targets: a promotion's targets with their apps' names, and a batch's outcomes
//! stored with their releases in one statement.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};
use uuid::Uuid;

use super::{
    entities::{promotion_target, release},
    parameters::placeholder,
    Parameters,
};
use crate::domain::promotion::TargetStatus;

/// Every target of a promotion, in order, with its app's name (deleted apps included).
/// Read after the promotion's lock is held, in a statement of its own: see
/// [`super::promotions::lock_with_subject`].
pub async fn targets_with_app_names(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Vec<(promotion_target::Model, String)>, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT t.*, a.name AS app_name FROM promotion_targets t \
         JOIN apps a ON a.id = t.app_id WHERE t.promotion_id = {} \
         ORDER BY t.\"position\"",
        placeholder(backend, 1),
    );
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            sql,
            [promotion_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                promotion_target::Model::from_query_result(row, "")?,
                row.try_get("", "app_name")?,
            ))
        })
        .collect()
}

/// One target's outcome, to store with its release.
pub struct BatchOutcome {
    pub target_id: Uuid,
    pub status: TargetStatus,
    pub error_message: String,
    /// The release made for it, in its final state.
    pub release: release::Model,
}

/// PostgreSQL: inserts each outcome's release and moves its target from `pending` to its
/// status, linked to that release with its lease cleared, where `worker` holds the lease;
/// in one statement. A release whose version another took meanwhile is not inserted and
/// leaves its target unmoved. Returns how many targets moved.
pub async fn store_batch_outcomes(
    db: &impl ConnectionTrait,
    worker: &str,
    outcomes: Vec<BatchOutcome>,
) -> Result<usize, DbErr> {
    let mut p = Parameters::default();
    let mut made = Vec::with_capacity(outcomes.len());
    let mut moved = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let release = outcome.release;
        made.push(format!(
            "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
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
            p.bind(release.created_at, "timestamptz"),
            p.bind(release.updated_at, "timestamptz"),
        ));
        moved.push(format!(
            "({}, {}, {})",
            p.bind(outcome.target_id, "uuid"),
            p.bind(outcome.status.as_str(), "text"),
            p.bind(outcome.error_message, "text"),
        ));
    }
    let sql = format!(
        "WITH made AS (INSERT INTO releases (id, app_id, version, image, description, status, \
         promoted_from_app_id, promoted_from_release_id, promoted_from_promotion_id, \
         promotion_target_id, created_at, updated_at) VALUES {} \
         ON CONFLICT (app_id, version) DO NOTHING RETURNING id, promotion_target_id), \
         moved AS (UPDATE promotion_targets t SET status = v.status, \
         error_message = v.error_message, release_id = made.id, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = {} \
         FROM (VALUES {}) AS v(id, status, error_message) \
         JOIN made ON made.promotion_target_id = v.id \
         WHERE t.id = v.id AND t.status = {} AND t.lease_owner = {} RETURNING t.id) \
         SELECT count(*) AS moved FROM moved",
        made.join(", "),
        p.bind(super::now(), "timestamptz"),
        moved.join(", "),
        p.bind(TargetStatus::Pending.as_str(), "text"),
        p.bind(worker.to_owned(), "text"),
    );
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            p.values,
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("storing outcomes returned no row".into()))?;
    let moved: i64 = row.try_get("", "moved")?;
    Ok(usize::try_from(moved).unwrap_or(0))
}

/// How much promotion work is waiting or under way, for the metrics' gauges.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromQueryResult)]
pub struct WorkCounts {
    /// Targets waiting to run.
    pub pending: i64,
    /// Targets deploying.
    pub running: i64,
    /// Pending targets that wait behind earlier work on their app.
    pub queued: i64,
    /// Promotions awaiting approval.
    pub awaiting_approval: i64,
}

/// Counts the targets and promotions by state, in one statement.
pub async fn work_counts(db: &impl ConnectionTrait) -> Result<WorkCounts, DbErr> {
    use crate::domain::promotion::PromotionStatus;
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT \
         (SELECT count(*) FROM promotion_targets WHERE status = {}) AS pending, \
         (SELECT count(*) FROM promotion_targets WHERE status = {}) AS running, \
         (SELECT count(*) FROM promotion_targets WHERE status = {} \
            AND queued_at IS NOT NULL AND queued_behind IS NOT NULL) AS queued, \
         (SELECT count(*) FROM promotions WHERE status = {}) AS awaiting_approval",
        placeholder(backend, 1),
        placeholder(backend, 2),
        placeholder(backend, 3),
        placeholder(backend, 4),
    );
    let values = [
        TargetStatus::Pending.as_str().into(),
        TargetStatus::Running.as_str().into(),
        TargetStatus::Pending.as_str().into(),
        PromotionStatus::AwaitingApproval.as_str().into(),
    ];
    Ok(
        WorkCounts::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .one(db)
            .await?
            .unwrap_or_default(),
    )
}
