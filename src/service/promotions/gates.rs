//! The gates a promotion passes before it is stored: a freeze of the stage it goes into and
//! required status checks (each with the elevated bypass), and, under safe promotion,
//! config-key drift.

use std::collections::{BTreeSet, HashMap};

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{ResolvedTarget, Safety};
use crate::{
    domain::{
        access::{Caller, Role},
        freeze::FrozenStage,
        promotion::KeyDrift,
        stage::Stage,
        status::{unmet_contexts, StatusState},
    },
    error::{Error, Result},
    service::authorize,
    store::{self, entities::release, release_statuses::states_of_release},
    views::{CheckRef, CheckVerdict, ResourceRef, TargetDrift},
};

/// Refuses a promotion into a frozen stage, unless an elevated caller breaks glass with
/// `safe: false`; then the freeze it overrides is returned, to be recorded. Read from the
/// database, as every gate is.
pub(super) async fn judge_freeze(
    db: &impl ConnectionTrait,
    pipeline: &ResourceRef,
    stage: Stage,
    safety: Safety,
    caller: &Caller,
) -> Result<Option<FrozenStage>> {
    let frozen = crate::service::frozen_stages_of(db, &[pipeline.id], store::now())
        .await?
        .remove(&pipeline.id)
        .and_then(|mut stages| stages.remove(&stage));
    let Some(frozen) = frozen else {
        return Ok(None);
    };
    let described = frozen.describe(&pipeline.name);
    if safety != Safety::BypassStatusChecks {
        return Err(Error::Frozen {
            message: format!(
                "{described}; an admin may break glass with safe: false, or lift the freeze"
            ),
            frozen,
        });
    }
    authorize(caller, Role::Admin, &format!("breaking glass: {described}"))?;
    Ok(Some(frozen))
}

/// Every required check's verdict, and the checks an elevated caller bypassed.
pub(super) struct StatusGate {
    pub verdicts: Vec<CheckVerdict>,
    pub overridden: Vec<CheckRef>,
}

/// Judges every context the targets' couplings require against the release's statuses.
/// Unmet checks refuse the promotion, unless the caller asked to bypass them and may.
pub(super) async fn judge_status_checks(
    db: &impl ConnectionTrait,
    release: &release::Model,
    source: &ResourceRef,
    targets: &[ResolvedTarget],
    stage: Stage,
    safety: Safety,
    caller: &Caller,
) -> Result<StatusGate> {
    let mut verdicts = status_verdicts(db, release, targets, stage).await?;
    let unmet: Vec<CheckVerdict> = verdicts.iter().filter(|v| !v.satisfied).cloned().collect();
    if unmet.is_empty() {
        return Ok(StatusGate {
            verdicts,
            overridden: Vec::new(),
        });
    }
    let listing = unmet
        .iter()
        .map(|v| {
            format!(
                "{} ({}): {} [{}]",
                v.check.app_name,
                v.check.stage,
                v.check.context,
                v.state.map(StatusState::as_str).unwrap_or("missing")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if safety != Safety::BypassStatusChecks {
        return Err(Error::UnmetStatusChecks {
            message: format!(
                "required status checks are not met on release v{} of app '{}': {listing}",
                release.version, source.name
            ),
            unmet,
        });
    }
    authorize(
        caller,
        Role::Admin,
        &format!("bypassing unmet status checks ({listing})"),
    )?;
    let overridden: Vec<CheckRef> = unmet.into_iter().map(|v| v.check).collect();
    for verdict in &mut verdicts {
        verdict.overridden = !verdict.satisfied && overridden.contains(&verdict.check);
    }
    Ok(StatusGate {
        verdicts,
        overridden,
    })
}

async fn status_verdicts(
    db: &impl ConnectionTrait,
    release: &release::Model,
    targets: &[ResolvedTarget],
    stage: Stage,
) -> Result<Vec<CheckVerdict>> {
    if targets
        .iter()
        .all(|target| target.required_contexts.is_empty())
    {
        return Ok(Vec::new());
    }
    let statuses = states_of_release(db, release.id).await?;
    let state_of: HashMap<&str, StatusState> = statuses
        .iter()
        .map(|(context, state)| (context.as_str(), *state))
        .collect();
    let mut verdicts = Vec::new();
    for target in targets {
        let required = &target.required_contexts;
        let unmet = unmet_contexts(required, &statuses);
        for context in required {
            verdicts.push(CheckVerdict {
                check: CheckRef {
                    app_id: target.app.id,
                    app_name: target.app.name.clone(),
                    stage,
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

/// The config keys each target and the source do not share. Under safe promotion any
/// difference refuses the promotion; otherwise it is only reported in a dry run's plan.
pub(super) async fn config_drift(
    db: &impl ConnectionTrait,
    source: &ResourceRef,
    targets: &[ResolvedTarget],
    safety: Safety,
) -> Result<Vec<TargetDrift>> {
    let mut keys = config_keys(
        db,
        std::iter::once(source.id).chain(targets.iter().map(|target| target.app.id)),
    )
    .await?;
    let source_keys = keys.remove(&source.id).unwrap_or_default();
    let mut drift = Vec::new();
    for target in targets {
        let target_keys = keys.remove(&target.app.id).unwrap_or_default();
        let difference = KeyDrift::between(&source_keys, &target_keys);
        if !difference.is_empty() {
            drift.push(TargetDrift {
                app: ResourceRef {
                    id: target.app.id,
                    name: target.app.name.clone(),
                },
                missing_on_target: difference.missing_on_target,
                missing_on_source: difference.missing_on_source,
            });
        }
    }
    if safety == Safety::CheckConfigDrift && !drift.is_empty() {
        return Err(Error::ConfigDrift {
            message: format!(
                "safe promotion refused, config keys differ: {}",
                describe_drift(source, &drift)
            ),
            drift,
        });
    }
    Ok(drift)
}

/// The config keys of each app, in one query; apps without keys are absent.
async fn config_keys(
    db: &impl ConnectionTrait,
    apps: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, BTreeSet<String>>> {
    let rows = store::config_vars::keys_of_apps(db, apps).await?;
    let mut keys: HashMap<Uuid, BTreeSet<String>> = HashMap::new();
    for (app, key) in rows {
        keys.entry(app).or_default().insert(key);
    }
    Ok(keys)
}

fn describe_drift(source: &ResourceRef, drift: &[TargetDrift]) -> String {
    drift
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
        .join("; ")
}
