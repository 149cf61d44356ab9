//! The fixed stage graph: review → development → staging → production.

use std::fmt;

use super::InvalidField;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Review,
    Development,
    Staging,
    Production,
}

impl Stage {
    /// Every stage, in promotion order.
    pub const ALL: [Stage; 4] = [
        Stage::Review,
        Stage::Development,
        Stage::Staging,
        Stage::Production,
    ];

    /// The stage a release in this stage is promoted to; production has none.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Review => Some(Stage::Development),
            Stage::Development => Some(Stage::Staging),
            Stage::Staging => Some(Stage::Production),
            Stage::Production => None,
        }
    }

    /// The stage whose releases are promoted to this one; review has none.
    pub fn previous(self) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.next() == Some(self))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Review => "review",
            Stage::Development => "development",
            Stage::Staging => "staging",
            Stage::Production => "production",
        }
    }

    /// Whether a coupling at this stage may require status checks. Review apps are
    /// short-lived and are never promotion targets, so checks on them would never be read.
    pub fn allows_required_checks(self) -> bool {
        self != Stage::Review
    }

    /// Parses the lowercase wire name, naming `field` when it is not a stage.
    pub fn parse(field: &str, value: &str) -> Result<Stage, InvalidField> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == value)
            .ok_or_else(|| {
                InvalidField::new(
                    field,
                    format!(
                        "'{value}' is not a stage; expected one of review, development, staging, production"
                    ),
                )
            })
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_each_other_in_order() {
        assert_eq!(Stage::Review.next(), Some(Stage::Development));
        assert_eq!(Stage::Development.next(), Some(Stage::Staging));
        assert_eq!(Stage::Staging.next(), Some(Stage::Production));
        assert_eq!(Stage::Production.next(), None);
    }

    #[test]
    fn wire_names_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(Stage::parse("stage", stage.as_str()), Ok(stage));
        }
    }

    #[test]
    fn unknown_stage_names_the_field() {
        let error = Stage::parse("stage", "qa").unwrap_err();
        assert_eq!(error.field, "stage");
        assert!(error.reason.contains("'qa'"));
        assert!(Stage::parse("stage", "Production").is_err());
    }

    #[test]
    fn only_review_refuses_required_checks() {
        assert!(!Stage::Review.allows_required_checks());
        assert!(Stage::Development.allows_required_checks());
        assert!(Stage::Production.allows_required_checks());
    }
}
