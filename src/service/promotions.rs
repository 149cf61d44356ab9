//! Promotions: validating a request in the contract's order, storing it for the engine,
//! and reading promotions, their targets and their progress.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    authorize,
    lookup::{
        apps_by_id, current_release, find_app, find_pipeline, find_release_of_app, parse_uuid,
    },
    views::{
        CheckRef, CheckVerdict, PlannedTarget, PromotionEventView, PromotionPlan, PromotionView,
        ReleaseRef, ResourceRef, TargetDrift, TargetView,
    },
};
use crate::{
    domain::{
        access::{Caller, Role},
        promotion::{KeyDrift, PromotionStatus, TargetStatus},
        stage::Stage,
        status::{unmet_contexts, ReleaseState, StatusState},
    },
    error::{Error, Result},
    lifecycle::{self, PromotionRecord, Transaction},
    progress::{self, EventHub},
    store::entities::{
        app, config_var, coupling, pipeline, promotion, promotion_target, release, release_status,
    },
};

const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 500;
const REQUEST_ID_MAX_CHARS: usize = 255;

/// A promotion request as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct NewPromotion {
    pub pipeline: String,
    pub source_app: String,
    /// The release to promote; `None` promotes the source app's current release.
    pub source_release: Option<String>,
    /// The target apps; empty means every app at the next stage.
    pub targets: Vec<String>,
    /// `Some(true)`: check config drift. `Some(false)`: an elevated caller bypasses unmet
    /// status checks. `None`: neither.
    pub safe: Option<bool>,
    pub dry_run: bool,
    pub request_id: Option<String>,
}

impl NewPromotion {
    /// Identifies the request for idempotent retries: the same key must come with the same
    /// request.
    fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.pipeline.as_str(),
            self.source_app.as_str(),
            self.source_release.as_deref().unwrap_or(""),
            &self.targets.join("\u{1f}"),
            match self.safe {
                None => "",
                Some(true) => "safe",
                Some(false) => "unsafe",
            },
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0x1e]);
        }
        hex::encode(hasher.finalize())
    }
}

/// What creating a promotion produced.
#[derive(Debug, Clone)]
pub enum CreatedPromotion {
    /// A new promotion, stored and queued for the engine.
    Created(PromotionView),
    /// The promotion an earlier request with the same `request_id` created.
    Replayed(PromotionView),
    /// A dry run's plan; nothing was written.
    Planned(PromotionPlan),
}

/// A page of promotions, newest first.
#[derive(Debug, Clone)]
pub struct PromotionPage {
    pub promotions: Vec<PromotionView>,
    /// Pass back to get the next page; `None` on the last one.
    pub next_page_token: Option<String>,
}

#[derive(Clone)]
pub struct Promotions {
    db: DatabaseConnection,
    hub: Arc<EventHub>,
}

/// A target app with its coupling.
struct ResolvedTarget {
    app: app::Model,
    coupling: coupling::Model,
}

fn resource(model: &app::Model) -> ResourceRef {
    ResourceRef {
        id: model.id,
        name: model.name.clone(),
    }
}

fn contexts_of(coupling: &coupling::Model) -> Result<Vec<String>> {
    serde_json::from_str(&coupling.required_contexts)
        .map_err(|error| Error::Internal(format!("coupling {}: {error}", coupling.id)))
}

fn stage_of(coupling: &coupling::Model) -> Result<Stage> {
    Stage::parse("stage", &coupling.stage)
        .map_err(|error| Error::Internal(format!("coupling {}: {error}", coupling.id)))
}

fn describe_state(state: Option<StatusState>) -> &'static str {
    state.map(StatusState::as_str).unwrap_or("missing")
}

impl Promotions {
    pub fn new(db: DatabaseConnection, hub: Arc<EventHub>) -> Self {
        Self { db, hub }
    }

    /// Validates and stores a promotion, or plans it on a dry run. Validation follows the
    /// contract's order and writes nothing unless all of it passes.
    pub async fn create(&self, request: NewPromotion, caller: &Caller) -> Result<CreatedPromotion> {
        authorize(caller, Role::Write, "promoting")?;
        let request_id = match request.request_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(id)
                if id.chars().count() > REQUEST_ID_MAX_CHARS || id.chars().any(char::is_control) =>
            {
                return Err(Error::invalid(
                    "request_id",
                    format!(
                        "must be at most {REQUEST_ID_MAX_CHARS} characters, without control characters"
                    ),
                ))
            }
            Some(id) => Some(id.to_owned()),
        };
        let fingerprint = request.fingerprint();
        if let (Some(id), false) = (&request_id, request.dry_run) {
            if let Some(existing) = self.replay(id, &fingerprint).await? {
                return Ok(CreatedPromotion::Replayed(existing));
            }
        }

        // 1. The pipeline.
        let pipeline = find_pipeline(&self.db, "pipeline", &request.pipeline).await?;
        // 2. The source app, its coupling and the next stage.
        let source = find_app(&self.db, "source.app", &request.source_app).await?;
        let source_coupling = coupling::Entity::find()
            .filter(coupling::Column::AppId.eq(source.id))
            .filter(coupling::Column::PipelineId.eq(pipeline.id))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "source.app",
                    format!(
                        "app '{}' is not coupled to pipeline '{}'",
                        source.name, pipeline.name
                    ),
                )
            })?;
        let source_stage = stage_of(&source_coupling)?;
        let target_stage = source_stage.next().ok_or_else(|| {
            Error::invalid(
                "source.app",
                format!(
                    "app '{}' is at stage {source_stage}, which has no next stage",
                    source.name
                ),
            )
        })?;
        // 3. The targets.
        let targets = self
            .resolve_targets(&request.targets, &pipeline, &source, target_stage)
            .await?;
        // 4. The release.
        let release = match request.source_release.as_deref() {
            Some(id) if !id.is_empty() => {
                let named = find_release_of_app(&self.db, &source, "source.release.id", id).await?;
                if named.status != ReleaseState::Succeeded.as_str() {
                    return Err(Error::invalid(
                        "source.release.id",
                        format!(
                            "release v{} of app '{}' is {}; only a succeeded release can be promoted",
                            named.version, source.name, named.status
                        ),
                    ));
                }
                named
            }
            _ => current_release(&self.db, source.id).await?.ok_or_else(|| {
                Error::invalid(
                    "source.release",
                    format!("app '{}' has no succeeded release to promote", source.name),
                )
            })?,
        };
        // 5. Required status checks.
        let verdicts = self
            .check_statuses(&release, &targets, target_stage)
            .await?;
        let unmet: Vec<CheckVerdict> = verdicts.iter().filter(|v| !v.satisfied).cloned().collect();
        let mut overridden = Vec::new();
        if !unmet.is_empty() {
            let listing = unmet
                .iter()
                .map(|v| {
                    format!(
                        "{} ({}): {} [{}]",
                        v.check.app_name,
                        v.check.stage,
                        v.check.context,
                        describe_state(v.state)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            if request.safe == Some(false) {
                authorize(
                    caller,
                    Role::Admin,
                    &format!("bypassing unmet status checks ({listing})"),
                )?;
                overridden = unmet.iter().map(|v| v.check.clone()).collect();
            } else {
                return Err(Error::UnmetStatusChecks {
                    message: format!(
                        "required status checks are not met on release v{} of app '{}': {listing}",
                        release.version, source.name
                    ),
                    unmet,
                });
            }
        }
        // 6. Safe promotion: config keys must match.
        let safe = request.safe == Some(true);
        let drift = self.config_drift(&source, &targets).await?;
        if safe && !drift.is_empty() {
            let listing = drift
                .iter()
                .map(|d| {
                    let mut sides = Vec::new();
                    if !d.missing_on_target.is_empty() {
                        sides.push(format!(
                            "'{}' lacks {}",
                            d.app.name,
                            d.missing_on_target.join(", ")
                        ));
                    }
                    if !d.missing_on_source.is_empty() {
                        sides.push(format!(
                            "source '{}' lacks {} (set on '{}')",
                            source.name,
                            d.missing_on_source.join(", "),
                            d.app.name
                        ));
                    }
                    sides.join("; ")
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::ConfigDrift {
                message: format!("safe promotion refused, config keys differ: {listing}"),
                drift,
            });
        }
        let verdicts = verdicts
            .into_iter()
            .map(|mut verdict| {
                verdict.overridden = !verdict.satisfied && overridden.contains(&verdict.check);
                verdict
            })
            .collect();
        let release_ref = ReleaseRef {
            id: release.id,
            version: release.version,
        };
        let pipeline_ref = ResourceRef {
            id: pipeline.id,
            name: pipeline.name.clone(),
        };
        // 7. A dry run answers with the plan.
        if request.dry_run {
            let mut planned = Vec::with_capacity(targets.len());
            for target in &targets {
                planned.push(PlannedTarget {
                    app: resource(&target.app),
                    busy_with: lifecycle::queued_behind(&self.db, target.app.id, None).await?,
                });
            }
            return Ok(CreatedPromotion::Planned(PromotionPlan {
                pipeline: pipeline_ref,
                source_app: resource(&source),
                source_release: release_ref,
                source_stage,
                target_stage,
                targets: planned,
                checks: verdicts,
                drift,
                safe,
            }));
        }
        // 8. Store it, pending, for the engine.
        let names: Vec<&str> = targets.iter().map(|t| t.app.name.as_str()).collect();
        let mut message = format!(
            "promoting release v{} of '{}' to {}",
            release.version,
            source.name,
            names.join(", ")
        );
        if !overridden.is_empty() {
            message.push_str(&format!(
                "; {} unmet status checks bypassed by '{}'",
                overridden.len(),
                caller.name
            ));
        }
        let record = PromotionRecord {
            pipeline: pipeline_ref,
            source_app: resource(&source),
            source_release_id: release.id,
            targets: targets.iter().map(|target| resource(&target.app)).collect(),
            safe,
            created_by: caller.name.clone(),
            overridden_checks: serde_json::to_string(&overridden)
                .map_err(|error| Error::Internal(error.to_string()))?,
            idempotency: request_id.map(|id| (id, fingerprint)),
            message,
        };
        self.store(record).await
    }

    /// The promotion an earlier request with this key created, if any. A different request
    /// under the same key is refused.
    async fn replay(&self, request_id: &str, fingerprint: &str) -> Result<Option<PromotionView>> {
        let Some(existing) = promotion::Entity::find()
            .filter(promotion::Column::RequestId.eq(request_id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if existing.request_fingerprint.as_deref() != Some(fingerprint) {
            return Err(Error::invalid(
                "request_id",
                format!("'{request_id}' was already used for a different promotion request"),
            ));
        }
        Ok(Some(promotion_view(&self.db, existing).await?))
    }

    async fn resolve_targets(
        &self,
        requested: &[String],
        pipeline: &pipeline::Model,
        source: &app::Model,
        stage: Stage,
    ) -> Result<Vec<ResolvedTarget>> {
        if requested.is_empty() {
            let couplings = coupling::Entity::find()
                .filter(coupling::Column::PipelineId.eq(pipeline.id))
                .filter(coupling::Column::Stage.eq(stage.as_str()))
                .all(&self.db)
                .await?;
            let apps = apps_by_id(&self.db, couplings.iter().map(|c| c.app_id)).await?;
            let mut resolved: Vec<ResolvedTarget> = couplings
                .into_iter()
                .filter_map(|coupling| {
                    apps.get(&coupling.app_id).map(|app| ResolvedTarget {
                        app: app.clone(),
                        coupling,
                    })
                })
                .collect();
            if resolved.is_empty() {
                return Err(Error::invalid(
                    "targets",
                    format!(
                        "no app is coupled at stage {stage} of pipeline '{}'",
                        pipeline.name
                    ),
                ));
            }
            resolved.sort_by(|a, b| a.app.name.cmp(&b.app.name));
            return Ok(resolved);
        }
        let mut resolved: Vec<ResolvedTarget> = Vec::with_capacity(requested.len());
        for (index, reference) in requested.iter().enumerate() {
            let field = format!("targets[{index}].app");
            let app = find_app(&self.db, &field, reference).await?;
            if app.id == source.id {
                return Err(Error::invalid(
                    field,
                    format!("'{}' is the source app", app.name),
                ));
            }
            if resolved.iter().any(|target| target.app.id == app.id) {
                return Err(Error::invalid(
                    field,
                    format!("'{}' is listed twice", app.name),
                ));
            }
            let coupling = coupling::Entity::find()
                .filter(coupling::Column::AppId.eq(app.id))
                .one(&self.db)
                .await?;
            let coupling = match coupling {
                Some(c) if c.pipeline_id == pipeline.id && c.stage == stage.as_str() => c,
                Some(c) if c.pipeline_id == pipeline.id => {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "'{}' is at stage {}, not at the next stage {stage}",
                            app.name, c.stage
                        ),
                    ))
                }
                _ => {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "'{}' is not coupled to pipeline '{}'",
                            app.name, pipeline.name
                        ),
                    ))
                }
            };
            resolved.push(ResolvedTarget { app, coupling });
        }
        Ok(resolved)
    }

    async fn check_statuses(
        &self,
        release: &release::Model,
        targets: &[ResolvedTarget],
        stage: Stage,
    ) -> Result<Vec<CheckVerdict>> {
        let statuses: Vec<(String, StatusState)> = release_status::Entity::find()
            .filter(release_status::Column::ReleaseId.eq(release.id))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|row| {
                StatusState::parse("state", &row.state)
                    .ok()
                    .map(|state| (row.context, state))
            })
            .collect();
        let state_of: HashMap<&str, StatusState> = statuses
            .iter()
            .map(|(context, state)| (context.as_str(), *state))
            .collect();
        let mut verdicts = Vec::new();
        for target in targets {
            let required = contexts_of(&target.coupling)?;
            let unmet = unmet_contexts(&required, &statuses);
            for context in &required {
                verdicts.push(CheckVerdict {
                    check: CheckRef {
                        app_id: target.app.id,
                        app_name: target.app.name.clone(),
                        stage: stage.as_str().to_owned(),
                        context: context.clone(),
                    },
                    state: state_of.get(context.as_str()).copied(),
                    satisfied: !unmet.contains(&context.as_str()),
                    overridden: false,
                });
            }
        }
        Ok(verdicts)
    }

    async fn config_drift(
        &self,
        source: &app::Model,
        targets: &[ResolvedTarget],
    ) -> Result<Vec<TargetDrift>> {
        let keys_of = |app_id: Uuid| async move {
            let keys: Vec<String> = config_var::Entity::find()
                .select_only()
                .column(config_var::Column::Key)
                .filter(config_var::Column::AppId.eq(app_id))
                .into_tuple()
                .all(&self.db)
                .await?;
            Ok::<BTreeSet<String>, Error>(keys.into_iter().collect())
        };
        let source_keys = keys_of(source.id).await?;
        let mut drift = Vec::new();
        for target in targets {
            let target_keys = keys_of(target.app.id).await?;
            let difference = KeyDrift::between(&source_keys, &target_keys);
            if !difference.is_empty() {
                drift.push(TargetDrift {
                    app: resource(&target.app),
                    missing_on_target: difference.missing_on_target,
                    missing_on_source: difference.missing_on_source,
                });
            }
        }
        Ok(drift)
    }

    /// Stores a validated promotion for the engine. A concurrent retry with the same
    /// idempotency key that won the race is answered with its promotion.
    async fn store(&self, record: PromotionRecord) -> Result<CreatedPromotion> {
        let idempotency = record.idempotency.clone();
        let mut tx = Transaction::begin(&self.db).await?;
        let Some(stored) = lifecycle::create_promotion(&mut tx, record).await? else {
            drop(tx);
            if let Some((request_id, fingerprint)) = &idempotency {
                if let Some(existing) = self.replay(request_id, fingerprint).await? {
                    return Ok(CreatedPromotion::Replayed(existing));
                }
            }
            return Err(Error::Unavailable(
                "a concurrent request with the same idempotency key did not finish; retry".into(),
            ));
        };
        tx.commit(&self.hub).await?;
        self.hub.signal_work();
        Ok(CreatedPromotion::Created(
            promotion_view(&self.db, stored).await?,
        ))
    }

    async fn find(&self, id: &str) -> Result<promotion::Model> {
        let uuid = parse_uuid("id", id)?;
        promotion::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("promotion", id))
    }

    pub async fn get(&self, id: &str) -> Result<PromotionView> {
        let model = self.find(id).await?;
        promotion_view(&self.db, model).await
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
        let mut query = promotion::Entity::find()
            .order_by_desc(promotion::Column::CreatedAt)
            .order_by_desc(promotion::Column::Id)
            .limit(size + 1);
        if let Some(reference) = pipeline.filter(|p| !p.is_empty()) {
            let found = find_pipeline(&self.db, "pipeline", reference).await?;
            query = query.filter(promotion::Column::PipelineId.eq(found.id));
        }
        if let Some(token) = page_token.filter(|t| !t.is_empty()) {
            let (created_at, id) = decode_page_token(token)?;
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
        let mut rows = query.all(&self.db).await?;
        let next_page_token = if rows.len() as u64 > size {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| encode_page_token(last.created_at, last.id))
        } else {
            None
        };
        let mut promotions = Vec::with_capacity(rows.len());
        for row in rows {
            promotions.push(promotion_view(&self.db, row).await?);
        }
        Ok(PromotionPage {
            promotions,
            next_page_token,
        })
    }

    /// The promotion's targets, in the order they were given.
    pub async fn targets(&self, id: &str) -> Result<Vec<TargetView>> {
        let model = self.find(id).await?;
        target_views(&self.db, model.id).await
    }

    /// Cancels the promotion's pending targets; running ones finish. The promotion ends
    /// `canceled` once nothing runs any more.
    pub async fn cancel(&self, id: &str, caller: &Caller) -> Result<PromotionView> {
        authorize(caller, Role::Write, "canceling a promotion")?;
        let model = self.find(id).await?;
        let mut tx = Transaction::begin(&self.db).await?;
        lifecycle::cancel_promotion(&mut tx, model.id, &caller.name).await?;
        tx.commit(&self.hub).await?;
        self.hub.signal_work();
        self.get(id).await
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
        let model = self.find(id).await?;
        let finished = PromotionStatus::parse(&model.status).is_some_and(PromotionStatus::is_final);
        if finished && after_sequence >= model.event_count {
            return Ok(None);
        }
        let (sink, events) = mpsc::channel(64);
        progress::watch(
            self.db.clone(),
            Arc::clone(&self.hub),
            model.id,
            after_sequence,
            sink,
        );
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
    let pipeline = pipeline::Entity::find_by_id(model.pipeline_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal(format!("promotion {} lost its pipeline", model.id)))?;
    let source = app::Entity::find_by_id(model.source_app_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal(format!("promotion {} lost its source", model.id)))?;
    let release = release::Entity::find_by_id(model.source_release_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal(format!("promotion {} lost its release", model.id)))?;
    let status = PromotionStatus::parse(&model.status)
        .ok_or_else(|| Error::Internal(format!("promotion {} has an unknown status", model.id)))?;
    let overridden_checks: Vec<CheckRef> = serde_json::from_str(&model.overridden_checks)
        .map_err(|error| Error::Internal(format!("promotion {}: {error}", model.id)))?;
    Ok(PromotionView {
        id: model.id,
        pipeline: ResourceRef {
            id: pipeline.id,
            name: pipeline.name,
        },
        source_app: resource(&source),
        source_release: ReleaseRef {
            id: release.id,
            version: release.version,
        },
        status,
        safe: model.safe,
        created_by: model.created_by,
        overridden_checks,
        request_id: model.request_id,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

/// The targets of one promotion, in order.
pub async fn target_views(
    db: &impl ConnectionTrait,
    promotion_id: Uuid,
) -> Result<Vec<TargetView>> {
    let rows = promotion_target::Entity::find()
        .filter(promotion_target::Column::PromotionId.eq(promotion_id))
        .order_by_asc(promotion_target::Column::Position)
        .all(db)
        .await?;
    let apps = apps_by_id(db, rows.iter().map(|t| t.app_id)).await?;
    let release_ids: Vec<Uuid> = rows.iter().filter_map(|t| t.release_id).collect();
    let releases: HashMap<Uuid, i64> = if release_ids.is_empty() {
        HashMap::new()
    } else {
        release::Entity::find()
            .filter(release::Column::Id.is_in(release_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.id, r.version))
            .collect()
    };
    rows.into_iter()
        .map(|row| {
            let app = apps
                .get(&row.app_id)
                .map(resource)
                .ok_or_else(|| Error::Internal(format!("target {} lost its app", row.id)))?;
            let status = TargetStatus::parse(&row.status).ok_or_else(|| {
                Error::Internal(format!("target {} has an unknown status", row.id))
            })?;
            Ok(TargetView {
                id: row.id,
                promotion_id: row.promotion_id,
                app,
                release: row.release_id.and_then(|id| {
                    releases.get(&id).map(|version| ReleaseRef {
                        id,
                        version: *version,
                    })
                }),
                status,
                error_message: row.error_message,
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

    #[test]
    fn the_fingerprint_changes_with_the_request() {
        let base = NewPromotion {
            pipeline: "shop".into(),
            source_app: "shop-dev".into(),
            ..Default::default()
        };
        let same = base.clone();
        assert_eq!(base.fingerprint(), same.fingerprint());
        let safer = NewPromotion {
            safe: Some(true),
            ..base.clone()
        };
        assert_ne!(base.fingerprint(), safer.fingerprint());
        let targeted = NewPromotion {
            targets: vec!["shop-stg".into()],
            ..base.clone()
        };
        assert_ne!(base.fingerprint(), targeted.fingerprint());
    }
}
