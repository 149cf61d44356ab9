//! Creating a promotion: validation in the contract's order, writing nothing unless all
//! of it passes, then the plan (dry run) or the stored promotion.

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    gates::{config_drift, judge_freeze, judge_status_checks, StatusGate},
    memory::resolve_from_memory,
    promotion_view,
    reads::{view_with_names, PromotionNames},
    required_approvals, CreatedPromotion, NewPromotion, Promotions, Resolution, ResolvedTarget,
    Safety,
};
use crate::{
    audit::Actor,
    domain::{
        access::{Caller, Role},
        freeze::FrozenStage,
        stage::Stage,
        status::ReleaseState,
    },
    error::{Error, Result},
    lifecycle::{self, PromotionRecord, Transaction},
    service::{
        authorize,
        lookup::{
            app_ref, apps_by_id, coupling_contexts, coupling_policy, coupling_stage,
            coupling_verification, current_release, find_app, find_apps, find_pipeline,
            find_release_of_app, parse_uuid,
        },
    },
    store::{
        self,
        entities::{app, coupling, pipeline, release},
        queue::{queued_behind, Blocker, QueuePlace},
    },
    views::{
        FreezeRef, PlannedTarget, PromotionPlan, PromotionView, ReleaseRef, ResourceRef,
        TargetDrift,
    },
};

const REQUEST_ID_MAX_CHARS: usize = 255;

/// A request that passed every gate.
struct Validated {
    pipeline: ResourceRef,
    source: ResourceRef,
    source_stage: Stage,
    target_stage: Stage,
    targets: Vec<ResolvedTarget>,
    release: release::Model,
    checks: StatusGate,
    /// The freeze an elevated caller broke glass through, if the stage was frozen.
    overridden_freeze: Option<FrozenStage>,
    drift: Vec<TargetDrift>,
    safe: bool,
}

/// The idempotency key, trimmed; an empty one is none.
fn checked_request_id(request_id: Option<&str>) -> Result<Option<String>> {
    match request_id.map(str::trim) {
        None | Some("") => Ok(None),
        Some(id)
            if id.chars().count() > REQUEST_ID_MAX_CHARS || id.chars().any(char::is_control) =>
        {
            Err(Error::invalid(
                "request_id",
                format!(
                    "must be at most {REQUEST_ID_MAX_CHARS} characters, without control characters"
                ),
            ))
        }
        Some(id) => Ok(Some(id.to_owned())),
    }
}

impl Promotions {
    /// Validates and stores a promotion, or plans it on a dry run.
    pub async fn create(&self, request: NewPromotion, caller: &Caller) -> Result<CreatedPromotion> {
        authorize(caller, Role::Write, "promoting")?;
        let request_id = checked_request_id(request.request_id.as_deref())?;
        let fingerprint = request.fingerprint();
        if let (Some(id), false) = (&request_id, request.dry_run) {
            if let Some(existing) = self.replay(id, &fingerprint).await? {
                return Ok(CreatedPromotion::Replayed(existing));
            }
        }
        let validated = self.validate(&request, caller).await?;
        if request.dry_run {
            return Ok(CreatedPromotion::Planned(self.plan(validated).await?));
        }
        let source_release = ReleaseRef {
            id: validated.release.id,
            version: validated.release.version,
        };
        let record = validated.into_record(caller, request_id.map(|id| (id, fingerprint)))?;
        self.store(record, source_release).await
    }

    /// What a dry run of `request` answers, without the dry run's role check: the verdict
    /// a read (the stage diff) reports, computed by the dry run's own code.
    pub(crate) async fn dry_run_verdict(
        &self,
        mut request: NewPromotion,
        caller: &Caller,
    ) -> Result<PromotionPlan> {
        request.dry_run = true;
        let validated = self.validate(&request, caller).await?;
        self.plan(validated).await
    }

    /// Steps 1 to 6 of the contract, in its order.
    async fn validate(&self, request: &NewPromotion, caller: &Caller) -> Result<Validated> {
        let Resolution {
            pipeline,
            source,
            source_stage,
            target_stage,
            targets,
        } = match resolve_from_memory(&self.hub.read_model, request).await {
            Some(resolution) => resolution,
            None => self.resolve_from_database(request).await?,
        };
        let release = self
            .resolve_release(&source, request.source_release.as_deref())
            .await?;
        let overridden_freeze =
            judge_freeze(&self.db, &pipeline, target_stage, request.safety, caller).await?;
        let checks = judge_status_checks(
            &self.db,
            &release,
            &source,
            &targets,
            target_stage,
            request.safety,
            caller,
        )
        .await?;
        // Drift refuses only a safe promotion, and is otherwise told only in a dry run's
        // plan: other promotions have no use for the config keys.
        let drift = if request.dry_run || request.safety == Safety::CheckConfigDrift {
            config_drift(&self.db, &source, &targets, request.safety).await?
        } else {
            Vec::new()
        };
        Ok(Validated {
            pipeline,
            source,
            source_stage,
            target_stage,
            targets,
            release,
            checks,
            overridden_freeze,
            drift,
            safe: request.safety == Safety::CheckConfigDrift,
        })
    }

    /// Steps 1 to 3 from the database: the pipeline, the source and the targets, or the
    /// first refusal among them.
    async fn resolve_from_database(&self, request: &NewPromotion) -> Result<Resolution> {
        let pipeline = find_pipeline(&self.db, "pipeline", &request.pipeline).await?;
        let (source, source_stage, target_stage) =
            self.resolve_source(&pipeline, &request.source_app).await?;
        let targets = self
            .resolve_targets(&request.targets, &pipeline, &source, target_stage)
            .await?;
        Ok(Resolution {
            pipeline: ResourceRef {
                id: pipeline.id,
                name: pipeline.name,
            },
            source,
            source_stage,
            target_stage,
            targets,
        })
    }

    /// The source app, coupled to the pipeline, and the stage its promotions go to.
    async fn resolve_source(
        &self,
        pipeline: &pipeline::Model,
        reference: &str,
    ) -> Result<(ResourceRef, Stage, Stage)> {
        let source = app_ref(&find_app(&self.db, "source.app", reference).await?);
        let coupling = store::couplings::coupling_of_app(&self.db, source.id)
            .await?
            .filter(|coupling| coupling.pipeline_id == pipeline.id)
            .ok_or_else(|| {
                Error::invalid(
                    "source.app",
                    format!(
                        "app '{}' is not coupled to pipeline '{}'",
                        source.name, pipeline.name
                    ),
                )
            })?;
        let source_stage = coupling_stage(&coupling)?;
        let target_stage = source_stage.next().ok_or_else(|| {
            Error::invalid(
                "source.app",
                format!(
                    "app '{}' is at stage {source_stage}, which has no next stage",
                    source.name
                ),
            )
        })?;
        Ok((source, source_stage, target_stage))
    }

    /// The named release, which must have succeeded, or the source's current one.
    async fn resolve_release(
        &self,
        source: &ResourceRef,
        named: Option<&str>,
    ) -> Result<release::Model> {
        match named {
            Some(id) if !id.is_empty() => {
                // A promotion names its source release by id, as the contract's `{id}`.
                parse_uuid("source.release.id", id)?;
                let named = find_release_of_app(&self.db, source, "source.release.id", id).await?;
                if named.status != ReleaseState::Succeeded.as_str() {
                    return Err(Error::invalid(
                        "source.release.id",
                        format!(
                            "release v{} of app '{}' is {}; only a succeeded release can be promoted",
                            named.version, source.name, named.status
                        ),
                    ));
                }
                Ok(named)
            }
            _ => current_release(&self.db, source.id).await?.ok_or_else(|| {
                Error::invalid(
                    "source.release",
                    format!("app '{}' has no succeeded release to promote", source.name),
                )
            }),
        }
    }

    /// Step 7: what the promotion would do, including which targets would wait.
    async fn plan(&self, validated: Validated) -> Result<PromotionPlan> {
        let mut planned = Vec::with_capacity(validated.targets.len());
        for target in &validated.targets {
            planned.push(PlannedTarget {
                app: target.app.clone(),
                busy_with: match queued_behind(&self.db, target.app.id, QueuePlace::New, &[])
                    .await?
                {
                    Some(Blocker::Promotion(id)) => Some(id),
                    // The plan names promotions; a rollback in progress is not one.
                    Some(Blocker::Rollback(_)) | None => None,
                },
                verification: target.verification.clone(),
            });
        }
        let required_approvals = validated.required_approvals();
        Ok(PromotionPlan {
            required_approvals,
            pipeline: validated.pipeline.clone(),
            source_app: validated.source.clone(),
            source_release: ReleaseRef {
                id: validated.release.id,
                version: validated.release.version,
            },
            source_stage: validated.source_stage,
            target_stage: validated.target_stage,
            targets: planned,
            checks: validated.checks.verdicts,
            overridden_freezes: validated
                .overridden_freeze
                .iter()
                .map(FreezeRef::from)
                .collect(),
            drift: validated.drift,
            safe: validated.safe,
        })
    }

    /// Step 8: stores a validated promotion for the engine. A concurrent retry with the
    /// same idempotency key that won the race is answered with its promotion.
    async fn store(
        &self,
        record: PromotionRecord,
        source_release: ReleaseRef,
    ) -> Result<CreatedPromotion> {
        let idempotency = record.idempotency.clone();
        // A new promotion has no approvals yet, and its names were just resolved.
        let names = PromotionNames {
            pipeline: record.pipeline.clone(),
            source_app: record.source_app.clone(),
            source_release,
        };
        let mut tx = Transaction::begin(&self.db, &self.hub).await?;
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
        tx.commit().await?;
        crate::metrics::record_promotion_created("request");
        self.hub.signal_work();
        Ok(CreatedPromotion::Created(view_with_names(
            stored,
            names,
            Vec::new(),
        )?))
    }

    /// The promotion an earlier request with this key created, if any. A different request
    /// under the same key is refused.
    async fn replay(&self, request_id: &str, fingerprint: &str) -> Result<Option<PromotionView>> {
        let Some(existing) = store::promotions::promotion_of_request(&self.db, request_id).await?
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
        source: &ResourceRef,
        stage: Stage,
    ) -> Result<Vec<ResolvedTarget>> {
        if requested.is_empty() {
            let couplings = store::couplings::couplings_of_pipeline(
                &self.db,
                pipeline.id,
                Some(stage.as_str()),
            )
            .await?;
            let apps = apps_by_id(&self.db, couplings.iter().map(|c| c.app_id)).await?;
            let mut resolved = Vec::with_capacity(couplings.len());
            for coupling in couplings {
                if let Some(app) = apps.get(&coupling.app_id) {
                    resolved.push(resolved_target(app, &coupling)?);
                }
            }
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
        // Every app and coupling in two queries; refused in the order the targets are listed.
        let references: Vec<(String, &str)> = requested
            .iter()
            .enumerate()
            .map(|(index, reference)| (format!("targets[{index}].app"), reference.as_str()))
            .collect();
        let found = find_apps(&self.db, &references).await?;
        let found_ids = found
            .iter()
            .filter_map(|app| app.as_ref().ok().and_then(Option::as_ref))
            .map(|app| app.id);
        let mut couplings: HashMap<Uuid, coupling::Model> =
            store::couplings::couplings_of_apps(&self.db, found_ids)
                .await?
                .into_iter()
                .map(|coupling| (coupling.app_id, coupling))
                .collect();
        let mut resolved: Vec<ResolvedTarget> = Vec::with_capacity(requested.len());
        for ((field, reference), app) in references.into_iter().zip(found) {
            let app = app?.ok_or_else(|| Error::not_found("app", reference))?;
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
            let coupling = couplings.remove(&app.id);
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
            resolved.push(resolved_target(&app, &coupling)?);
        }
        Ok(resolved)
    }
}

impl Validated {
    /// The most approvals any target's coupling requires.
    fn required_approvals(&self) -> u32 {
        required_approvals(&self.targets)
    }

    /// What the lifecycle stores, with the text of `promotion.created`.
    fn into_record(
        self,
        caller: &Caller,
        idempotency: Option<(String, String)>,
    ) -> Result<PromotionRecord> {
        let names: Vec<&str> = self.targets.iter().map(|t| t.app.name.as_str()).collect();
        let mut message = format!(
            "promoting release v{} of '{}' to {}",
            self.release.version,
            self.source.name,
            names.join(", ")
        );
        let overridden = &self.checks.overridden;
        if !overridden.is_empty() {
            message.push_str(&format!(
                "; {} unmet status checks bypassed by '{}'",
                overridden.len(),
                caller.name
            ));
        }
        let overridden_freezes: Vec<FreezeRef> =
            self.overridden_freeze.iter().map(FreezeRef::from).collect();
        if let Some(frozen) = &self.overridden_freeze {
            message.push_str(&format!(
                "; the freeze of stage {} ({}) overridden by '{}'",
                frozen.stage, frozen.reason, caller.name
            ));
        }
        Ok(PromotionRecord {
            id: uuid::Uuid::new_v4(),
            pipeline: self.pipeline.clone(),
            source_app: self.source.clone(),
            source_release_id: self.release.id,
            targets: self.targets.iter().map(|t| t.app.clone()).collect(),
            safe: self.safe,
            created_by: caller.name.clone(),
            author: caller.author(),
            overridden_checks: serde_json::to_string(overridden)
                .map_err(|error| Error::Internal(error.to_string()))?,
            freeze_exempt: !overridden_freezes.is_empty(),
            overridden_freezes: serde_json::to_string(&overridden_freezes)
                .map_err(|error| Error::Internal(error.to_string()))?,
            idempotency,
            message,
            required_approvals: self.required_approvals(),
            triggered_by: None,
            actor: Actor::of(caller),
        })
    }
}

/// A target app with what its coupling, as stored, requires.
fn resolved_target(app: &app::Model, coupling: &coupling::Model) -> Result<ResolvedTarget> {
    Ok(ResolvedTarget {
        app: app_ref(app),
        required_contexts: coupling_contexts(coupling)?,
        policy: coupling_policy(coupling),
        verification: coupling_verification(coupling),
    })
}
