//! What promoting from one stage to the next would change: per target app, the images,
//! the config keys each side lacks, each required check's state, and whether a promotion
//! would be accepted, decided by the dry run's own code.

use std::collections::{BTreeMap, HashMap};

use super::{NewPromotion, PageRequest, Safety, Services};
use crate::{
    domain::{
        access::Caller, freeze::FrozenStage, promotion::KeyDrift, stage::Stage,
        verification::Verification,
    },
    error::{Error, Result},
    store,
    views::{CouplingView, ReleaseSummary, ResourceRef},
};

/// What to compare: `to` defaults to, and must be, the stage after `from`.
#[derive(Debug, Clone, Default)]
pub struct DiffRequest {
    pub pipeline: String,
    pub from: String,
    pub to: Option<String>,
    pub source: Option<String>,
}

/// The stage diff.
#[derive(Debug, Clone)]
pub struct StageDiffView {
    pub pipeline: ResourceRef,
    pub from: Stage,
    pub to: Stage,
    pub source_app: ResourceRef,
    pub source_release: ReleaseSummary,
    pub targets: Vec<TargetDiff>,
}

/// One app at the `to` stage, against the source.
#[derive(Debug, Clone)]
pub struct TargetDiff {
    pub app: ResourceRef,
    pub current: Option<ReleaseSummary>,
    pub image_differs: bool,
    pub config_keys: KeyDrift,
    /// Each context the target's coupling requires, with its state on the source release
    /// (`missing` when it has none).
    pub checks: Vec<(String, &'static str)>,
    pub verification: Option<Verification>,
    pub frozen: Option<FrozenStage>,
    pub promotable: bool,
    pub blocked_by: Vec<Blocker>,
}

/// Why a promotion into a target would be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// `status_check`, `freeze`, or `refused` for any other refusal.
    pub kind: &'static str,
    /// The required context, for a `status_check`.
    pub context: Option<String>,
    pub message: String,
}

/// The blockers a refused dry run reports; `Err` for a failure that is not a verdict.
fn blockers_of(error: Error) -> Result<Vec<Blocker>> {
    Ok(match error {
        Error::UnmetStatusChecks { unmet, .. } => unmet
            .into_iter()
            .map(|verdict| Blocker {
                kind: "status_check",
                message: format!(
                    "{} is {} on the source release",
                    verdict.check.context,
                    verdict.state.map_or("missing", |state| state.as_str())
                ),
                context: Some(verdict.check.context),
            })
            .collect(),
        Error::Frozen { message, .. } => vec![Blocker {
            kind: "freeze",
            context: None,
            message,
        }],
        error @ (Error::Unavailable(_) | Error::Internal(_)) => return Err(error),
        other => vec![Blocker {
            kind: "refused",
            context: None,
            message: other.client_message(),
        }],
    })
}

impl Services {
    /// Compares two adjacent stages of a pipeline (see [`DiffRequest`]).
    pub async fn diff_stages(
        &self,
        request: DiffRequest,
        caller: &Caller,
    ) -> Result<StageDiffView> {
        if request.from.trim().is_empty() {
            return Err(Error::invalid(
                "from",
                "is required: the stage to promote from (review, development or staging)",
            ));
        }
        let from = Stage::parse("from", &request.from)?;
        let next = from.next().ok_or_else(|| {
            Error::invalid(
                "from",
                format!("{from} is the last stage: nothing follows it"),
            )
        })?;
        let to = match request.to.as_deref() {
            None => next,
            Some(to) => Stage::parse("to", to)?,
        };
        if to != next {
            return Err(Error::invalid(
                "to",
                format!("must be the stage after {from}, which is {next}"),
            ));
        }
        let pipeline = self.pipelines.get(&request.pipeline).await?;
        let couplings = self
            .couplings
            .list_for_pipeline(&pipeline.id.to_string(), &PageRequest::everything())
            .await?
            .items;
        let at = |stage: Stage| -> Vec<&CouplingView> {
            couplings.iter().filter(|c| c.stage == stage).collect()
        };
        let sources = at(from);
        let source = match request.source.as_deref() {
            Some(source) => {
                let app = self.apps.get(source).await?;
                *sources.iter().find(|c| c.app.id == app.id).ok_or_else(|| {
                    Error::invalid(
                        "source",
                        format!("{} is not coupled at {from} in {}", app.name, pipeline.name),
                    )
                })?
            }
            None => match sources.as_slice() {
                [only] => *only,
                [] => {
                    return Err(Error::invalid(
                        "from",
                        format!("{from} has no app in {}", pipeline.name),
                    ))
                }
                several => {
                    let names: Vec<&str> = several.iter().map(|c| c.app.name.as_str()).collect();
                    return Err(Error::invalid(
                        "source",
                        format!(
                            "is required: {from} has several apps ({})",
                            names.join(", ")
                        ),
                    ));
                }
            },
        };
        let release = source.current_release.clone().ok_or_else(|| {
            Error::invalid(
                "source",
                format!("{} has no current release to promote", source.app.name),
            )
        })?;
        let targets = at(to);
        let db = self.promotions.database();
        let states: HashMap<String, &'static str> =
            store::release_statuses::statuses_of_release(db, release.id)
                .await?
                .into_iter()
                .filter_map(|status| {
                    let state = crate::domain::status::StatusState::parse("state", &status.state);
                    state.ok().map(|state| (status.context, state.as_str()))
                })
                .collect();
        let mut keys: BTreeMap<uuid::Uuid, Vec<String>> = BTreeMap::new();
        let apps = std::iter::once(source.app.id).chain(targets.iter().map(|c| c.app.id));
        for (app, key) in store::config_vars::keys_of_apps(db, apps).await? {
            keys.entry(app).or_default().push(key);
        }
        let source_keys = keys.get(&source.app.id).cloned().unwrap_or_default();
        let mut diffs = Vec::with_capacity(targets.len());
        for target in targets {
            let verdict = self
                .promotions
                .dry_run_verdict(
                    NewPromotion {
                        pipeline: pipeline.id.to_string(),
                        source_app: source.app.id.to_string(),
                        source_release: Some(release.id.to_string()),
                        targets: vec![target.app.id.to_string()],
                        safety: Safety::Unspecified,
                        dry_run: true,
                        request_id: None,
                    },
                    caller,
                )
                .await;
            let blocked_by = match verdict {
                Ok(_) => Vec::new(),
                Err(error) => blockers_of(error)?,
            };
            let target_keys = keys.get(&target.app.id).cloned().unwrap_or_default();
            diffs.push(TargetDiff {
                app: target.app.clone(),
                image_differs: target
                    .current_release
                    .as_ref()
                    .is_none_or(|current| current.image != release.image),
                current: target.current_release.clone(),
                config_keys: KeyDrift::between(&source_keys, &target_keys),
                checks: target
                    .required_contexts
                    .iter()
                    .map(|context| {
                        let state = states.get(context).copied().unwrap_or("missing");
                        (context.clone(), state)
                    })
                    .collect(),
                verification: target.verification.clone(),
                frozen: target.frozen.clone(),
                promotable: blocked_by.is_empty(),
                blocked_by,
            });
        }
        Ok(StageDiffView {
            pipeline: ResourceRef {
                id: pipeline.id,
                name: pipeline.name,
            },
            from,
            to,
            source_app: source.app.clone(),
            source_release: release,
            targets: diffs,
        })
    }
}
