//! Verification after deploy on the wire: a coupling's verification both ways, and where a
//! target's verification stands.

use super::{release_ref, timestamp};
use crate::{
    domain::verification::{
        HttpCheckSpec, OnFailure, Verification, VerificationChange, VerificationSpec,
        VerificationState,
    },
    error::Error,
    proto, views,
};

/// A coupling's verification on the wire, every default filled in.
pub fn verification_to_proto(verification: Verification) -> proto::Verification {
    proto::Verification {
        contexts: verification.contexts,
        timeout_seconds: Some(verification.timeout_seconds),
        http_checks: verification
            .http_checks
            .into_iter()
            .map(|check| proto::HttpCheck {
                name: check.name,
                url: check.url,
                interval_seconds: Some(check.interval_seconds),
                count: Some(check.count),
                failure_limit: Some(check.failure_limit),
            })
            .collect(),
        on_failure: match verification.on_failure {
            OnFailure::Rollback => proto::OnFailure::Rollback,
            OnFailure::Keep => proto::OnFailure::Keep,
        } as i32,
    }
}

/// A request's verification: `verification` replaces it, `remove` removes it; neither
/// leaves it as it is.
pub fn verification_change(
    verification: Option<proto::Verification>,
    remove: bool,
) -> Result<VerificationChange, Error> {
    match (verification, remove) {
        (Some(_), true) => Err(Error::invalid(
            "remove_verification",
            "cannot be set together with verification",
        )),
        (None, true) => Ok(VerificationChange::Remove),
        (None, false) => Ok(VerificationChange::Unchanged),
        (Some(wire), false) => {
            let on_failure = match proto::OnFailure::try_from(wire.on_failure) {
                Ok(proto::OnFailure::Unspecified) => None,
                Ok(proto::OnFailure::Rollback) => Some(OnFailure::Rollback.as_str().to_owned()),
                Ok(proto::OnFailure::Keep) => Some(OnFailure::Keep.as_str().to_owned()),
                Err(_) => Some(wire.on_failure.to_string()),
            };
            Ok(VerificationChange::Set(VerificationSpec {
                contexts: wire.contexts,
                timeout_seconds: wire.timeout_seconds.map(i64::from),
                http_checks: wire
                    .http_checks
                    .into_iter()
                    .map(|check| HttpCheckSpec {
                        name: Some(check.name).filter(|name| !name.is_empty()),
                        url: Some(check.url).filter(|url| !url.is_empty()),
                        interval_seconds: check.interval_seconds.map(i64::from),
                        count: check.count.map(i64::from),
                        failure_limit: check.failure_limit.map(i64::from),
                    })
                    .collect(),
                on_failure,
            }))
        }
    }
}

pub(super) fn target_verification(
    view: views::TargetVerificationView,
) -> proto::TargetVerification {
    proto::TargetVerification {
        state: match view.state {
            VerificationState::Pending => proto::VerificationState::Pending,
            VerificationState::Passed => proto::VerificationState::Passed,
            VerificationState::Failed => proto::VerificationState::Failed,
        } as i32,
        deadline: view.deadline.and_then(timestamp),
        results: view
            .results
            .into_iter()
            .map(|result| proto::VerificationResult {
                context: result.context,
                state: result.state,
                description: result.description,
            })
            .collect(),
        rollback_release: view.rollback_release.map(release_ref),
    }
}
