//! Release and release-status states, and the rules that read them: which contexts a
//! release still lacks, and which required contexts a coupling update would remove.

use std::fmt;

use super::InvalidField;

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
