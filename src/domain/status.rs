//! Release and release-status states, and the rules that read them: which contexts a
//! release still lacks, which required contexts a coupling update would remove, and the
//! verdict of each required check.

use std::fmt;

use uuid::Uuid;

use super::{stage::Stage, InvalidField};

/// The deployment state of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseState {
    Pending,
    Succeeded,
    Failed,
}

impl ReleaseState {
    pub const ALL: [ReleaseState; 3] = [
        ReleaseState::Pending,
        ReleaseState::Succeeded,
        ReleaseState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Pending => "pending",
            ReleaseState::Succeeded => "succeeded",
            ReleaseState::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<ReleaseState> {
        Self::ALL.into_iter().find(|state| state.as_str() == value)
    }
}

impl fmt::Display for ReleaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict of one status check on a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    pub const ALL: [StatusState; 4] = [
        StatusState::Pending,
        StatusState::Success,
        StatusState::Failure,
        StatusState::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<StatusState, InvalidField> {
        StatusState::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| {
                InvalidField::new(
                    field,
                    format!("{} is not a status state; expected one of pending, success, failure, error", super::quoted(value)),
                )
            })
    }
}

impl fmt::Display for StatusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The required contexts that the release's statuses do not satisfy. Only `success`
/// satisfies a context; a missing, pending, failed or errored status does not.
pub fn unmet_contexts<'a>(
    required: &'a [String],
    statuses: &[(String, StatusState)],
) -> Vec<&'a str> {
    required
        .iter()
        .filter(|context| {
            !statuses
                .iter()
                .any(|(have, state)| have == *context && *state == StatusState::Success)
        })
        .map(String::as_str)
        .collect()
}

/// The contexts in `current` that `replacement` drops. Removing a required context weakens
/// a gate, so it needs elevated access.
pub fn removed_contexts<'a>(current: &'a [String], replacement: &[String]) -> Vec<&'a str> {
    current
        .iter()
        .filter(|context| !replacement.contains(context))
        .map(String::as_str)
        .collect()
}

/// A release's combined state over all its statuses: `error` if any is `error`, else
/// `failure` if any is `failure`, else `pending` if any is `pending`, else `success` (also
/// when there are none).
pub fn combined_state(states: impl IntoIterator<Item = StatusState>) -> StatusState {
    let states: Vec<StatusState> = states.into_iter().collect();
    [
        StatusState::Error,
        StatusState::Failure,
        StatusState::Pending,
    ]
    .into_iter()
    .find(|worst| states.contains(worst))
    .unwrap_or(StatusState::Success)
}

/// One required status check, identified by the target it guards. Stored as JSON with a
/// promotion's overridden checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckRef {
    pub app_id: Uuid,
    pub app_name: String,
    #[serde(with = "stage_name")]
    pub stage: Stage,
    pub context: String,
}

/// A stage as its name, the form stored in the database.
mod stage_name {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use crate::domain::stage::Stage;

    pub fn serialize<S: Serializer>(stage: &Stage, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(stage.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Stage, D::Error> {
        let name = String::deserialize(deserializer)?;
        Stage::parse("stage", &name).map_err(D::Error::custom)
    }
}

/// The verdict of one required status check on the source release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckVerdict {
    pub check: CheckRef,
    /// The status's state on the source release; `None` when no status has the context.
    pub state: Option<StatusState>,
    pub satisfied: bool,
    /// Unmet, and bypassed by an elevated caller.
    pub overridden: bool,
}

impl CheckVerdict {
    /// Names the check as `app/stage/context`.
    pub fn subject(&self) -> String {
        format!(
            "{}/{}/{}",
            self.check.app_name, self.check.stage, self.check.context
        )
    }

    /// Says why the check is unmet (or met).
    pub fn describe(&self) -> String {
        format!(
            "required context '{}' of app '{}' ({}) is {} on the release",
            self.check.context,
            self.check.app_name,
            self.check.stage,
            self.state.map(|state| state.as_str()).unwrap_or("missing")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_combined_state_is_the_worst_one() {
        use StatusState::*;
        assert_eq!(combined_state([]), Success);
        assert_eq!(combined_state([Success, Success]), Success);
        assert_eq!(combined_state([Success, Pending]), Pending);
        assert_eq!(combined_state([Pending, Failure, Success]), Failure);
        assert_eq!(combined_state([Failure, Error, Pending]), Error);
    }

    fn contexts(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn only_success_satisfies_a_context() {
        let required = contexts(&["ci/unit", "ci/e2e", "ci/lint", "ci/sec"]);
        let statuses = vec![
            ("ci/unit".to_owned(), StatusState::Success),
            ("ci/e2e".to_owned(), StatusState::Pending),
            ("ci/lint".to_owned(), StatusState::Failure),
        ];
        assert_eq!(
            unmet_contexts(&required, &statuses),
            vec!["ci/e2e", "ci/lint", "ci/sec"]
        );
    }

    #[test]
    fn nothing_required_is_always_met() {
        assert!(unmet_contexts(&[], &[]).is_empty());
    }

    #[test]
    fn removal_is_what_the_replacement_drops() {
        let current = contexts(&["a", "b"]);
        assert_eq!(
            removed_contexts(&current, &contexts(&["b", "c"])),
            vec!["a"]
        );
        assert!(removed_contexts(&current, &contexts(&["b", "a", "c"])).is_empty());
        assert!(removed_contexts(&[], &contexts(&["a"])).is_empty());
    }

    #[test]
    fn states_parse_their_wire_names() {
        for state in StatusState::ALL {
            assert_eq!(StatusState::parse("state", state.as_str()), Ok(state));
        }
        assert_eq!(
            StatusState::parse("state", "ok").unwrap_err().field,
            "state"
        );
        assert_eq!(ReleaseState::parse("failed"), Some(ReleaseState::Failed));
        assert_eq!(ReleaseState::parse("nope"), None);
    }
}
