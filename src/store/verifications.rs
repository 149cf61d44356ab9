//! Verification after deploy, as stored on its target: where it starts, which targets
//! verify, what a decision writes, and the lease that runs a target's HTTP checks or its
//! rollback's deploy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    entities::{coupling, promotion_target, release_status},
    leases::{clearing_lease, lease_is_free},
};
use crate::domain::{promotion::TargetStatus, verification::VerificationState};

/// The stored verifications of the couplings of `apps`, by app: those that have one.
pub async fn verifications_of_apps(
    db: &impl ConnectionTrait,
    apps: &[Uuid],
) -> Result<Vec<(Uuid, String)>, DbErr> {
    if apps.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Uuid, Option<String>)> = coupling::Entity::find()
        .select_only()
        .column(coupling::Column::AppId)
        .column(coupling::Column::Verification)
        .filter(coupling::Column::AppId.is_in(apps.iter().copied()))
        .filter(coupling::Column::Verification.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(app, stored)| Some((app, stored?)))
        .collect())
}

/// Every verifying target: the work the verification pass looks at.
pub async fn verifying_targets(
    db: &impl ConnectionTrait,
) -> Result<Vec<promotion_target::Model>, DbErr> {
    promotion_target::Entity::find()
        .filter(promotion_target::Column::Status.eq(TargetStatus::Verifying.as_str()))
        .all(db)
        .await
}

/// The statuses on `releases`.
pub async fn statuses_of_releases(
    db: &impl ConnectionTrait,
    releases: &[Uuid],
) -> Result<Vec<release_status::Model>, DbErr> {
    if releases.is_empty() {
        return Ok(Vec::new());
    }
    release_status::Entity::find()
        .filter(release_status::Column::ReleaseId.is_in(releases.iter().copied()))
        .all(db)
        .await
}

/// Starts a verifying target's verification: `verification` (JSON) with its deadline.
pub async fn begin_verification(
    db: &impl ConnectionTrait,
    target_id: Uuid,
    verification: String,
    deadline: DateTime<Utc>,
) -> Result<(), DbErr> {
    promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::Verification,
            Some(verification).into(),
        )
        .col_expr(
            promotion_target::Column::VerificationState,
            Some(VerificationState::Pending.as_str()).into(),
        )
        .col_expr(
            promotion_target::Column::VerificationDeadline,
            Some(deadline).into(),
        )
        .filter(promotion_target::Column::Id.eq(target_id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Verifying.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// What deciding (or finishing) a verification writes on its target.
pub struct VerificationWrite {
    /// The target's state after it; `None` keeps it verifying (a rollback to deploy).
    pub status: Option<TargetStatus>,
    /// The verification's state before and after.
    pub from: VerificationState,
    pub to: VerificationState,
    /// The results, as JSON; `None` leaves them as they are.
    pub results: Option<String>,
    pub error_message: Option<String>,
    pub rollback_release_id: Option<Uuid>,
    /// Only while this worker holds the target's lease (a rollback's deploy).
    pub held_by: Option<String>,
}

/// Writes a verification's decision where the target still verifies in `write.from`.
/// The lease is given back. Returns whether it applied: a decision is made exactly once.
pub async fn write_verification(
    db: &impl ConnectionTrait,
    target_id: Uuid,
    write: VerificationWrite,
) -> Result<bool, DbErr> {
    let mut update = clearing_lease(promotion_target::Entity::update_many())
        .col_expr(
            promotion_target::Column::VerificationState,
            Some(write.to.as_str()).into(),
        )
        .col_expr(promotion_target::Column::UpdatedAt, super::now().into());
    if let Some(status) = write.status {
        update = update.col_expr(promotion_target::Column::Status, status.as_str().into());
    }
    if let Some(results) = write.results {
        update = update.col_expr(
            promotion_target::Column::VerificationResults,
            Some(results).into(),
        );
    }
    if let Some(message) = write.error_message {
        update = update.col_expr(promotion_target::Column::ErrorMessage, message.into());
    }
    if let Some(release) = write.rollback_release_id {
        update = update.col_expr(
            promotion_target::Column::RollbackReleaseId,
            Some(release).into(),
        );
    }
    let mut guard = Condition::all()
        .add(promotion_target::Column::Id.eq(target_id))
        .add(promotion_target::Column::Status.eq(TargetStatus::Verifying.as_str()))
        .add(promotion_target::Column::VerificationState.eq(write.from.as_str()));
    if let Some(worker) = write.held_by {
        guard = guard.add(promotion_target::Column::LeaseOwner.eq(worker));
    }
    Ok(update.filter(guard).exec(db).await?.rows_affected == 1)
}

/// Shows a pending verification's results as they stand, where the target still verifies
/// and they changed. It touches neither the state nor the lease. Returns whether it wrote.
pub async fn show_pending_results(
    db: &impl ConnectionTrait,
    target_id: Uuid,
    results: String,
) -> Result<bool, DbErr> {
    let written = promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::VerificationResults,
            Some(results.clone()).into(),
        )
        .col_expr(promotion_target::Column::UpdatedAt, super::now().into())
        .filter(promotion_target::Column::Id.eq(target_id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Verifying.as_str()))
        .filter(promotion_target::Column::VerificationState.eq(VerificationState::Pending.as_str()))
        .filter(
            Condition::any()
                .add(promotion_target::Column::VerificationResults.is_null())
                .add(promotion_target::Column::VerificationResults.ne(results)),
        )
        .exec(db)
        .await?;
    Ok(written.rows_affected == 1)
}

/// Takes the lease on a verifying target, to run its HTTP checks or deploy its rollback.
/// False when another worker holds it, or the target moved on.
pub async fn try_claim_verifying(
    db: &impl ConnectionTrait,
    target_id: Uuid,
    worker: &str,
    ttl: Duration,
) -> Result<bool, DbErr> {
    let expires = super::now()
        + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::seconds(30));
    let taken = promotion_target::Entity::update_many()
        .col_expr(
            promotion_target::Column::LeaseOwner,
            Some(worker.to_owned()).into(),
        )
        .col_expr(
            promotion_target::Column::LeaseExpiresAt,
            Some(expires).into(),
        )
        .col_expr(
            promotion_target::Column::Attempts,
            Expr::col(promotion_target::Column::Attempts).add(1),
        )
        .filter(promotion_target::Column::Id.eq(target_id))
        .filter(promotion_target::Column::Status.eq(TargetStatus::Verifying.as_str()))
        .filter(lease_is_free::<promotion_target::Entity>())
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Whether `release_id` was delivered by a target that is still verifying, or whose
/// verification failed: such a release is not promoted onward automatically.
pub async fn release_is_unverified(
    db: &impl ConnectionTrait,
    release_id: Uuid,
) -> Result<bool, DbErr> {
    let found = promotion_target::Entity::find()
        .select_only()
        .column(promotion_target::Column::Id)
        .filter(promotion_target::Column::ReleaseId.eq(release_id))
        .filter(
            Condition::any()
                .add(promotion_target::Column::Status.eq(TargetStatus::Verifying.as_str()))
                .add(
                    promotion_target::Column::VerificationState
                        .eq(VerificationState::Failed.as_str()),
                ),
        )
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    Ok(found.is_some())
}
