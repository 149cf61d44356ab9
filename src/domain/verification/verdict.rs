//! A target's verification as it runs: its state, the results it is decided on, and the
//! verdict over the verified release's statuses.

use std::collections::HashMap;

use super::Verification;
use crate::domain::status::StatusState;

/// Where a target's verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationState {
    Pending,
    Passed,
    Failed,
}

impl VerificationState {
    pub const ALL: [VerificationState; 3] = [
        VerificationState::Pending,
        VerificationState::Passed,
        VerificationState::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            VerificationState::Pending => "pending",
            VerificationState::Passed => "passed",
            VerificationState::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<VerificationState> {
        Self::ALL.into_iter().find(|state| state.as_str() == value)
    }
}

/// One context's standing in a verification: its status's state (or `missing`) and
/// description.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckResult {
    pub context: String,
    pub state: String,
    pub description: String,
}

impl CheckResult {
    /// "context: state (description)".
    pub fn describe(&self) -> String {
        if self.description.is_empty() {
            format!("{}: {}", self.context, self.state)
        } else {
            format!("{}: {} ({})", self.context, self.state, self.description)
        }
    }
}

/// The state `missing` a context has in a result when no status was posted for it.
pub const MISSING: &str = "missing";

/// A status seen on the verified release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenStatus {
    pub state: StatusState,
    pub description: String,
}

/// The verdict over the verified release's statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing decided yet: keep waiting.
    Undecided(Vec<CheckResult>),
    /// Every context has `success`.
    Passed(Vec<CheckResult>),
    /// A context failed or errored, or the deadline passed first. The results name the
    /// contexts that did not succeed.
    Failed(Vec<CheckResult>),
}

/// Decides a verification: failed as soon as any context has `failure` or `error`;
/// passed once every context has `success`; failed at the deadline otherwise.
pub fn decide(
    verification: &Verification,
    statuses: &HashMap<String, SeenStatus>,
    deadline_passed: bool,
) -> Verdict {
    let results: Vec<CheckResult> = verification
        .all_contexts()
        .into_iter()
        .map(|context| match statuses.get(&context) {
            Some(seen) => CheckResult {
                context,
                state: seen.state.as_str().to_owned(),
                description: seen.description.clone(),
            },
            None => CheckResult {
                context,
                state: MISSING.to_owned(),
                description: String::new(),
            },
        })
        .collect();
    let failing = |result: &CheckResult| {
        result.state == StatusState::Failure.as_str() || result.state == StatusState::Error.as_str()
    };
    let succeeded = |result: &CheckResult| result.state == StatusState::Success.as_str();
    if results.iter().any(failing) {
        return Verdict::Failed(results.into_iter().filter(failing).collect());
    }
    if results.iter().all(succeeded) {
        return Verdict::Passed(results);
    }
    if deadline_passed {
        return Verdict::Failed(results.into_iter().filter(|r| !succeeded(r)).collect());
    }
    Verdict::Undecided(results)
}

/// The description of the rollback release made when verification of `failed_version`
/// failed, going back to `previous_version`.
pub fn rollback_description(previous_version: i64, failed_version: i64) -> String {
    format!("Rollback to v{previous_version}: verification of v{failed_version} failed")
}
