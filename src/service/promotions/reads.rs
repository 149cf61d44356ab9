//! Reading promotions, their targets and their progress.

use std::{collections::HashMap, sync::Arc};

use sea_orm::ConnectionTrait;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Promotions;
use crate::{
    domain::{
        promotion::{PromotionStatus, TargetStatus},
        range::TypedRange,
    },
    error::{Error, Result},
    progress,
    service::lookup::{app_ref, apps_by_id, find_pipeline, parse_uuid},
    store::{self, entities::promotion},
    views::{
        target_verification, ApprovalView, CheckRef, FreezeRef, PromotionEventView, PromotionView,
        ReleaseRef, ResourceRef, TargetView,
    },
};

use crate::service::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// A page of promotions, newest first.
#[derive(Debug, Clone)]
pub struct PromotionPage {
    pub promotions: Vec<PromotionView>,
    /// Pass back to get the next page; `None` on the last one.
    pub next_page_token: Option<String>,
}

impl Promotions {
    pub(super) async fn find(&self, id: &str) -> Result<promotion::Model> {
        let uuid = parse_uuid("id", id)?;
        store::promotions::promotion_by_id(&self.db, uuid)
            .await?
            .ok_or_else(|| Error::not_found("promotion", id))
    }

    /// A promotion, from memory when it was read since its last event.
    pub async fn get(&self, id: &str) -> Result<PromotionView> {
        let uuid = parse_uuid("id", id)?;
        let load = || async {
            let model = self.find(id).await?;
            promotion_view(&self.db, model).await
        };
        self.hub.read_model.promotions.get_or_load(uuid, load).await
    }

    /// Promotions newest first, optionally of one pipeline, a page at a time.
    pub async fn list(
        &self,
        pipeline: Option<&str>,
        page_size: Option<u64>,
        page_token: Option<&str>,
    ) -> Result<PromotionPage> {
        let size = match page_size {
            None | Some(0) => DEFAULT_PAGE_SIZE,
            Some(size) => size.min(MAX_PAGE_SIZE),
        };
        let pipeline_id = match pipeline.filter(|p| !p.is_empty()) {
            Some(reference) => Some(find_pipeline(&self.db, "pipeline", reference).await?.id),
            None => None,
        };
        let after = match page_token.filter(|t| !t.is_empty()) {
            Some(token) => Some(decode_page_token(token)?),
            None => None,
        };
        let mut rows =
            store::promotions::promotions_newest_first(&self.db, pipeline_id, after, size + 1)
                .await?;
        let next_page_token = if rows.len() as u64 > size {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| encode_page_token(last.created_at, last.id))
        } else {
            None
        };
        let promotions = promotion_views(&self.db, rows).await?;
        Ok(PromotionPage {
            promotions,
            next_page_token,
        })
    }

    /// A page of promotions, of one pipeline when given, in a range of ids, in the range's
    /// order, and whether more follow it.
    pub async fn in_id_range(
        &self,
        pipeline: Option<&str>,
        range: TypedRange<Uuid>,
    ) -> Result<(Vec<PromotionView>, bool)> {
        let pipeline_id = match pipeline.filter(|p| !p.is_empty()) {
            Some(reference) => Some(find_pipeline(&self.db, "pipeline", reference).await?.id),
            None => None,
        };
        let max = range.max as usize;
        let mut rows =
            store::promotions::promotions_in_id_range(&self.db, pipeline_id, range.into()).await?;
        let more = rows.len() > max;
        rows.truncate(max);
        Ok((promotion_views(&self.db, rows).await?, more))
    }

    /// One target, by id.
    pub async fn target(&self, id: Uuid) -> Result<TargetView> {
        let not_found = || Error::not_found("target", &id.to_string());
        let row = store::targets::target_by_id(&self.db, id)
            .await?
            .ok_or_else(not_found)?;
        let promotion_id = row.promotion_id.to_string();
        self.targets(&promotion_id, &PageRequest::everything())
            .await?
            .items
            .into_iter()
            .find(|target| target.id == id)
            .ok_or_else(not_found)
    }

    /// The promotion's targets, in the order they were given.
    pub async fn targets(&self, id: &str, page: &PageRequest) -> Result<Page<TargetView>> {
        let uuid = parse_uuid("id", id)?;
        let load = || async {
            let model = self.find(id).await?;
            target_views(&self.db, model.id).await
        };
        let targets = self.hub.read_model.targets.get_or_load(uuid, load).await?;
        // Targets keep the order they were given in; their position is the key.
        let positioned: Vec<(usize, TargetView)> = targets.into_iter().enumerate().collect();
        Ok(page
            .page_of_sorted(positioned, |(position, _)| format!("{position:010}"))
            .map(|(_, target)| target))
    }

    /// Streams the promotion's events after `after_sequence`: history, then live events,
    /// ending after `promotion.finished`. `None` when the promotion finished and the
    /// watcher already has its last event: nothing is left to send.
    pub async fn watch(
        &self,
        id: &str,
        after_sequence: i64,
    ) -> Result<Option<mpsc::Receiver<Result<PromotionEventView>>>> {
        if after_sequence < 0 {
            return Err(Error::invalid("after_sequence", "must not be negative"));
        }
        let uuid = parse_uuid("id", id)?;
        let opened = progress::open_watch(&self.db, &self.hub, uuid, after_sequence).await?;
        if !opened.has_history() {
            // Nothing to send yet: the promotion must exist, and a finished one has
            // nothing more to tell.
            let model = self.find(id).await?;
            let finished =
                PromotionStatus::parse(&model.status).is_some_and(PromotionStatus::is_final);
            if finished && after_sequence >= model.event_count {
                return Ok(None);
            }
        }
        let (sink, events) = mpsc::channel(64);
        progress::watch(self.db.clone(), Arc::clone(&self.hub), opened, sink);
        Ok(Some(events))
    }
}

fn encode_page_token(created_at: chrono::DateTime<chrono::Utc>, id: Uuid) -> String {
    format!("{}_{}", created_at.timestamp_micros(), id.simple())
}

fn decode_page_token(token: &str) -> Result<(chrono::DateTime<chrono::Utc>, Uuid)> {
    let invalid = || Error::invalid("page_token", "is not a token this server issued");
    let (micros, id) = token.split_once('_').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((created_at, id))
}

/// Turns a stored promotion into its view, resolving names (deleted pipelines and apps
/// included, since history points at them).
pub async fn promotion_view(
    db: &impl ConnectionTrait,
    model: promotion::Model,
) -> Result<PromotionView> {
    let id = model.id;
    promotion_views(db, vec![model])
        .await?
        .pop()
        .ok_or_else(|| Error::Internal(format!("promotion {id} has no view")))
}

/// Turns stored promotions into their views, in order, in four statements however many
/// there are: their pipelines, source apps, source releases and approvals.
pub async fn promotion_views(
    db: &impl ConnectionTrait,
    models: Vec<promotion::Model>,
) -> Result<Vec<PromotionView>> {
    let unique = |ids: Vec<Uuid>| -> Vec<Uuid> {
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let pipelines: HashMap<Uuid, String> = store::pipelines::pipelines_by_id(
        db,
        unique(models.iter().map(|m| m.pipeline_id).collect()),
    )
    .await?
    .into_iter()
    .map(|pipeline| (pipeline.id, pipeline.name))
    .collect();
    let sources = apps_by_id(db, unique(models.iter().map(|m| m.source_app_id).collect())).await?;
    let releases: HashMap<Uuid, i64> = store::releases::releases_by_id(
        db,
        &unique(models.iter().map(|m| m.source_release_id).collect()),
    )
    .await?
    .into_iter()
    .map(|release| (release.id, release.version))
    .collect();
    let voted: Vec<Uuid> = models
        .iter()
        .filter(|m| m.required_approvals > 0)
        .map(|m| m.id)
        .collect();
    let mut approvals: HashMap<Uuid, Vec<ApprovalView>> = HashMap::new();
    for vote in store::votes::approvals_of_promotions(db, voted).await? {
        approvals
            .entry(vote.promotion_id)
            .or_default()
            .push(ApprovalView {
                by: vote.voter,
                comment: vote.comment,
                created_at: vote.created_at,
            });
    }
    models
        .into_iter()
        .map(|model| {
            let lost =
                |what: &str| Error::Internal(format!("promotion {} lost its {what}", model.id));
            let names = PromotionNames {
                pipeline: ResourceRef {
                    id: model.pipeline_id,
                    name: pipelines
                        .get(&model.pipeline_id)
                        .cloned()
                        .ok_or_else(|| lost("pipeline"))?,
                },
                source_app: sources
                    .get(&model.source_app_id)
                    .map(app_ref)
                    .ok_or_else(|| lost("source"))?,
                source_release: ReleaseRef {
                    id: model.source_release_id,
                    version: *releases
                        .get(&model.source_release_id)
                        .ok_or_else(|| lost("release"))?,
                },
            };
            let approvals = approvals.remove(&model.id).unwrap_or_default();
            view_with_names(model, names, approvals)
        })
        .collect()
}

/// What a promotion's view names besides its own row.
pub struct PromotionNames {
    pub pipeline: ResourceRef,
    pub source_app: ResourceRef,
    pub source_release: ReleaseRef,
}

/// The view of a stored promotion whose names and approvals are known.
pub fn view_with_names(
    model: promotion::Model,
    names: PromotionNames,
    approvals: Vec<ApprovalView>,
) -> Result<PromotionView> {
    let status = PromotionStatus::parse(&model.status)
        .ok_or_else(|| Error::Internal(format!("promotion {} has an unknown status", model.id)))?;
    let overridden_checks: Vec<CheckRef> = serde_json::from_str(&model.overridden_checks)
        .map_err(|error| Error::Internal(format!("promotion {}: {error}", model.id)))?;
    let overridden_freezes: Vec<FreezeRef> = serde_json::from_str(&model.overridden_freezes)
        .map_err(|error| Error::Internal(format!("promotion {}: {error}", model.id)))?;
    Ok(PromotionView {
        id: model.id,
        pipeline: names.pipeline,
        source_app: names.source_app,
        source_release: names.source_release,
        status,
        safe: model.safe,
        created_by: model.created_by,
        overridden_checks,
        overridden_freezes,
        request_id: model.request_id,
        triggered_by: model.triggered_by,
        required_approvals: u32::try_from(model.required_approvals).unwrap_or_default(),
        approvals,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

/// The targets of one promotion, in order.
pub async fn target_views(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Vec<TargetView>> {
    let rows = store::targets::targets_of_promotion(db, promotion_id).await?;
    let apps = apps_by_id(db, rows.iter().map(|t| t.app_id)).await?;
    let release_ids: Vec<Uuid> = rows
        .iter()
        .flat_map(|t| [t.release_id, t.rollback_release_id])
        .flatten()
        .collect();
    let releases: HashMap<Uuid, i64> = store::releases::releases_by_id(db, &release_ids)
        .await?
        .into_iter()
        .map(|r| (r.id, r.version))
        .collect();
    rows.into_iter()
        .map(|row| {
            let app = apps
                .get(&row.app_id)
                .map(app_ref)
                .ok_or_else(|| Error::Internal(format!("target {} lost its app", row.id)))?;
            let status = TargetStatus::parse(&row.status).ok_or_else(|| {
                Error::Internal(format!("target {} has an unknown status", row.id))
            })?;
            let reference = |id: Option<Uuid>| {
                id.and_then(|id| {
                    releases.get(&id).map(|version| ReleaseRef {
                        id,
                        version: *version,
                    })
                })
            };
            let verification = target_verification(&row, reference(row.rollback_release_id));
            Ok(TargetView {
                id: row.id,
                promotion_id: row.promotion_id,
                app,
                release: reference(row.release_id),
                status,
                error_message: row.error_message,
                verification,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let now = crate::store::now();
        let id = Uuid::new_v4();
        let token = encode_page_token(now, id);
        assert_eq!(decode_page_token(&token).unwrap(), (now, id));
        for bad in ["", "abc", "12_notauuid", "x_0000"] {
            assert!(decode_page_token(bad).is_err(), "{bad}");
        }
    }
}
