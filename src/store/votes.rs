//! Votes on promotions awaiting approval: one per token and promotion (unique in the
//! schema), and the count of approvals.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set,
};
use uuid::Uuid;

use super::entities::promotion_vote;
use crate::domain::policy::Verdict;

/// The vote `voter` cast on the promotion, if any.
pub async fn vote_of(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    voter: &str,
) -> Result<Option<promotion_vote::Model>, DbErr> {
    promotion_vote::Entity::find()
        .filter(promotion_vote::Column::PromotionId.eq(promotion_id))
        .filter(promotion_vote::Column::Voter.eq(voter))
        .one(db)
        .await
}

/// Stores a vote. A second vote by the same token fails with a unique violation.
pub async fn insert_vote(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
    voter: &str,
    verdict: Verdict,
    comment: &str,
) -> Result<(), DbErr> {
    promotion_vote::ActiveModel {
        id: Set(Uuid::new_v4()),
        promotion_id: Set(promotion_id),
        voter: Set(voter.to_owned()),
        verdict: Set(verdict.as_str().to_owned()),
        comment: Set(comment.to_owned()),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// How many approvals the promotion has.
pub async fn approvals(db: &impl ConnectionTrait, promotion_id: Uuid) -> Result<u64, DbErr> {
    promotion_vote::Entity::find()
        .filter(promotion_vote::Column::PromotionId.eq(promotion_id))
        .filter(promotion_vote::Column::Verdict.eq(Verdict::Approved.as_str()))
        .count(db)
        .await
}

/// The approvals of several promotions, each promotion's in the order they were cast.
pub async fn approvals_of_promotions(
    db: &impl ConnectionTrait,
    promotion_ids: Vec<Uuid>,
) -> Result<Vec<promotion_vote::Model>, DbErr> {
    use sea_orm::QueryOrder;
    if promotion_ids.is_empty() {
        return Ok(Vec::new());
    }
    promotion_vote::Entity::find()
        .filter(promotion_vote::Column::PromotionId.is_in(promotion_ids))
        .filter(promotion_vote::Column::Verdict.eq(Verdict::Approved.as_str()))
        .order_by_asc(promotion_vote::Column::CreatedAt)
        .order_by_asc(promotion_vote::Column::Id)
        .all(db)
        .await
}
