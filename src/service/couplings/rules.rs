//! What a coupling must hold at its stage: the checks every create and update applies.

use crate::{
    domain::{
        names::check_required_contexts,
        policy::{PolicyChange, PromotionPolicy},
        stage::Stage,
        verification::{self, AllowedHosts, Verification, VerificationChange},
    },
    error::{Error, Result},
};

const CONTEXTS_FIELD: &str = "required_status_checks.contexts";
const POLICY_FIELD: &str = "promotion_policy";

/// The verification a change leaves on a coupling at `stage` that has `current`, checked
/// field by field against the allowed hosts: none on a review-stage coupling, into which
/// nothing is promoted.
pub(super) fn verification_after(
    stage: Stage,
    current: Option<Verification>,
    change: &VerificationChange,
    hosts: &AllowedHosts,
) -> Result<Option<Verification>> {
    let next = match change {
        VerificationChange::Unchanged => current,
        VerificationChange::Remove => None,
        VerificationChange::Set(spec) => Some(spec.resolve(hosts)?),
    };
    if next.is_some() && stage.previous().is_none() {
        return Err(Error::invalid(
            verification::FIELD,
            format!(
                "nothing is promoted into stage {stage}, so its couplings take no verification"
            ),
        ));
    }
    Ok(next)
}

pub(super) fn encode_verification(verification: &Option<Verification>) -> Result<Option<String>> {
    verification
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|error| Error::Internal(error.to_string()))
}

pub(super) fn check_contexts_for_stage(stage: Stage, contexts: &[String]) -> Result<()> {
    check_required_contexts(CONTEXTS_FIELD, contexts)?;
    if !stage.allows_required_checks() && !contexts.is_empty() {
        return Err(Error::invalid(
            CONTEXTS_FIELD,
            "a review-stage coupling cannot require status checks",
        ));
    }
    Ok(())
}

/// Refuses an out-of-range `change`, and a resulting `policy` that is not off on a
/// review-stage coupling, into which nothing is promoted.
pub(super) fn check_policy_for_stage(
    stage: Stage,
    change: &PolicyChange,
    policy: PromotionPolicy,
) -> Result<()> {
    change.check(POLICY_FIELD)?;
    if stage.previous().is_none() && policy != PromotionPolicy::default() {
        return Err(Error::invalid(
            POLICY_FIELD,
            format!(
                "nothing is promoted into stage {stage}, so its couplings take no promotion policy"
            ),
        ));
    }
    Ok(())
}

pub(super) fn encode_contexts(contexts: &[String]) -> Result<String> {
    serde_json::to_string(contexts).map_err(|error| Error::Internal(error.to_string()))
}
